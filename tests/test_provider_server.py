"""The simulated provider over real HTTP: each API, each scenario kind, concurrency, shutdown."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from corral.provider import Kind, Scenario, ScenarioUsage, SimulatedProvider

WIRE = Path(__file__).parent / "data" / "provider" / "wire"
SAMPLES = Path(__file__).parent / "data" / "provider" / "requests"
USAGE = ScenarioUsage(input=123, output=45, cache_read=6789, cache_write=1011, reasoning=7)

ANTHROPIC = "/v1/messages?beta=true"
OPENAI = "/v1/responses"
GEMINI_STREAM = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
GEMINI_ROUTER = "/v1beta/models/gemini-3.5-flash-lite:generateContent"


class Reply:
    """One HTTP response, read whole."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.raw = response.read()

    def json(self) -> Any:
        return json.loads(self.raw)

    def events(self) -> list[tuple[str | None, dict[str, Any]]]:
        return parse_sse(self.raw.decode())


def parse_sse(text: str) -> list[tuple[str | None, dict[str, Any]]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
        if data is not None:
            events.append((name, data))
    return events


def post(base: str, path: str, body: dict[str, Any], **headers: str) -> Reply:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(
            "POST",
            parts.path + path,
            json.dumps(body),
            {"Content-Type": "application/json", **headers},
        )
        return Reply(connection.getresponse())
    finally:
        connection.close()


@pytest.fixture
def provider() -> Iterator[SimulatedProvider]:
    with SimulatedProvider() as running:
        yield running


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SAMPLES / f"sample_request_{name}.json").read_text())
    return body


# -- Anthropic Messages ----------------------------------------------------------------------


def test_anthropic_stream_has_the_event_sequence_claude_accepted(
    provider: SimulatedProvider,
) -> None:
    reply = post(provider.url, ANTHROPIC, sample("anthropic"))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/event-stream"
    ours = [name for name, _ in reply.events()]
    recorded = [name for name, _ in parse_sse(_wire_body("anthropic_text.http"))]
    assert _collapse(ours) == _collapse(recorded)
    assert all(name == data["type"] for name, data in reply.events())


def test_anthropic_text_and_usage(provider: SimulatedProvider) -> None:
    provider.add_scenario("u", Scenario.answer("Counted tokens.", usage=USAGE))
    events = [
        data
        for _, data in post(provider.scenario_url("u"), ANTHROPIC, sample("anthropic")).events()
    ]
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Counted tokens."
    start = events[0]["message"]
    assert start["model"] == "claude-opus-5-5"  # echoes the model asked for
    assert start["usage"]["input_tokens"] == 123
    assert start["usage"]["cache_read_input_tokens"] == 6789
    assert start["usage"]["cache_creation_input_tokens"] == 1011
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["usage"]["output_tokens"] == 45
    assert delta["delta"]["stop_reason"] == "end_turn"


def test_anthropic_not_streamed(provider: SimulatedProvider) -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    message = post(provider.url, "/v1/messages", body).json()
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": Scenario().text}]
    assert message["usage"]["output_tokens"] == 11


def test_anthropic_tool_round_trip(provider: SimulatedProvider) -> None:
    provider.add_scenario("t", Scenario.tool("echo one"))
    first = post(provider.scenario_url("t"), ANTHROPIC, sample("anthropic")).events()
    blocks = [d["content_block"] for _, d in first if d["type"] == "content_block_start"]
    assert [b["type"] for b in blocks] == ["text", "tool_use"]
    assert blocks[1]["name"] == "Bash"
    arguments = "".join(
        d["delta"]["partial_json"]
        for _, d in first
        if d.get("delta", {}).get("type") == "input_json_delta"
    )
    assert json.loads(arguments)["command"] == "echo one"
    delta = next(d for _, d in first if d["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"

    body = sample("anthropic")
    tool_use = {"type": "tool_use", "id": blocks[1]["id"], "name": "Bash", "input": {}}
    result = {"type": "tool_result", "tool_use_id": blocks[1]["id"], "content": "one"}
    body["messages"] += [
        {"role": "assistant", "content": [tool_use]},
        {"role": "user", "content": [result]},
        {"role": "system", "content": [{"type": "text", "text": "a trailing system turn"}]},
    ]
    second = post(provider.scenario_url("t"), ANTHROPIC, body).events()
    text = "".join(d["delta"]["text"] for _, d in second if d["type"] == "content_block_delta")
    assert text == "The command printed: one"


# -- OpenAI Responses ------------------------------------------------------------------------


def test_openai_stream_has_the_event_sequence_codex_accepted(provider: SimulatedProvider) -> None:
    reply = post(provider.url, OPENAI, sample("openai"))
    ours = [name for name, _ in reply.events()]
    recorded = [name for name, _ in parse_sse(_wire_body("openai_text.http"))]
    assert _collapse(ours) == _collapse(recorded)
    numbers = [data["sequence_number"] for _, data in reply.events()]
    assert numbers == list(range(len(numbers)))


def test_openai_usage_counts_cached_tokens_inside_input(provider: SimulatedProvider) -> None:
    provider.add_scenario("u", Scenario.answer("ok", usage=USAGE))
    events = post(provider.scenario_url("u"), OPENAI, sample("openai")).events()
    completed = events[-1][1]["response"]
    assert completed["status"] == "completed"
    assert completed["model"] == "gpt-6.1-sol"
    assert completed["usage"] == {
        "input_tokens": 123 + 6789 + 1011,
        "input_tokens_details": {"cached_tokens": 6789, "cache_write_tokens": 1011},
        "output_tokens": 45,
        "output_tokens_details": {"reasoning_tokens": 7},
        "total_tokens": 123 + 6789 + 1011 + 45,
    }


def test_openai_function_call_reads_the_tool_schema(provider: SimulatedProvider) -> None:
    provider.add_scenario("t", Scenario.tool("echo two"))
    exec_command = {
        "type": "function",
        "name": "exec_command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
    }
    body = {"model": "gpt-5.5", "stream": True, "input": [], "tools": [exec_command]}
    events = post(provider.scenario_url("t"), OPENAI, body).events()
    done = [d["item"] for _, d in events if d["type"] == "response.output_item.done"]
    assert done[0]["type"] == "function_call"
    assert done[0]["name"] == "exec_command"
    assert json.loads(done[0]["arguments"]) == {"cmd": "echo two"}  # no undeclared arguments

    output = {"type": "function_call_output", "call_id": done[0]["call_id"], "output": "two\n"}
    body["input"] = [{**done[0]}, output]
    final = post(provider.scenario_url("t"), OPENAI, body).events()[-1][1]["response"]
    assert final["output"][0]["content"][0]["text"] == "The command printed: two"


def test_openai_failed_mid_stream(provider: SimulatedProvider) -> None:
    provider.add_scenario("f", Scenario.failed("boom"))
    events = post(provider.scenario_url("f"), OPENAI, sample("openai")).events()
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert events[-1][1]["response"]["error"]["message"] == "boom"


def test_openai_not_streamed(provider: SimulatedProvider) -> None:
    response = post(provider.url, OPENAI, {"model": "gpt-5.5", "input": "hi"}).json()
    assert response["object"] == "response"
    assert response["output"][0]["content"][0]["text"] == Scenario().text


# -- Gemini ----------------------------------------------------------------------------------


def test_gemini_stream_matches_the_recorded_chunks(provider: SimulatedProvider) -> None:
    provider.add_scenario("u", Scenario.answer("Hello there", usage=USAGE))
    events = post(provider.scenario_url("u"), GEMINI_STREAM, sample("gemini_main")).events()
    recorded = parse_sse(_wire_body("gemini_text.http"))
    assert all(name is None for name, _ in events)
    assert set(events[-1][1]) == set(recorded[-1][1])
    text = "".join(d["candidates"][0]["content"]["parts"][0]["text"] for _, d in events)
    assert text == "Hello there"
    assert events[-1][1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1][1]["modelVersion"] == "gemini-2.5-pro"
    usage = events[-1][1]["usageMetadata"]
    assert usage["promptTokenCount"] == 123 + 6789 + 1011
    assert usage["cachedContentTokenCount"] == 6789
    assert usage["candidatesTokenCount"] == 45 - 7
    assert usage["thoughtsTokenCount"] == 7


def test_gemini_router_gets_a_valid_complexity_score(provider: SimulatedProvider) -> None:
    reply = post(provider.url, GEMINI_ROUTER, sample("gemini_router"))
    answer = json.loads(reply.json()["candidates"][0]["content"]["parts"][0]["text"])
    assert set(answer) == {"complexity_reasoning", "complexity_score"}
    assert 1 <= answer["complexity_score"] <= 100


def test_gemini_function_call_and_answer(provider: SimulatedProvider) -> None:
    provider.add_scenario("t", Scenario.tool("echo three"))
    body = sample("gemini_main")
    first = post(provider.scenario_url("t"), GEMINI_STREAM, body).events()
    call = first[-1][1]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call["name"] == "run_shell_command"
    assert call["args"]["command"] == "echo three"
    response = {"functionResponse": {"name": call["name"], "response": {"output": "three"}}}
    body["contents"] += [
        {"role": "model", "parts": [{"functionCall": call}]},
        {"role": "user", "parts": [response]},
    ]
    second = post(provider.scenario_url("t"), GEMINI_STREAM, body).events()
    text = "".join(d["candidates"][0]["content"]["parts"][0]["text"] for _, d in second)
    assert text == "The command printed: three"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 429, 500, 529])
def test_anthropic_errors(provider: SimulatedProvider, status: int) -> None:
    provider.add_scenario("e", Scenario.error(status))
    reply = post(provider.scenario_url("e"), ANTHROPIC, sample("anthropic"))
    assert reply.status == status
    body = reply.json()
    assert body["type"] == "error"
    expected = {
        401: "authentication_error",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    assert body["error"]["type"] == expected[status]
    assert reply.headers["request-id"] == body["request_id"]
    assert ("retry-after" in reply.headers) == (status in (429, 529))


def test_anthropic_429_matches_the_recorded_shape(provider: SimulatedProvider) -> None:
    provider.add_scenario("e", Scenario.error(429))
    ours = post(provider.scenario_url("e"), ANTHROPIC, {}).json()
    recorded = json.loads(_wire_body("anthropic_err429.http"))
    assert set(ours) == set(recorded)
    assert set(ours["error"]) == set(recorded["error"])


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, "invalid_request_error", "invalid_api_key"),
        (429, "requests", "rate_limit_exceeded"),
        (500, "server_error", None),
    ],
)
def test_openai_errors(
    provider: SimulatedProvider, status: int, kind: str, code: str | None
) -> None:
    provider.add_scenario("e", Scenario.error(status, retry_after=3))
    reply = post(provider.scenario_url("e"), OPENAI, sample("openai"))
    assert reply.status == status
    error = reply.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (kind, code, None)
    assert reply.headers["x-request-id"].startswith("req_sim_")
    assert reply.headers.get("retry-after") == ("3" if status == 429 else None)


@pytest.mark.parametrize(
    ("status", "name"), [(401, "UNAUTHENTICATED"), (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL")]
)
def test_gemini_errors(provider: SimulatedProvider, status: int, name: str) -> None:
    provider.add_scenario("e", Scenario.error(status, message="custom words"))
    reply = post(provider.scenario_url("e"), GEMINI_STREAM, sample("gemini_main"))
    assert reply.status == status
    assert reply.json() == {"error": {"code": status, "message": "custom words", "status": name}}


def test_unknown_path_is_404_and_bad_json_is_400(provider: SimulatedProvider) -> None:
    assert post(provider.url, "/v1/models", {}).status == 404
    parts = urlsplit(provider.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    connection.request("POST", "/v1/messages", b"not json", {"Content-Type": "application/json"})
    reply = Reply(connection.getresponse())
    connection.close()
    assert reply.status == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


# -- scenarios, records ----------------------------------------------------------------------


def test_unknown_scenario_answers_the_default_text(provider: SimulatedProvider) -> None:
    events = post(
        provider.scenario_url("nobody-registered-this"), OPENAI, sample("openai")
    ).events()
    assert events[-1][1]["response"]["output"][0]["content"][0]["text"] == Scenario().text


def test_requests_are_recorded_per_scenario(provider: SimulatedProvider) -> None:
    post(provider.scenario_url("a"), ANTHROPIC, sample("anthropic"), **{"x-api-key": "dummy"})
    post(provider.scenario_url("b"), GEMINI_STREAM, sample("gemini_main"))
    post(provider.url, OPENAI, sample("openai"))
    (only_a,) = provider.requests("a")
    assert only_a.api == "anthropic"
    assert only_a.path == ANTHROPIC
    assert only_a.headers["x-api-key"] == "dummy"
    assert only_a.body["model"] == "claude-opus-5-5"
    assert [r.api for r in provider.requests("b")] == ["gemini"]
    assert [r.scenario for r in provider.requests()] == ["a", "b", ""]


def test_keep_alive_connection_serves_several_requests(provider: SimulatedProvider) -> None:
    parts = urlsplit(provider.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    for _ in range(3):
        connection.request("POST", ANTHROPIC, json.dumps(sample("anthropic")))
        assert Reply(connection.getresponse()).status == 200
    connection.close()


def test_big_answer_has_the_asked_size(provider: SimulatedProvider) -> None:
    provider.add_scenario("big", Scenario.big(size=2_000_000, lines=10))
    body = {
        "model": "gpt-5.5",
        "stream": True,
        "input": [{"type": "function_call_output", "output": "1\n2"}],
    }
    events = post(provider.scenario_url("big"), OPENAI, body).events()
    text = "".join(d["delta"] for _, d in events if d["type"] == "response.output_text.delta")
    assert len(text) == 2_000_000


def test_scenario_specs_parse() -> None:
    assert Scenario.parse("error:529").status == 529
    assert Scenario.parse("tool:echo hi").commands == ("echo hi",)
    assert Scenario.parse("slow:0.25").delay == 0.25
    assert Scenario.parse("text:Yes.").text == "Yes."
    assert Scenario.parse("hang").kind is Kind.HANG
    with pytest.raises(ValueError):
        Scenario.parse("dance")


def test_scenario_ids_must_be_one_path_segment(provider: SimulatedProvider) -> None:
    with pytest.raises(ValueError):
        provider.add_scenario("a/b", Scenario())


# -- concurrency and shutdown ----------------------------------------------------------------


def test_many_concurrent_slow_streams_run_in_parallel(provider: SimulatedProvider) -> None:
    provider.add_scenario("slow", Scenario.slow(delay=0.05, text="one two three four five six"))
    paths = [ANTHROPIC, OPENAI, GEMINI_STREAM] * 12
    bodies = {
        ANTHROPIC: sample("anthropic"),
        OPENAI: sample("openai"),
        GEMINI_STREAM: sample("gemini_main"),
    }
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        replies = list(pool.map(lambda p: post(provider.scenario_url("slow"), p, bodies[p]), paths))
    elapsed = time.monotonic() - started
    assert all(reply.status == 200 for reply in replies)
    # one stream alone takes ≥ 0.5 s (10+ events, 0.05 s apart); 36 in series would take 18 s
    assert elapsed < 6
    assert len(provider.requests("slow")) == len(paths)


def test_hanging_stream_blocks_neither_others_nor_stop() -> None:
    provider = SimulatedProvider().start()
    provider.add_scenario("hang", Scenario.hang())
    parts = urlsplit(provider.url)
    hanging = socket.create_connection((parts.hostname, parts.port), timeout=10)
    body = json.dumps(sample("anthropic")).encode()
    hanging.sendall(
        b"POST /s/hang/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while b"event: ping" not in received:
        received += hanging.recv(65536)
    assert b"message_stop" not in received

    # an idle keep-alive connection must not hold up stop() either
    idle = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    idle.request("POST", OPENAI, json.dumps(sample("openai")))
    assert Reply(idle.getresponse()).status == 200
    assert post(provider.url, ANTHROPIC, sample("anthropic")).status == 200  # served meanwhile

    rest: list[bytes] = []
    reader = threading.Thread(target=lambda: rest.append(_read_until_closed(hanging)))
    reader.start()
    started = time.monotonic()
    provider.stop()
    assert time.monotonic() - started < 1.5
    reader.join(5)
    hanging.close()
    idle.close()
    # the stalled stream is cut, not completed: no terminating chunk, no message_stop
    assert b"message_stop" not in rest[0]
    assert not rest[0].endswith(b"0\r\n\r\n")


def test_hanging_non_streamed_call_is_released_by_stop() -> None:
    provider = SimulatedProvider().start()
    provider.add_scenario("hang", Scenario.hang())
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(
                post(provider.scenario_url("hang"), GEMINI_ROUTER, sample("gemini_router"))
            )
        except (http.client.HTTPException, OSError) as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    while not provider.requests("hang"):
        time.sleep(0.01)
    started = time.monotonic()
    provider.stop()
    caller.join(5)
    assert time.monotonic() - started < 1.5
    assert isinstance(outcome[0], (http.client.HTTPException, OSError))


def test_stop_is_idempotent_and_url_needs_a_start() -> None:
    provider = SimulatedProvider()
    with pytest.raises(RuntimeError):
        _ = provider.url
    provider.start()
    provider.stop()
    provider.stop()


# -- helpers ---------------------------------------------------------------------------------


def _wire_body(name: str) -> str:
    raw = (WIRE / name).read_text()
    return raw.split("\n\n", 1)[1]


def _collapse(names: list[str | None]) -> list[str | None]:
    """Event names with runs of the same name merged: delta counts differ with the text."""
    collapsed: list[str | None] = []
    for name in names:
        if not collapsed or collapsed[-1] != name:
            collapsed.append(name)
    return collapsed


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_client_leaving_a_hanging_stream_frees_its_connection(
    provider: SimulatedProvider,
) -> None:
    provider.add_scenario("hang", Scenario.hang())
    parts = urlsplit(provider.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("POST", "/s/hang" + OPENAI, json.dumps(sample("openai")))
    response = connection.getresponse()
    assert response.status == 200
    assert b"response.created" in response.read1()
    assert provider.active_connections == 1
    connection.close()  # what a killed CLI does
    deadline = time.monotonic() + 3
    while provider.active_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.active_connections == 0


def test_failed_scenario_fails_the_non_streamed_retry_too(provider: SimulatedProvider) -> None:
    provider.add_scenario("f", Scenario.failed())
    body = {**sample("anthropic"), "stream": False}
    reply = post(provider.scenario_url("f"), ANTHROPIC, body)
    assert reply.status == 500
    assert reply.json()["error"]["type"] == "api_error"


def test_long_text_never_repeats_a_sentence() -> None:
    from corral.provider.scenarios import long_text

    text = long_text(100_000)
    assert len(text) == 100_000
    sentences = text.split(". ")[:-1]
    assert len(sentences) == len(set(sentences))
