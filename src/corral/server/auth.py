"""Who may call the API: bearer tokens, the browser's session cookie, CSRF.

A server keeps only the SHA-256 of its tokens, in a 0600 file next to the history
(`server-token.json`), so nothing secret rests on its disk; a new token is printed once,
when it is made. Every token belongs to an owner: runs a token submits are that owner's
(one owner per token today; users and roles come later on the same shape).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

from corral.private import replace_private

TOKEN_FILE = "server-token.json"
SESSION_COOKIE = "corral_session"
CSRF_HEADER = "x-corral-csrf"


@dataclass(frozen=True)
class Principal:
    """The caller an accepted token stands for."""

    owner: str
    via_cookie: bool = False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_owner() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class TokenBook:
    """The accepted tokens (as digests) and their owners."""

    def __init__(self, entries: dict[str, str]) -> None:
        self._entries = dict(entries)  # digest -> owner

    def check(self, token: str | None) -> Principal | None:
        """The owner of `token`, or None; constant time in the token's content."""
        if not token:
            return None
        candidate = _digest(token)
        found = None
        for digest, owner in self._entries.items():
            if hmac.compare_digest(candidate, digest):
                found = owner
        return None if found is None else Principal(found)

    @classmethod
    def given(cls, token: str, owner: str) -> TokenBook:
        """A book holding only `token` (from `--token` or CORRAL_SERVER_TOKEN)."""
        return cls({_digest(token): owner})


@dataclass(frozen=True)
class TokenSetup:
    """The tokens a server accepts and, when it just made one, that token (to print)."""

    book: TokenBook
    path: Path | None
    created: str | None


def load_or_create(folder: Path, *, owner: str | None = None, renew: bool = False) -> TokenSetup:
    """Read `folder/server-token.json`, or make a token and write its digest there (0600).

    `renew` replaces the stored token with a new one (the old stops working).
    """
    path = folder / TOKEN_FILE
    if path.exists() and not renew:
        data = orjson.loads(path.read_bytes())
        entries = {t["sha256"]: t["owner"] for t in data.get("tokens", [])}
        if entries:
            return TokenSetup(TokenBook(entries), path, None)
    token = secrets.token_urlsafe(32)
    who = owner or default_owner()
    folder.mkdir(parents=True, exist_ok=True)
    document = {"version": 1, "tokens": [{"owner": who, "sha256": _digest(token)}]}
    replace_private(path, orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return TokenSetup(TokenBook({_digest(token): who}), path, token)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def same_origin(origin: str | None, host: str | None) -> bool:
    """A browser's WebSocket: its Origin must name the host it connects to."""
    if origin is None:
        return True  # not a browser (browsers always send Origin on WebSockets)
    if host is None:
        return False
    return origin.split("://", 1)[-1].rstrip("/") == host
