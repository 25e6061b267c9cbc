"""The simulated provider's OpenAI Chat Completions API over real HTTP (Qwen Code, OpenCode,
Copilot CLI). The request body is one OpenCode 1.18.33 sent (tests/data/provider/requests)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from corral.provider import Scenario, ScenarioUsage, SimulatedProvider

CHAT = "/v1/chat/completions"
REQUESTS = Path(__file__).parent / "data" / "provider" / "requests"
SAMPLE = REQUESTS / "sample_request_openai_chat.json"
USAGE = ScenarioUsage(input=123, output=45, cache_read=6789, cache_write=1011, reasoning=7)


@pytest.fixture
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as running:
        yield running


def sample() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(SAMPLE.read_text())
    return body


def post(base: str, body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", parts.path + CHAT, json.dumps(body), {"Content-Type": "json"})
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read().decode()
    finally:
        connection.close()


def data_lines(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order (`[DONE]` included, as text)."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def chunks(text: str) -> list[dict[str, Any]]:
    payloads = data_lines(text)
    assert payloads[-1] == "[DONE]"
    return [json.loads(payload) for payload in payloads[:-1]]


def test_stream_ends_with_a_usage_chunk_and_done(provider: SimulatedProvider) -> None:
    provider.add_scenario("u", Scenario.answer("Counted tokens here.", usage=USAGE))
    status, headers, text = post(provider.scenario_url("u"), sample())
    assert (status, headers["content-type"]) == (200, "text/event-stream")
    events = chunks(text)
    assert {e["object"] for e in events} == {"chat.completion.chunk"}
    assert len({e["id"] for e in events}) == 1
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert content == "Counted tokens here."
    finish = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finish[-1] == "stop" and set(finish[:-1]) == {None}
    usage_chunk = events[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["model"] == "sim-model"  # the model asked for
    assert usage_chunk["usage"] == {
        "prompt_tokens": 123 + 6789 + 1011,
        "completion_tokens": 45,
        "total_tokens": 123 + 6789 + 1011 + 45,
        "prompt_tokens_details": {"cached_tokens": 6789},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }


def test_no_usage_chunk_unless_asked(provider: SimulatedProvider) -> None:
    body = {**sample(), "stream_options": {"include_usage": False}}
    events = chunks(post(provider.url, body)[2])
    assert all("usage" not in e for e in events)
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


def test_tool_call_uses_the_declared_shell_tool_then_reads_its_result(
    provider: SimulatedProvider,
) -> None:
    provider.add_scenario("t", Scenario.tool("echo chat-marker"))
    body = sample()
    events = chunks(post(provider.scenario_url("t"), body)[2])
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    opening, rest = calls
    assert (opening["index"], opening["type"]) == (0, "function")
    assert opening["function"]["name"] == "bash"
    assert opening["id"].startswith("call_sim_") and opening["function"]["arguments"] == ""
    # arguments the tool's schema does not declare are left out
    assert json.loads(rest["function"]["arguments"]) == {"command": "echo chat-marker"}
    assert [e["choices"][0]["finish_reason"] for e in events if e["choices"]][-1] == "tool_calls"

    function = {"name": "bash", "arguments": "{}"}
    call = {"id": opening["id"], "type": "function", "function": function}
    body["messages"] = [
        *body["messages"],
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": opening["id"], "content": "chat-marker\n"},
    ]
    answer = chunks(post(provider.scenario_url("t"), body)[2])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in answer if e["choices"])
    assert text == "The command printed: chat-marker"


def test_not_streamed(provider: SimulatedProvider) -> None:
    provider.add_scenario("u", Scenario.answer("Whole.", usage=USAGE))
    status, _, text = post(provider.scenario_url("u"), {"model": "m", "messages": []})
    document = json.loads(text)
    assert status == 200 and document["object"] == "chat.completion"
    (choice,) = document["choices"]
    assert choice["message"] == {"role": "assistant", "content": "Whole."}
    assert choice["finish_reason"] == "stop"
    assert document["usage"]["prompt_tokens"] == USAGE.prompt_total


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [(401, "invalid_request_error", "invalid_api_key"), (429, "requests", "rate_limit_exceeded")],
)
def test_errors_have_the_openai_body(
    provider: SimulatedProvider, status: int, kind: str, code: str
) -> None:
    provider.add_scenario("e", Scenario.error(status, retry_after=2))
    got, headers, text = post(provider.scenario_url("e"), sample())
    error = json.loads(text)["error"]
    assert (got, error["type"], error["code"]) == (status, kind, code)
    assert headers.get("retry-after") == ("2" if status == 429 else None)
    (recorded,) = provider.requests("e")
    assert (recorded.api, recorded.path) == ("openai-chat", CHAT)


def test_failed_mid_stream_sends_an_error_chunk(provider: SimulatedProvider) -> None:
    provider.add_scenario("f", Scenario.failed("chat fell over"))
    payloads = data_lines(post(provider.scenario_url("f"), sample())[2])
    assert "[DONE]" not in payloads
    assert json.loads(payloads[-1]) == {
        "error": {"message": "chat fell over", "type": "server_error", "code": None}
    }
