"""A fast path for loading a flow's YAML: Python values straight from the text's lines,
from libyaml's events, or from its composed nodes, by one tight function.

The usual flow (block mappings and sequences, each value on its key's line) is read line
by line with regular expressions (`_from_lines`, below); a document it does not take,
from libyaml.

PyYAML's own constructor (generators, a state per node, recursion bookkeeping) costs as
much as parsing, and composing makes a node and two marks per scalar; for the documents
flows are (mappings, sequences and core scalars) the result is the same. A plain
document is built from the parser's events; one with anchors, aliases or explicit tags
from the nodes. Anything else (a merge key, a custom tag, a key that is not a scalar, a
key written twice, a recursive alias) returns `UNUSUAL`: the caller then loads the text
the precise way, which gives the same value or the same located error.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_STR = "tag:yaml.org,2002:str"
# the scalar tags the safe resolver gives plain scalars; their constructors return values
_SCALARS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "binary")
)
UNUSUAL: Any = object()  # a sentinel: "load this one the precise way"


class _Unusual(Exception):
    pass


def fast_load(text: str, loader: type[Any]) -> Any:
    """The document in `text` as `yaml.load(text, Loader=loader)` gives it, or UNUSUAL.

    A syntax error is raised as PyYAML raises it (the parser finds it), with its mark.
    """
    quick = _quick(loader)
    if quick is not loader:  # plain documents: from their lines, else libyaml's events
        value = _from_lines(text, quick)
        if value is not UNUSUAL:
            return value
        value = _from_events(quick(text))
        if value is not UNUSUAL:
            return value
    instance = quick(text)  # anchors, aliases and tags: from the composed nodes
    try:
        root = instance.get_single_node()
        if root is None:
            return None
        return _Builder(instance).build(root)
    except _Unusual:
        return UNUSUAL
    finally:
        instance.dispose()


_NO_KEY: Any = object()  # a mapping waiting for its next key


def _from_events(parser: Any) -> Any:
    """The document from the parser's events, with no node or mark kept: for a document
    of plain mappings, sequences and untagged scalars (a 10,000-job flow in half the
    time of composing it). UNUSUAL for anything else: an anchor, an alias, an explicit
    tag, a key that is not a scalar or is written twice, more than one document."""
    get = parser.get_event
    resolve = parser.resolve
    tags: dict[str | None, str] = {}
    string = str(parser.DEFAULT_SCALAR_TAG)
    try:
        get()  # the stream's start
        if type(get()) is _STREAM_END:  # else the document's start
            return None
        # each open collection: [the value, the key waiting for its value, keys seen]
        stack: list[list[Any]] = []
        root: Any = None
        while True:
            event = get()
            kind = type(event)
            if kind is _SCALAR:
                if event.anchor is not None or event.tag is not None:
                    return UNUSUAL
                text: str | None = event.value
                if event.implicit[0]:  # plain: its type from its text, remembered
                    tag = tags.get(text)
                    if tag is None:
                        tag = tags[text] = resolve(_SCALAR_NODE, text, event.implicit)
                else:  # quoted
                    tag = string
                value = text if tag == string else _typed(parser, event, tag)
            elif kind is _MAPPING_START or kind is _SEQUENCE_START:
                if event.anchor is not None or not event.implicit:
                    return UNUSUAL
                if stack and stack[-1][2] is not None and stack[-1][1] is _NO_KEY:
                    return UNUSUAL  # a mapping or sequence as a key
                opened: Any = {} if kind is _MAPPING_START else []
                stack.append([opened, _NO_KEY, set() if kind is _MAPPING_START else None])
                continue
            elif kind is _MAPPING_END or kind is _SEQUENCE_END:
                value = stack.pop()[0]
                text = None
            elif kind is _DOCUMENT_END:
                return root if type(get()) is _STREAM_END else UNUSUAL
            else:
                return UNUSUAL  # an alias
            if not stack:
                root = value
                continue
            if not _put(stack[-1], value, text):
                return UNUSUAL
    finally:
        parser.dispose()


def _typed(parser: Any, event: Any, tag: str) -> Any:
    """A plain scalar's value by its constructor (int, bool, null...), or UNUSUAL."""
    if tag not in _SCALARS:
        return UNUSUAL  # a merge key, `=`
    node = _SCALAR_NODE(tag, event.value, event.start_mark, event.end_mark)
    return construct(parser, node)


class BadScalar(yaml.constructor.ConstructorError):
    """A plain scalar its type's constructor refuses with a bare ValueError (a timestamp
    that is no date: `2026-02-30`), with the scalar's place."""


def construct(constructor: Any, node: yaml.ScalarNode) -> Any:
    """The value of a scalar node of a core tag; BadScalar where PyYAML's constructor
    raises a bare ValueError, which says neither what nor where."""
    try:
        return constructor.yaml_constructors[node.tag](constructor, node)
    except ValueError as error:
        kind = node.tag.rsplit(":", 1)[-1]
        problem = f"{node.value!r} reads as a {kind} but is not one ({error}): quote it"
        raise BadScalar(None, None, problem, node.start_mark) from None


def _put(top: list[Any], value: Any, text: str | None) -> bool:
    """Add `value` to the open collection `top` (a key: `text` is how it was written);
    False for an UNUSUAL value, or a key written twice, which PyYAML's loader reports
    with its place."""
    seen = top[2]
    if value is UNUSUAL:
        return False
    if seen is None:
        top[0].append(value)
    elif top[1] is not _NO_KEY:
        top[0][top[1]] = value
        top[1] = _NO_KEY
    elif text in seen or value in top[0]:
        return False
    else:
        seen.add(text)
        top[1] = value
    return True


_SCALAR = yaml.ScalarEvent
_MAPPING_START = yaml.MappingStartEvent
_MAPPING_END = yaml.MappingEndEvent
_SEQUENCE_START = yaml.SequenceStartEvent
_SEQUENCE_END = yaml.SequenceEndEvent
_DOCUMENT_END = yaml.DocumentEndEvent
_STREAM_END = yaml.StreamEndEvent


_QUICK: dict[type[Any], type[Any]] = {}


def _quick(loader: type[Any]) -> type[Any]:
    """`loader` whose resolver remembers each plain scalar's tag within a document:
    libyaml's composer asks it for every node (100,000 times in a 10,000-job flow),
    mostly for the same few words. Only for a loader without path resolvers, whose tag
    then depends on the scalar's text alone (PyYAML's `BaseResolver.resolve`)."""
    if loader.yaml_path_resolvers:
        return loader
    found = _QUICK.get(loader)
    if found is None:
        resolve = loader.resolve

        class Quick(loader):  # type: ignore[misc]  # a base chosen at run time (any PyYAML loader)
            def __init__(self, stream: str) -> None:
                super().__init__(stream)
                self.tags: dict[str, str] = {}

            def resolve(self, kind: type[yaml.Node], value: str, implicit: Any) -> str:
                if kind is not _SCALAR_NODE:
                    return str(resolve(self, kind, value, implicit))
                if not implicit[0]:  # quoted: a string
                    return str(self.DEFAULT_SCALAR_TAG)
                tag = self.tags.get(value)
                if tag is None:
                    tag = self.tags[value] = str(resolve(self, kind, value, implicit))
                return tag

        found = _QUICK[loader] = Quick
    return found


class _Builder:
    """One document's nodes to values; aliases give the same object, as in PyYAML."""

    def __init__(self, constructor: Any) -> None:
        self.constructor = constructor
        self.done: dict[int, Any] = {}  # id(collection node) -> its value
        self.building: set[int] = set()

    def build(self, node: yaml.Node) -> Any:
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag == _STR:
                return node.value
            if tag not in _SCALARS:
                raise _Unusual
            return construct(self.constructor, node)
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.building:
            raise _Unusual  # a recursive alias
        self.building.add(key)
        value = self._mapping(node) if tag == _MAP else self._sequence(node)
        self.building.discard(key)
        self.done[key] = value
        return value

    # a string is by far the most common node: taken inline, without a call (`build`)

    def _sequence(self, node: yaml.Node) -> list[Any]:
        if node.tag != _SEQ or not isinstance(node, yaml.SequenceNode):
            raise _Unusual
        build = self.build
        return [
            item.value if item.tag == _STR and type(item) is _SCALAR_NODE else build(item)
            for item in node.value
        ]

    def _mapping(self, node: yaml.Node) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise _Unusual
        out: dict[Any, Any] = {}
        seen: set[str] = set()
        build = self.build
        for key_node, value_node in node.value:
            if type(key_node) is not _SCALAR_NODE or key_node.value in seen:
                raise _Unusual  # a complex key, or a duplicate: the precise path says so
            seen.add(key_node.value)
            key = key_node.value if key_node.tag == _STR else build(key_node)
            if key in out:
                raise _Unusual  # two spellings of one key (`1` and `0x1`)
            plain = value_node.tag == _STR and type(value_node) is _SCALAR_NODE
            out[key] = value_node.value if plain else build(value_node)
        return out


_SCALAR_NODE = yaml.ScalarNode


# The line reader: a document of block mappings and sequences whose values sit on their
# key's line (a scalar, or a flow collection closed on that line), written in printable
# ASCII with simple scalars, is read line by line with regular expressions: no event,
# node or mark at all. Each plain scalar's type comes from the loader's own resolver and
# constructor. Anything outside that (a block scalar, a value continued on the next
# line, a flow collection over several lines, an escape, an anchor, a tag, a key written
# twice, a tab...) is UNUSUAL, and the caller reads the document from libyaml's events.

_ODD = re.compile(r"[^\x20-\x7e\n]")  # anything but printable ASCII and line feeds
# `key:` then spaces and the rest, or the end of the line
_KEY_LINE = re.compile(r"""([A-Za-z0-9_][\w.-]*|'[^'\n]*'|"[^"\\\n]*"):(?: +(.*))?$""", re.ASCII)
# how a plain scalar may start: never with an indicator (- ? : , [ ] { } # & * ! | > ' " % @ `)
# (a value never starts a line, so `...` is no document end); `-` only before a word (`-1`)
_PLAIN_START = re.compile(r"[\w~/$(.]|-[\w.]", re.ASCII)
_QUOTED = re.compile(r"""('[^'\n]*'|"[^"\\\n]*")(?: +#.*)? *$""")
# one token of a flow collection: punctuation, `: `, a quoted or plain scalar (words
# joined by single spaces), a comment after a space, or anything else (UNUSUAL)
_FLOW_TOKEN = re.compile(
    r""" *(?:([\[\]{},])|(:)(?= )|('[^'\n]*'|"[^"\\\n]*")"""
    r"""|((?:[\w~/$(.]|-[\w.])[\w./~$()+=;-]*(?: [\w./~$()+=;-]+)*)|(?<= )(\#.*)|(.))""",
    re.ASCII,
)
_LONGEST_KEY = 1000  # libyaml refuses a simple key over 1024 characters
# a flat flow mapping's entry (`key: value` or `key: [values]`, then `,` or `}`), the
# usual shape of a job on one line: `d7: {run: ['true'], needs: [d0, d4]}`
_TOKEN = r"""'[^'\n]*'|"[^"\\\n]*"|(?:[\w~/$(.]|-[\w.])[\w./~$()+=;-]*(?: [\w./~$()+=;-]+)*"""
_ENTRY = re.compile(
    rf" *({_TOKEN}) *: +(?:({_TOKEN})|\[ *((?:{_TOKEN})(?: *, *(?:{_TOKEN}))*)? *\]) *([,}}])",
    re.ASCII,
)
_ITEMS = re.compile(_TOKEN, re.ASCII).findall
_AFTER = re.compile(r"(?: +#.*)? *$")  # what may follow a flow collection on its line

# the states of a flow collection's reader: what the next token may be
_ITEM_OR_CLOSE, _ITEM, _NEXT_OR_CLOSE, _COLON, _DONE = range(5)
_UNSET: Any = object()


def _from_lines(text: str, loader: type[Any]) -> Any:
    """The document in `text` read line by line, or UNUSUAL (see above)."""
    if _ODD.search(text):
        return UNUSUAL
    rows: list[tuple[int, str]] = []  # (indent, text) of each line that is not blank or a comment
    for line in text.split("\n"):
        body = line.lstrip(" ")
        if body and body[0] != "#":
            rows.append((len(line) - len(body), body))
    if not rows or rows[0][0]:
        return UNUSUAL
    reader = _Lines(loader, rows)
    try:
        value, end = reader.block(0, 0)
    except (_Unusual, RecursionError):  # nested deeper than Python's stack: the events' way
        return UNUSUAL
    finally:
        reader.parser.dispose()
    return value if end == len(rows) else UNUSUAL


class _Lines:
    """The block structure of `rows` (by indentation) and the values on each line."""

    def __init__(self, loader: type[Any], rows: list[tuple[int, str]]) -> None:
        self.parser = loader("")  # its resolver and constructors; it parses nothing
        self.rows = rows
        self.values: dict[str, Any] = {}  # a plain scalar's text -> its value
        # PyYAML's resolver tries the patterns filed under a scalar's first character
        # (and none for a path: `_quick`); a text starting otherwise is a string
        implicit = loader.yaml_implicit_resolvers
        plain = getattr(loader.__mro__[1], "resolve", None) is yaml.resolver.BaseResolver.resolve
        self.typed_starts = implicit if plain and None not in implicit else None

    def scalar(self, text: str) -> Any:
        """A plain scalar's value, typed as the loader types it (`8` -> 8, `yes` -> True)."""
        value = self.values.get(text, _UNSET)
        if value is _UNSET:
            starts = self.typed_starts
            if starts is not None and text[0] not in starts:
                self.values[text] = text
                return text
            tag = self.parser.resolve(_SCALAR_NODE, text, (True, False))
            if tag == _STR:
                value = text
            elif tag not in _SCALARS:
                raise _Unusual  # a merge key, `=`
            else:
                try:
                    value = construct(self.parser, _SCALAR_NODE(tag, text, None, None))
                except BadScalar:
                    raise _Unusual from None  # the precise path says where
            self.values[text] = value
        return value

    def block(self, i: int, indent: int) -> tuple[Any, int]:
        """The mapping or sequence whose first line is rows[i], and the row after it."""
        if self.rows[i][1].startswith("- "):
            return self.sequence(i, indent)
        return self.mapping(i, indent)

    def mapping(self, i: int, indent: int) -> tuple[dict[Any, Any], int]:
        rows, count = self.rows, len(self.rows)
        out: dict[Any, Any] = {}
        seen: set[str] = set()  # the keys as written: `'1'` and `1` are one key to PyYAML's loader
        while i < count:
            at, body = rows[i]
            if at != indent:
                if at < indent:
                    break
                raise _Unusual  # deeper than its mapping: a continued value
            match = _KEY_LINE.match(body)
            if match is None:
                raise _Unusual
            raw, rest = match.groups()
            if len(raw) > _LONGEST_KEY:
                raise _Unusual
            if raw[0] in "'\"":
                key = text = raw[1:-1]
            else:
                key, text = self.scalar(raw), raw
            if key in out or text in seen:
                raise _Unusual  # written twice: the precise path says where
            seen.add(text)
            i += 1
            if rest and rest[0] != "#":
                out[key] = self.inline(rest)
            elif i < count and (
                rows[i][0] > indent or (rows[i][0] == indent and rows[i][1].startswith("- "))
            ):
                out[key], i = self.block(i, rows[i][0])
            else:
                out[key] = None
        return out, i

    def sequence(self, i: int, indent: int) -> tuple[list[Any], int]:
        rows, count = self.rows, len(self.rows)
        out: list[Any] = []
        while i < count:
            at, body = rows[i]
            if at != indent:
                if at < indent:
                    break
                raise _Unusual
            if not body.startswith("- "):
                break  # the next key of the mapping this sequence is a value of
            item = body[2:].lstrip(" ")
            if not item or item[0] == "#":
                raise _Unusual  # an item on the lines below
            out.append(self.inline(item))
            i += 1
        return out, i

    def inline(self, text: str) -> Any:
        """The value written after `key: ` or `- ` (a comment may follow)."""
        first = text[0]
        if first == "{":
            value = self.flat(text)
            return self.flow(text) if value is _UNSET else value
        if first == "[":
            return self.flow(text)
        if first in "'\"":
            quoted = _QUOTED.match(text)
            if quoted is None:
                raise _Unusual
            return quoted.group(1)[1:-1]
        if not _PLAIN_START.match(text):
            raise _Unusual
        cut = text.find(" #")
        if cut >= 0:
            text = text[:cut]
        text = text.rstrip(" ")
        if ": " in text or text[-1] == ":":
            raise _Unusual
        return self.scalar(text)

    def token(self, token: str) -> Any:
        """A quoted or plain scalar's value (a quoted one remembered with its quotes)."""
        if token[0] in "'\"":
            value = self.values[token] = token[1:-1]
            return value
        return self.scalar(token)

    def flat(self, text: str) -> Any:
        """A flow mapping of scalars and lists of scalars, a regular expression per entry;
        _UNSET for any other text (`flow` then reads it, or finds what is unusual)."""
        out: dict[Any, Any] = {}
        seen: set[str] = set()
        values, token = self.values, self.token
        at, end = 1, ","
        while end == ",":
            entry = _ENTRY.match(text, at)
            if entry is None:
                return _UNSET
            raw, one, items, end = entry.groups()
            quoted = raw[0] in "'\""
            written = raw[1:-1] if quoted else raw
            key = written if quoted else self.scalar(raw)
            if key in out or written in seen or len(written) > _LONGEST_KEY:
                return _UNSET
            seen.add(written)
            if one is not None:
                out[key] = values[one] if one in values else token(one)
            elif items is None:
                out[key] = []
            else:
                out[key] = [values[t] if t in values else token(t) for t in _ITEMS(items)]
            at = entry.end()
        return out if _AFTER.match(text, at) else _UNSET

    def flow(self, text: str) -> Any:
        """A flow collection closed on its line: `{run: [make, test], needs: [lint]}`."""
        built = _Flow()
        for punct, colon, quoted, plain, comment, _other in _FLOW_TOKEN.findall(text):
            if plain:
                built.scalar(self.scalar(plain), plain)
            elif quoted:
                built.scalar(quoted[1:-1], quoted[1:-1])
            elif colon:
                built.colon()
            elif punct:
                built.punct(punct)
            elif comment and built.state == _DONE:
                break
            else:
                raise _Unusual  # anything else, or a comment inside the collection
        if built.state != _DONE:
            raise _Unusual
        return built.root


class _Flow:
    """A flow collection built token by token, refusing what is not plainly valid."""

    def __init__(self) -> None:
        # each open collection: [the value, its pending key, the keys written (a mapping)]
        self.stack: list[list[Any]] = []
        self.root: Any = None
        self.state = _ITEM

    def scalar(self, value: Any, written: str) -> None:
        if self.state not in (_ITEM, _ITEM_OR_CLOSE) or not self.stack:
            raise _Unusual
        top = self.stack[-1]
        into = top[0]
        if type(into) is list:
            into.append(value)
        elif top[1] is _NO_KEY:
            if value in into or written in top[2] or len(written) > _LONGEST_KEY:
                raise _Unusual
            top[2].add(written)
            top[1] = value
            self.state = _COLON
            return
        else:
            into[top[1]] = value
            top[1] = _NO_KEY
        self.state = _NEXT_OR_CLOSE

    def colon(self) -> None:
        if self.state != _COLON:
            raise _Unusual
        self.state = _ITEM

    def punct(self, punct: str) -> None:
        if punct == ",":
            if self.state != _NEXT_OR_CLOSE or not self.stack:
                raise _Unusual  # `[a,,b]`, `[a,]`: not taken here
            self.state = _ITEM
        elif punct in "{[":
            self.open({} if punct == "{" else [])
        else:  # `}` or `]`
            if self.state not in (_NEXT_OR_CLOSE, _ITEM_OR_CLOSE) or not self.stack:
                raise _Unusual
            closed = self.stack.pop()[0]
            if (punct == "}") != (type(closed) is dict):
                raise _Unusual
            self.state = _NEXT_OR_CLOSE if self.stack else _DONE

    def open(self, opened: Any) -> None:
        if self.state not in (_ITEM, _ITEM_OR_CLOSE):
            raise _Unusual
        if self.stack:
            top = self.stack[-1]
            if type(top[0]) is list:
                top[0].append(opened)
            elif top[1] is _NO_KEY:
                raise _Unusual  # a collection as a key
            else:
                top[0][top[1]] = opened
                top[1] = _NO_KEY
        else:
            self.root = opened
        self.stack.append([opened, _NO_KEY, set()])
        self.state = _ITEM_OR_CLOSE
