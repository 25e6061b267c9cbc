"""A refused run in the history: the refusal and nothing else.

A run a policy denies gets a run id and one `runs` row with status `refused`, the flow
as it was submitted (content, hash, path), who asked (user, host, arguments) and the
denials as its error; its events are `run.started` (with no jobs) and `run.refused`
(carrying every denial in JSON form). It has no jobs, no attempts, no usage and no
log folder: nothing ran. `corral runs --status refused` lists them, `corral show RUN`
shows why, and `corral resume` refuses to resume one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from corral.config.loader import LoadedFlow
from corral.errors import StoreError
from corral.events.types import RunRefused
from corral.models import RunStatus
from corral.policy.gate import Verdict


@dataclasses.dataclass
class HistoryRecorder:
    """Records refusals in the history at `store_url` (default: SQLite at `default_path`).

    A history that cannot be written does not turn a refusal into a run: the refusal
    stands, and `error` says why it was not recorded.
    """

    store_url: str | None
    default_path: Path
    args: Sequence[str] = ()
    error: str | None = None

    def __call__(self, loaded: LoadedFlow, verdict: Verdict) -> str | None:
        from corral.app import new_run_id, run_header
        from corral.store import open_store

        now = time.time()
        run_id = new_run_id(now)
        started = dataclasses.replace(
            run_header(loaded, run_id, Path(), self.args, None, ()), started_at=now, log_root=""
        )
        denials = tuple({**f.to_json(), "location": verdict.location(f)} for f in verdict.denials)
        refused = RunRefused(
            run_id=run_id,
            status=RunStatus.REFUSED,
            ended_at=now,
            error="denied by policy: " + "; ".join(verdict.denial_lines()),
            denials=denials,
        )
        try:
            store = open_store(self.store_url, self.default_path)
            try:
                store.append(run_id, [started, refused], now=now)
            finally:
                store.close()
        except StoreError as error:
            self.error = error.message
            return None
        return run_id


__all__ = ["HistoryRecorder"]
