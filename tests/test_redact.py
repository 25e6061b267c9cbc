"""corral.redact: which names are secret, and what a Redactor leaves of a value."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.events.redaction import redacting
from corral.events.types import JobOutput, JobStarted, RunStarted, ToolCall
from corral.redact import MASK, Redactor, is_secret_name, name_patterns, strip_url_passwords


def test_secret_names_by_default_and_configured() -> None:
    patterns = name_patterns({"CORRAL_SECRET_NAMES": "*_CREDS, vault*"}, ["DB_LOGIN"])
    for name in ("ANTHROPIC_API_KEY", "github_token", "MY_SECRET_X", "DB_PASSWORD", "A_CREDS"):
        assert is_secret_name(name, patterns), name
    assert is_secret_name("VAULT_ADDR", patterns) and is_secret_name("db_login", patterns)
    for name in ("HOME", "PATH", "KEYBOARD", "TOKENIZER_MODEL"):
        assert not is_secret_name(name, patterns), name


def test_url_passwords_go_before_anything_is_written() -> None:
    text = "--store postgresql+psycopg://corral:S3cret@db:5432/h and https://x.org/a@b"
    assert strip_url_passwords(text) == (
        "--store postgresql+psycopg://corral:***@db:5432/h and https://x.org/a@b"
    )


def test_values_are_replaced_everywhere_in_an_event() -> None:
    redactor = Redactor()
    redactor.add_environ({"OPENAI_API_KEY": "sk-abcdef123", "HOME": "/root", "X_TOKEN": "ab"})
    redactor.add_environ({"LOGIN": "hunter2-x"}, marked=["LOGIN"])
    transform = redacting(redactor)
    started = JobStarted(
        job="j",
        attempt=1,
        pid=1,
        argv=("tool", "--key=sk-abcdef123", "/root", "hunter2-x"),
        log_dir="/l",
        started_at=0.0,
        spec={
            "env": {"X_TOKEN": "ab", "LOGIN": "hunter2-x", "HOME": "/root"},
            "secret_env": ["LOGIN"],
        },
    )
    shown = transform(started)
    assert isinstance(shown, JobStarted)
    assert shown.argv == ("tool", "--key=***", "/root", "***")
    # a secret name is *** even when its value is too short to search for
    assert shown.spec["env"] == {"X_TOKEN": "***", "LOGIN": "***", "HOME": "/root"}
    header = RunStarted(
        run_id="r",
        flow_name="f",
        flow_path="/f",
        jobs=("j",),
        started_at=0.0,
        flow_content="env: {OPENAI_API_KEY: sk-abcdef123}",
        args=("--store", "pg://u:pw@h/d"),
    )
    shown_header = transform(header)
    assert isinstance(shown_header, RunStarted)
    assert shown_header.flow_content == "env: {OPENAI_API_KEY: ***}"
    assert shown_header.args == ("--store", "pg://u:***@h/d")
    # output lines go to the log as printed, and an unchanged event stays the same object
    line = JobOutput(job="j", attempt=1, stream="stdout", text="sk-abcdef123", offset=0)
    assert transform(line) is line
    quiet = JobStarted(job="j", attempt=1, pid=1, argv=("ls",), log_dir="/l", started_at=0.0)
    assert transform(quiet) is quiet


@settings(max_examples=200, deadline=None)
@given(
    secrets=st.lists(st.text("ab:/@xy", min_size=6, max_size=9), max_size=4),
    texts=st.lists(st.text("ab:/@xy .", max_size=30), min_size=1, max_size=4),
)
def test_an_event_is_redacted_as_a_walk_of_every_string_would(
    secrets: list[str], texts: list[str]
) -> None:
    redactor = Redactor()
    for secret in secrets:
        redactor.add(secret)
    longest = sorted(set(secrets), key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, longest))) if longest else None

    def reference(text: str) -> str:
        text = pattern.sub(MASK, text) if pattern is not None else text
        return strip_url_passwords(text) if "://" in text else text

    event = ToolCall(job="j", attempt=1, name=texts[0], detail=texts[-1], call_id=None)
    got = redactor.value(event)
    assert (got.name, got.detail, got.job) == (reference(texts[0]), reference(texts[-1]), "j")
    assert (got is event) == (got == event)  # unchanged events stay the same object
    assert redactor.value(got) == got  # twice is once


def test_a_value_without_strings_is_passed_over_and_one_with_a_string_is_still_searched() -> None:
    import dataclasses as dc
    from decimal import Decimal

    from corral.events.types import UsageUpdated
    from corral.models import Cost, CostSource, Usage

    redactor = Redactor()
    redactor.add("sk-abcdef123")
    usage = UsageUpdated(
        job="j",
        attempt=1,
        by_model={"m": Usage(input_tokens=3, turns=1)},
        cost=Cost(Decimal("0.5"), CostSource.ESTIMATED),
    )
    assert redactor.value(usage) is usage
    # a field typed int that holds a string anyway is searched like any other
    odd = Usage(input_tokens="key sk-abcdef123")  # type: ignore[arg-type]  # on purpose
    assert redactor.value(odd).input_tokens == "key ***"

    @dc.dataclass(frozen=True)
    class Empty:
        pass

    empty = Empty()
    assert redactor.value(empty) is empty
