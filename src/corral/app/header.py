"""A run's identity: its id, and its first event (what runs, from which flow, where, by
whom)."""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from corral.config.loaded import LoadedFlow
from corral.events.types import RunStarted
from corral.times import id_stamp

# Crockford's base32 (no I, L, O, U), lower case: 16 characters carry 80 random bits
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RANDOM_BITS = 80


def new_run_id(now: float | None = None) -> str:
    """`20250131-140502-7mq3x0c9k2f8h1vd`: sortable by time (to the second, UTC: the
    run's `started_at`, corral.times), unique by its 80 random bits, as a ULID is (two
    runs in the same second collide with odds of about n**2 / 2**81)."""
    stamp = id_stamp(time.time() if now is None else now)
    # the bytes `secrets.randbits` reads, read here (secrets imports random, hmac, base64)
    bits = int.from_bytes(os.urandom(RANDOM_BITS // 8))
    tail = "".join(_ALPHABET[(bits >> shift) & 31] for shift in range(RANDOM_BITS - 5, -1, -5))
    return f"{stamp}-{tail}"


def run_header(
    loaded: LoadedFlow,
    run_id: str,
    log_root: Path,
    args: Sequence[str],
    resumed_from: str | None,
    jobs: Iterable[str],
    *,
    owner: str | None = None,
    rehearsal: bool = False,
    started_at: float | None = None,
) -> RunStarted:
    """The run's first event: what runs, from which flow, where, by whom (`owner`, else
    the user running corral), and whether it is a `rehearsal`. `started_at` (default:
    now) is the instant the run id was made from."""
    return RunStarted(
        run_id=run_id,
        flow_name=loaded.name,
        flow_path=str(loaded.path.resolve()),
        jobs=tuple(jobs),
        started_at=time.time() if started_at is None else started_at,
        flow_hash=loaded.digest,
        flow_content=loaded.text,
        args=tuple(args),
        user=owner or _user(),
        host=socket.gethostname(),
        log_root=str(log_root),
        resumed_from=resumed_from,
        rehearsal=rehearsal,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
