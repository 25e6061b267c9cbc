"""Interpolated values stay one argument: how a `run:` string is rendered safely.

While a `run:` string renders, every `{{ }}` / `${{ }}` value is replaced by a marker
(`capture`), so the command's own text can be read without the values in it. Then:

- each marker becomes its value quoted for the place where it stands: unquoted, inside
  `'...'` or inside `"..."` (with `shell: true` also inside `$(...)` and backticks), so
  `/bin/sh` -- or, without a shell, corral's own split of the command (`shlex.split`) --
  reads it back as the same bytes and never as syntax: a value never adds a word.

`unsafe_raw` is the one explicit opt-out (`{{ jobs.x.result | unsafe_raw }}`): its value
goes into the command as written. It is documented in docs/security.md, and `corral
validate` names every use of it.
"""

from __future__ import annotations

import contextvars
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_captured: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "corral_captured", default=None
)


class RawText(str):
    """A value the author asked to interpolate unquoted (`| unsafe_raw`)."""

    __slots__ = ()


def unsafe_raw(value: Any) -> RawText:
    """The Jinja filter of the opt-out: the value, marked to be written as is."""
    return RawText("" if value is None else value)


def finalize(value: Any) -> Any:
    """Jinja's `finalize`: what each `{{ }}` writes. A marker while a command renders."""
    text = "" if value is None else value
    captured = _captured.get()
    if captured is None or isinstance(text, RawText):
        return text
    captured.append(str(text))
    return f"{_OPEN}{len(captured) - 1}{_CLOSE}"


@contextmanager
def capture() -> Iterator[list[str]]:
    """Within this block, rendered values become markers; the list gets the values."""
    values: list[str] = []
    token = _captured.set(values)
    try:
        yield values
    finally:
        _captured.reset(token)


def has_markers(text: str) -> bool:
    return _OPEN in text


def _double_quoted(value: str, shell: bool) -> str:
    # inside "...", only \ $ ` and " keep a meaning to sh (only \ and " to shlex);
    # escaped, they are plain characters
    return re.sub(r'([\\$`"])' if shell else r'([\\"])', r"\\\1", value)


def _single_quoted(value: str) -> str:
    # inside '...' nothing is special but the closing quote: close, escape it, reopen
    return value.replace("'", "'\\''")


# the pieces the lexer tells apart: a marker, an escaped character, a quote or a
# bracket that opens or closes a context, and runs of anything else
_TOKEN = re.compile(
    f"(?P<marker>{_OPEN}\\d+{_CLOSE})|\\\\[^{_OPEN}]|\\$\\(|[\"'`()]|[^\"'`()\\\\{_OPEN}$]+|.",
    re.DOTALL,
)


def _quote(value: str, stack: list[str], shell: bool) -> str:
    top = stack[-1] if stack else ""
    if top == "'":
        quoted = _single_quoted(value)
    elif top == '"':
        quoted = _double_quoted(value, shell)
    else:
        quoted = shlex.quote(value)
    # inside backticks the shell first strips one level of \ before ` $ and \
    for _level in range(stack.count("`")):
        quoted = re.sub(r"([\\`$])", r"\\\1", quoted)
    return quoted


def _step(stack: list[str], token: str, shell: bool) -> None:
    """Follow the quoting context through one token of the command."""
    top = stack[-1] if stack else ""
    if top == "'":
        if token == "'":
            stack.pop()
    elif token == '"':
        _toggle(stack, '"')
    elif token == "'" and top != '"':
        stack.append("'")
    elif not shell:
        return  # corral's own split knows only quotes and backslashes
    elif token == "`":
        _toggle(stack, "`")
    elif token == "$(" or (token == "(" and top != '"'):
        stack.append(token)
    elif token == ")" and top in ("$(", "("):
        stack.pop()


def _toggle(stack: list[str], quote: str) -> None:
    if stack and stack[-1] == quote:
        stack.pop()
    else:
        stack.append(quote)


def quote_command(text: str, values: list[str], *, shell: bool) -> str:
    """`text` with each marker replaced by its value, quoted for the context it stands in
    (read by a small POSIX sh lexer): for `/bin/sh -c` with `shell`, else for the
    `shlex.split` that makes the argv of a command string."""
    out: list[str] = []
    stack: list[str] = []  # "'", '"', "$(", "(", "`": the contexts we are inside
    for match in _TOKEN.finditer(text):
        token = match.group()
        if match.group("marker"):
            out.append(_quote(values[int(token[1:-1])], stack, shell))
        else:
            out.append(token)
            if not token.startswith("\\"):
                _step(stack, token, shell)
            elif stack and stack[-1] == "'":  # a backslash is plain inside '...'
                _step(stack, token[1], shell)
    return "".join(out)
