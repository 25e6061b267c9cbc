"""Untrusted text made harmless for a terminal: what a job printed never drives it.

Control characters (C0 but tab, DEL, C1 -- ESC, CSI, OSC, BEL, backspace, a lone CR...)
and the invisible characters that reorder or hide text (bidi overrides, zero-width
marks) are shown as escapes: `\\x1b]0;title\\x07` is printed as those characters, so
the user sees what the job tried, and the terminal sets no title, writes no clipboard,
moves no cursor. `corral logs` to a pipe or a file, and `--raw`, stay byte-exact.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

# tab and newline are text; CR only as part of CRLF (a lone CR rewrites the line)
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
    "|\r(?!\n)"
)
_LINE_UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    return "".join(
        f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" for c in match.group()
    )


def visible_line(text: str) -> str:
    """One line of output for the screen: every control or invisible character (tab
    aside) as an escape, newlines included."""
    return _LINE_UNSAFE.sub(_escape, text) if _LINE_UNSAFE.search(text) else text


def visible(text: str) -> str:
    """A block of output for the screen: newlines, CRLF and tabs kept, any other control
    or invisible character as an escape."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def visible_writer(write: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """Wraps a byte sink for a terminal: UTF-8 decoded across chunks, invalid bytes shown
    as `\\xNN`, then `visible`."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")

    def visible_write(chunk: bytes) -> None:
        text = decoder.decode(chunk, final=not chunk)
        if text:
            write(visible(text).encode("utf-8"))

    return visible_write
