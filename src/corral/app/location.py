"""Where a run's files live: the `.corral` folder, its logs and its default history.

These names are spelt here and nowhere else. The rule every command follows (`run`,
`exec`, `rehearse`, `resume`, `runs`, `show`, `logs`, `usage`, `export`, `gc`): the
history is the nearest `.corral` folder at or above the current directory, as git finds
`.git`; with none, the current directory's (made by the first run). `--dir` or `--store`
point elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from corral.store.protocols import HistoryStore

CORRAL_DIR = ".corral"
HISTORY_FILE = "corral.db"  # the default history: SQLite in the .corral folder
RUNS_DIR = "runs"  # one folder of logs per run


def history_home(start: Path | None = None) -> Path:
    """The folder whose `.corral` holds the history for commands run in `start` (default:
    the current directory): the nearest one at or above it that has a `.corral`, else
    `start` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CORRAL_DIR).is_dir():
            return folder
    return here


def corral_dir(base: Path) -> Path:
    """The `.corral` folder of a flow's (or the current) folder."""
    return base / CORRAL_DIR


def default_history(base: Path) -> Path:
    """`<base>/.corral/corral.db`: the history when no --store URL is given."""
    return corral_dir(base) / HISTORY_FILE


def run_logs(base: Path, run_id: str) -> Path:
    """`<base>/.corral/runs/<run id>`: where a run's logs and joblog go."""
    return corral_dir(base) / RUNS_DIR / run_id


def open_history(
    url: str | None, directory: Path, *, must_exist: bool = False
) -> HistoryStore | None:
    """The history at `url` (any registered scheme), else SQLite under `directory`.

    With `must_exist`, a default history that was never written is None rather than
    created (the read-only commands say "no runs" instead of making a database).
    Raises StoreError for a bad URL or an unreachable database.
    """
    if url:
        from corral.store.registry import open_url

        return open_url(url)
    path = default_history(directory)
    if must_exist and not path.exists():
        return None
    from corral.private import private_dir

    private_dir(corral_dir(directory), below=corral_dir(directory))
    from corral.store.sql import open_store

    return open_store(None, path)
