"""Every flow the README, docs/ and examples/ show is true: `corral validate` accepts it
(or, where a page shows a mistake, prints what the page shows next to it), and a real
JSON Schema validator accepts it against `corral schema`, as an editor would."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from helpers import corral

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHOWN_MISTAKE = "$ corral validate flow.yaml\n"


def _flow_blocks() -> list[tuple[str, str, bool]]:
    """(where, text, shown as a mistake) for each YAML block that is a flow (has jobs:)."""
    blocks = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"```ya?ml\n(.*?)```", text, re.DOTALL):
            body = match.group(1)
            data = yaml.safe_load(body)
            if isinstance(data, dict) and "jobs" in data:
                line = text.count("\n", 0, match.start()) + 2
                after = text[match.end() : match.end() + 200]
                blocks.append((f"{page.name}:{line}", body, SHOWN_MISTAKE in after))
    return blocks


BLOCKS = _flow_blocks()
EXAMPLES = sorted((ROOT / "examples").glob("*.y*ml"))


def test_the_pages_show_flows() -> None:
    assert {where.split(":")[0] for where, _, _ in BLOCKS} >= {"README.md", "graphs.md"}
    assert EXAMPLES


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("schema")
    result = corral("schema", cwd=folder)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


@pytest.mark.parametrize(("where", "text", "mistake"), BLOCKS, ids=[b[0] for b in BLOCKS])
def test_each_docs_flow_validates(tmp_path: Path, where: str, text: str, mistake: bool) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(text)
    result = corral("validate", str(flow), cwd=tmp_path)
    if mistake:  # the page shows the exact error; test_docs_graphs compares it
        assert result.returncode == 2, (where, result.stdout)
    else:
        assert result.returncode == 0, f"{where}: {result.stderr}"


@pytest.mark.parametrize(
    ("where", "text"),
    [(w, t) for w, t, mistake in BLOCKS if not mistake]
    + [(path.name, path.read_text()) for path in EXAMPLES],
    ids=[w for w, _, mistake in BLOCKS if not mistake] + [path.name for path in EXAMPLES],
)
def test_each_flow_matches_the_json_schema(schema: dict[str, Any], where: str, text: str) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(yaml.safe_load(text))
    ]
    assert errors == [], where


def test_the_schema_rejects_what_validate_rejects(schema: dict[str, Any]) -> None:
    """A schema that accepts anything would pass the test above."""
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"jobs": {"a": {"run": "x", "timout": "1m"}}})
    assert not validator.is_valid({"jobs": {"a": {"run": "x", "timeout": ["1m"]}}})
    assert validator.is_valid({"jobs": {"a": {"run": "x", "timeout": "1m", "delay": 5}}})


DURATIONS = ["90", "90s", "5m", "1h30m", "1.5h", "7d", "250ms", " 2 M ", "1_000", "1h 30m"]
NOT_DURATIONS = ["5 minutes", "-3s", "1h30", "m", "", "1.5.h", "yesterday"]


@pytest.mark.parametrize("text", [*DURATIONS, *NOT_DURATIONS])
def test_the_schema_reads_durations_as_corral_does(schema: dict[str, Any], text: str) -> None:
    from corral.durations import parse_duration

    try:
        parse_duration(text)
        valid = True
    except ValueError:
        valid = False
    flow = {"jobs": {"a": {"run": "x", "timeout": text}}}
    assert jsonschema.Draft202012Validator(schema).is_valid(flow) == valid, text


def test_the_schema_takes_needs_as_a_string(schema: dict[str, Any]) -> None:
    flow = {"jobs": {"a": {"run": "x"}, "b": {"run": "y", "needs": "a"}}}
    assert jsonschema.Draft202012Validator(schema).is_valid(flow)
