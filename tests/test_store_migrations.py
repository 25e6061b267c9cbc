"""Migrations: from an empty database and from every earlier revision, on both engines."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, inspect

from corral.errors import MissingExtraError, StoreError
from corral.store import open_store, schema
from corral.store.engine import current_revision, resolve_url
from helpers import corral
from test_store_support import BACKENDS, backend_url, unmigrated

DATA = Path(__file__).parent / "data" / "store"
MIGRATIONS = Path(schema.__file__).parent / "migrations"


def test_head_revision_constant_matches_the_scripts() -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_current_head() == schema.HEAD_REVISION
    revisions = [s.revision for s in scripts.walk_revisions()]
    assert revisions == ["0005", "0004", "0003", "0002", "0001"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_database_migrates_to_exactly_the_schema(backend: str, tmp_path: Path) -> None:
    for url in backend_url(backend, tmp_path):
        store = unmigrated(url)
        with store.engine.connect() as conn:
            assert current_revision(conn) is None
        store.migrate()
        store.migrate()  # a second time is a no-op
        with store.engine.connect() as conn:
            assert current_revision(conn) == schema.HEAD_REVISION
            # the migrations build what schema.py declares, column for column, index for index
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_0001_backfills_per_model_usage(backend: str, tmp_path: Path) -> None:
    snapshot = json.loads((DATA / "v0001.json").read_text())
    for url in backend_url(backend, tmp_path):
        store = unmigrated(url)
        store.migrate("0001")
        with store.engine.begin() as conn:
            assert not inspect(conn).has_table("job_models")
            reflected = MetaData()
            for name, rows in snapshot["tables"].items():
                table = Table(name, reflected, autoload_with=conn)
                conn.execute(table.insert(), rows)
        store.migrate()
        run = store.get_run("v1-run")
        assert run.run.cost is not None and run.run.cost.usd == Decimal("0.0525")
        models = {r.key: r for r in store.usage("model")}
        assert models["claude-sonnet-4-5"].reported_usd == Decimal("0.035000")
        assert models["gpt-5-codex"].estimated_usd == Decimal("0.0125")
        assert models["mystery-model"].unpriced == 1
        assert {r.key for r in store.usage("flow")} == {"legacy"}
        final = run.job("analyze").final  # type: ignore[union-attr]  # the job exists
        assert final is not None and len(final.models) == 2
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_0003_marks_the_rehearsals_it_can_tell(backend: str, tmp_path: Path) -> None:
    """0004 adds `runs.rehearsal`; runs recorded before it are marked from the command
    that started them (`corral rehearse`, `corral run --rehearse`)."""
    started = {
        "rehearsed": ["rehearse", "flow.yaml"],
        "run-rehearsed": ["run", "flow.yaml", "--rehearse", "-q"],
        "real": ["run", "flow.yaml"],
        "exec": ["exec", "--", "echo", "--rehearse"],
    }
    for url in backend_url(backend, tmp_path):
        store = unmigrated(url)
        store.migrate("0003")
        with store.engine.begin() as conn:
            runs = Table("runs", MetaData(), autoload_with=conn)
            assert "rehearsal" not in runs.c
            conn.execute(
                runs.insert(),
                [
                    {
                        "id": run_id,
                        "flow_name": "f",
                        "flow_path": "/f.yaml",
                        "args": json.dumps(args),
                        "started_at": 1.0,
                        "status": "succeeded",
                    }
                    for run_id, args in started.items()
                ],
            )
        store.migrate()
        marks = {r.id: r.rehearsal for r in store.list_runs(limit=None)}
        assert marks == {"rehearsed": True, "run-rehearsed": True, "real": False, "exec": False}
        assert [r.id for r in store.list_runs(rehearsal=False, limit=None)] == ["exec", "real"]
        store.close()


def test_resolve_url() -> None:
    default = Path("/x/.corral/corral.db")
    assert resolve_url(None, default) == "sqlite:////x/.corral/corral.db"
    assert resolve_url("postgres://u@h/db", default) == "postgresql+psycopg://u@h/db"
    assert resolve_url("postgresql://u@h/db", default) == "postgresql+psycopg://u@h/db"
    with pytest.raises(StoreError, match="unsupported store"):
        resolve_url("mysql://u@h/db", default)
    with pytest.raises(StoreError, match="driver"):
        resolve_url("postgresql+psycopg2://u@h/db", default)
    with pytest.raises(StoreError, match="invalid store URL"):
        resolve_url("not a url", default)


def test_postgres_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(MissingExtraError) as caught:
        open_store("postgresql+psycopg://u@localhost/db", Path("unused"))
    assert "pip install 'corral[postgres]'" in caught.value.lines()[0]
    assert caught.value.exit_code == 3


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()  # a folder where the file should be
    with pytest.raises(StoreError, match="cannot open the run history"):
        open_store(f"sqlite:///{tmp_path / 'dir.db'}", tmp_path / "unused.db")


def test_known_revisions_are_the_scripts() -> None:
    from alembic.config import Config

    from corral.store.engine import known_revisions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert known_revisions() == {s.revision for s in scripts.walk_revisions()}


def test_history_from_a_newer_corral_is_one_line_with_its_own_exit_code(tmp_path: Path) -> None:
    from sqlalchemy import text

    from corral.errors import EXIT_HISTORY_TOO_NEW, HistoryTooNewError

    path = tmp_path / "history.db"
    store = open_store(None, path)
    with store.engine.begin() as conn:  # what a newer corral's migration leaves
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    store.close()
    with pytest.raises(HistoryTooNewError) as caught:
        open_store(None, path)
    assert caught.value.exit_code == EXIT_HISTORY_TOO_NEW != StoreError.exit_code
    result = corral("runs", "--store", f"sqlite:///{path}", cwd=tmp_path)
    assert result.returncode == EXIT_HISTORY_TOO_NEW, result.stderr
    assert "Traceback" not in result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and "newer corral" in lines[0] and "upgrade corral" in lines[0]


def test_a_current_sqlite_history_opens_with_sqlite3_alone(tmp_path: Path) -> None:
    # a folder name URIs would misread: the stdlib path percent-encodes it
    path = tmp_path / "odd #% name" / "corral.db"
    open_store(None, path).close()  # created and migrated through SQLAlchemy
    store = open_store(None, path)
    try:
        assert store._engine is None  # no engine made: one SELECT through sqlite3
        assert store.list_runs() == []
        assert store.display_url == f"sqlite:///{path}"
    finally:
        store.close()


def test_an_older_sqlite_history_is_still_migrated_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = unmigrated(url)
    store.migrate("0002")
    store.close()
    store = open_store(url, tmp_path / "unused.db")
    with store.engine.connect() as conn:
        assert current_revision(conn) == schema.HEAD_REVISION
    store.close()
