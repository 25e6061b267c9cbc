"""The fast YAML path gives what PyYAML's constructor gives, or hands over to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.config.fastyaml import UNUSUAL, _from_events, _from_lines, _quick, fast_load
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


# the line reader: documents of block mappings and sequences with one-line values

LINES_SAME = [
    "concurrency: 8\njobs:\n  d0: {run: ['true']}\n  d1: {run: ['true'], needs: [d0]}\n",
    'jobs:\n  build:\n    run: make test && echo "done" # a comment\n    needs: [lint]\n'
    "  lint:\n    run: [ruff, check, .]\n    timeout: 1.5\n",
    "a:\n- x\n- 'y z'\n- \"q\"\nb: 2\n",  # a sequence at its key's indent
    "a:\n    - 1\n    - [2, {c: d}]\n# between\nb: {}\nc: []\nd:\ne: ~\n",
    "n: null\nt: yes\nf: off\ni: 0x1F\no: 0o17\nu: 1_000\nx: -.5\nw: a#b\nq: ''\n",
    "'quoted key': 1\n\"dq\": 2\n2: int key\non: bool key\n",
    "url: http://example.org/x?y=1\npath: /usr/bin/env\nvar: $HOME\nparen: (x)\n",
    "a: {b: {c: [d, [e, f], {}]}, g: h i}\n",
    "a: b   \n   \n  # an indented comment\nc: d\n",
    "when: 2026-12-03\n",
    "a: 1 # one\nb: [x] # the list\nc: 'q' # quoted\n",
    "- a\n- [b]\n",  # a root sequence
]


@pytest.mark.parametrize("text", LINES_SAME)
def test_the_line_reader_gives_what_pyyaml_gives(text: str) -> None:
    loader = _flow_loader()
    found = _from_lines(text, _quick(loader))
    assert found is not UNUSUAL
    assert found == yaml.load(text, Loader=loader)
    assert fast_load(text, loader) == found


LINES_UNUSUAL = [
    "a: |\n  block\n",  # a block scalar
    "a: >\n  folded\n",
    "a: one\n  two\n",  # a plain scalar continued on the next line
    "a: [x,\n  y]\n",  # a flow collection over two lines
    "a:\tb\n",  # a tab
    "a: caf\u00e9\n",  # not ASCII
    "a: &x 1\nb: *x\n",  # an anchor, an alias
    "a: !!str 1\n",  # a tag
    "a: 1\na: 2\n",  # a key twice
    "1: a\n0x1: b\n",  # one key, two spellings
    "a: {b: 1, b: 2}\n",
    "a: [x,]\n",  # a trailing comma
    "a: {b:c}\n",  # `:` with no space
    "a: {b}\n",  # a key with no value
    "a: b: c\n",
    "  a: 1\n",  # an indented root
    "a:\n  b: 1\n c: 2\n",  # a bad indent
    "a:\n  - x\n  b: 1\n",
    "a:\n  -\n    b\n",  # an item below its dash
    'a: "x\\ty"\n',  # an escape
    "a: 'it''s'\n",
    "<<: {a: 1}\n",  # a merge key
    "a: =\n",
    "---\na: 1\n",
    "a: 2026-02-30\n",  # a date that is none: the precise path says where
    "a: [b]#c\n",  # a comment with no space before it
    "a: -\n",
    "? a\n: b\n",
]


@pytest.mark.parametrize("text", LINES_UNUSUAL)
def test_what_the_line_reader_does_not_take_goes_on(text: str) -> None:
    assert _from_lines(text, _quick(_flow_loader())) is UNUSUAL


def test_a_document_nested_deeper_than_the_stack_goes_on() -> None:
    text = "".join(f"{' ' * depth}k:\n" for depth in range(3000)) + " " * 3000 + "k: v\n"
    assert _from_lines(text, _quick(_flow_loader())) is UNUSUAL


def _same_or_unusual(text: str) -> None:
    """The line reader gives PyYAML's value, or UNUSUAL; never a value PyYAML refuses."""
    loader = _flow_loader()
    found = _from_lines(text, _quick(loader))
    if found is UNUSUAL:
        return
    assert found == yaml.load(text, Loader=loader), text


# pieces of YAML, glued at random: indicators, spacing, scalars of every type
_PIECES = [
    " ",
    "  ",
    "\n",
    "\n  ",
    "\n    ",
    ": ",
    ":",
    "- ",
    "-",
    "{",
    "}",
    "[",
    "]",
    ", ",
    ",",
    "#",
    " #",
    "'",
    '"',
    "''",
    "a",
    "b c",
    "d0",
    "1",
    "0x1",
    "1.5",
    "yes",
    "null",
    "~",
    ".inf",
    "-1",
    "on",
    "2026-12-03",
    "run",
    "needs",
    "&",
    "*",
    "!",
    "|",
    ">",
    "?",
    "%",
    "@",
    "`",
    "\\",
    "\t",
    "http://x",
    "$X",
    "(y)",
    "=",
    "<<",
    "é",
    "...",
    "---",
]


@given(st.lists(st.sampled_from(_PIECES), max_size=40))
@settings(max_examples=300, deadline=None)
def test_the_line_reader_on_random_text(pieces: list[str]) -> None:
    _same_or_unusual("".join(pieces))


_WORDS = st.sampled_from(
    [
        "a",
        "b c",
        "d-0",
        "x.y",
        "1",
        "-2",
        "0x1F",
        "1.5",
        "true",
        "no",
        "null",
        "~",
        "2026-12-03",
        "$HOME",
        "/bin/sh",
        "(z)",
        "a#b",
    ]
)


def _render(value: object, indent: int, flow: bool, draw: st.DrawFn) -> str:
    """`value` as YAML: block or flow (chosen at random), scalars plain or quoted."""
    if isinstance(value, str):
        style = draw(st.sampled_from(["plain", "'", '"']))
        return value if style == "plain" else f"{style}{value}{style}"
    if isinstance(value, dict):
        if flow or not value or draw(st.booleans()):
            inner = ", ".join(f"{k}: {_render(v, 0, True, draw)}" for k, v in value.items())
            return "{" + inner + "}"
        pad = " " * indent
        return "".join(f"\n{pad}{k}:" + _block_value(v, indent, draw) for k, v in value.items())
    assert isinstance(value, list)
    if flow or not value or draw(st.booleans()):
        return "[" + ", ".join(_render(v, 0, True, draw) for v in value) + "]"
    pad = " " * indent
    return "".join(f"\n{pad}- {_render(v, 0, True, draw)}" for v in value)


def _block_value(value: object, indent: int, draw: st.DrawFn) -> str:
    if isinstance(value, str | list | dict) and not (isinstance(value, str)) and value:
        deeper = indent + draw(st.sampled_from([1, 2, 4]))
        if isinstance(value, list) and draw(st.booleans()):
            deeper = indent  # a sequence at its key's indent
        text = _render(value, deeper, False, draw)
        if text.startswith("\n"):
            return text
        return " " + text
    comment = draw(st.sampled_from(["", " # note", "  #"]))
    return " " + _render(value, 0, True, draw) + comment


@st.composite
def _documents(draw: st.DrawFn) -> str:
    keys = st.sampled_from(["a", "b", "job-1", "x_y", "run", "needs"])
    values = st.recursive(
        _WORDS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=8,
    )
    top = draw(st.dictionaries(keys, values, min_size=1, max_size=4))
    return _render(top, 0, False, draw).lstrip("\n") + "\n"


@given(_documents())
@settings(max_examples=200, deadline=None)
def test_the_line_reader_on_random_documents(text: str) -> None:
    _same_or_unusual(text)


@given(_documents(), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(_PIECES)), max_size=3))
@settings(max_examples=400, deadline=None)
def test_the_line_reader_on_damaged_documents(text: str, edits: list[tuple[float, str]]) -> None:
    """A document with a piece put in, or put in place of a character, here and there."""
    for where, piece in edits:
        at = int(where * len(text))
        text = text[:at] + piece + text[at + (len(edits) % 2) :]
    _same_or_unusual(text)
