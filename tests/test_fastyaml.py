"""The fast YAML path gives what PyYAML's constructor gives, or hands over to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from corral.config.fastyaml import UNUSUAL, _from_events, _quick, fast_load
from corral.config.loader import _flow_loader, _load_yaml, load_flow
from corral.errors import FlowError

SAME = [
    "jobs:\n  a: {run: ['true'], needs: [b, c]}\n  b: {run: echo hi}\n",
    "a: 1\nb: 0x1F\nc: 1.5e3\nd: .inf\ne: ~\nf: null\ng: yes\nh: on\ni: 'yes'\nj: \"x\\ty\"\n",
    "when: 2026-12-03\nat: 2026-12-03T14:00:00Z\nblob: !!binary aGk=\n",
    "x: &a {k: [1, 2]}\ny: *a\nz: [*a, *a]\n",
    "1: one\nfalse: yes\nnull: nothing\n",
    "list:\n- |\n  block\n  text\n- >\n  folded\n  text\n- !!str 12\n",
    "",
    "# only a comment\n",
    "[1, [2, [3, {a: b}]]]\n",
]


@pytest.mark.parametrize("text", SAME)
def test_same_value_as_pyyaml(text: str) -> None:
    expected = yaml.load(text, Loader=_flow_loader())
    assert fast_load(text, _flow_loader()) == expected
    assert _load_yaml(text) == expected


def test_an_alias_is_the_same_object() -> None:
    data = fast_load("x: &a {k: 1}\ny: *a\n", _flow_loader())
    assert data["x"] is data["y"]


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {a: 1}\njob:\n  <<: *b\n  c: 2\n",  # a merge key
        "a: !Ref x\n",  # a custom tag
        "a: 1\na: 2\n",  # a key written twice
        "1: a\n0x1: b\n",  # one key, two spellings
        "1: a\ntrue: b\n",  # one key to Python (True == 1)
        "? [a, b]\n: c\n",  # a complex key
        "a: &r [*r]\n",  # a recursive alias
        "a: =\n",  # the value tag, which the safe constructor refuses
        "a: !!str [x]\n",  # a collection tagged as a string: PyYAML's error, not its nodes
        "a: [!!str {x: 1}]\n",
    ],
)
def test_unusual_documents_go_the_precise_way(text: str) -> None:
    assert fast_load(text, _flow_loader()) is UNUSUAL


def test_merge_keys_still_load() -> None:
    assert _load_yaml("base: &b {a: 1}\njob:\n  <<: *b\n  c: 2\n")["job"] == {"a": 1, "c": 2}


def test_errors_keep_their_position(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("jobs:\n  a: {run: x}\n  a: {run: y}\n")
    with pytest.raises(FlowError) as caught:
        load_flow(flow)
    assert "flow.yaml:3:3" in caught.value.lines()[0]
    assert "duplicate key 'a' (first at line 2)" in caught.value.lines()[0]
    flow.write_text("jobs:\n  a: {run: [x}\n")
    with pytest.raises(FlowError) as caught:
        load_flow(flow)
    assert "flow.yaml:2:" in caught.value.lines()[0] and "invalid YAML" in caught.value.lines()[0]


def test_a_collection_tagged_as_a_string_is_a_located_error(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("jobs:\n  a:\n    run: !!str [x]\n")
    with pytest.raises(FlowError) as caught:
        load_flow(flow)
    assert caught.value.lines()[0].startswith(f"{flow}:3:10: ")
    assert "expected a scalar node, but found sequence" in caught.value.lines()[0]


def test_the_benchmark_dag_loads_as_pyyaml_loads_it() -> None:
    """Many nodes, plain and quoted, numbers and words: the remembered tags change nothing."""
    lines = ["concurrency: 8", "jobs:"]
    for i in range(300):
        needs = ", ".join(f"d{n}" for n in range(max(0, i - 3), i))
        lines.append(f"  d{i}: {{run: ['true', true, 1, '1', 0x1, null, ''], needs: [{needs}]}}")
    text = "\n".join(lines) + "\n"
    assert fast_load(text, _flow_loader()) == yaml.load(text, Loader=_flow_loader())


@pytest.mark.parametrize(
    "text",
    [
        *SAME,
        "~: null key\n'1': quoted\n2: plain\n",
        "a:\n  - [x, {b: [c, {d: e}]}]\n  - {}\n  - []\n",
        "just a scalar\n",
        "---\n...\n",
    ],
)
def test_the_events_give_what_the_nodes_give(text: str) -> None:
    """Plain documents are built from libyaml's events; the rest from its nodes."""
    assert fast_load(text, _flow_loader()) == yaml.load(text, Loader=_flow_loader())


@pytest.mark.parametrize(
    "text",
    [
        "x: &a 1\ny: *a\n",  # an anchor and an alias: from the nodes
        "a: !!str 1\n",  # an explicit tag
        "'1': a\n1: b\n",  # one key's text twice
        "? [a]\n: b\n",  # a complex key
        "a: 1\n---\nb: 2\n",  # two documents
        "<<: {a: 1}\n",  # a merge key
    ],
)
def test_what_the_events_do_not_take_goes_on(text: str) -> None:
    loader = _flow_loader()
    assert _from_events(_quick(loader)(text)) is UNUSUAL
    try:
        expected: object = yaml.load(text, Loader=loader)
    except yaml.YAMLError:
        expected = UNUSUAL  # PyYAML's loader refuses it: so does the fast path
    try:
        found = fast_load(text, loader)
    except yaml.YAMLError:
        found = UNUSUAL  # refused too: the caller's precise load raises PyYAML's error
    assert found is UNUSUAL or found == expected


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("jobs:\n  a:\n    run: 'true'\n    env: {DAY: 2026-02-30}\n", "4:16"),  # from events
        ("x: &a 1\njobs:\n  a: {run: 'true', env: {DAY: 2026-13-01}}\n", "3:31"),  # nodes
    ],
)
def test_a_date_that_is_none_is_a_located_error(tmp_path: Path, text: str, place: str) -> None:
    """PyYAML's constructor raises a bare ValueError for it: corral says what and where."""
    flow = tmp_path / "flow.yaml"
    flow.write_text(text)
    with pytest.raises(FlowError) as caught:
        load_flow(flow)
    line = caught.value.lines()[0]
    assert line.startswith(f"{flow}:{place}: invalid YAML: '2026-"), line
    assert "reads as a timestamp but is not one" in line


def test_a_syntax_error_still_comes_first(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("a: 2026-02-30\nb: [unclosed\n")
    with pytest.raises(FlowError) as caught:
        load_flow(flow)
    with pytest.raises(yaml.MarkedYAMLError) as pyyaml:
        yaml.load(flow.read_text(), Loader=_flow_loader())
    assert "timestamp" not in caught.value.lines()[0]
    assert f"invalid YAML: {pyyaml.value.problem}" in caught.value.lines()[0]
