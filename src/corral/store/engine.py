"""Opening a history database: the URL, the engine's SQLite settings and migrations.

SQLite is the default (one file under `.corral/`), set up so that several corral
processes can write it at once: WAL (readers never block the writer), a busy timeout
(a writer waits for the lock rather than failing) and BEGIN IMMEDIATE for writes (the
lock is taken up front, so SQLite never has to refuse an upgrade from read to write).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sqlite3
import sys
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corral.errors import HistoryTooNewError, MissingExtraError, StoreError
from corral.private import private_dir, private_file
from corral.store.revision import HEAD_REVISION

# SQLAlchemy (a tenth of a second to import) is loaded only where it is used: opening a
# current SQLite history to read it, or to record a run, needs nothing but sqlite3
if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.exc import SQLAlchemyError

BUSY_TIMEOUT_MS = 30_000
POSTGRES_INSTALL = "pip install 'corral[postgres]'"
# any constant works: it only has to be the same in every corral process
_MIGRATION_LOCK_KEY = 0x636F7272616C
# execution option of the connections that write (the writer, migrations)
IMMEDIATE = "corral_immediate"


def resolve_url(url: str | None, default_path: Path | None) -> str:
    """The SQLAlchemy URL to open: `url` as given (normalised), else SQLite at default_path."""
    if not url:
        if default_path is None:
            raise StoreError("no history URL given")
        # percent-encoded as SQLAlchemy reads a URL: a folder named `a[b]`, `a?b` or `a#b`
        # must name that folder, not end the path or start a query
        return f"sqlite:///{_uri_path(default_path)}"
    if sqlite_file(url) is not None:
        return url  # valid as it is: no need to load SQLAlchemy to parse it
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url.startswith(("postgres://", "postgresql://")):
        # the bare scheme would pick psycopg2; corral[postgres] installs psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # a bad port is a ValueError
        raise StoreError(
            f"invalid store URL {url!r}: {error}",
            hint="use sqlite:///path/to/corral.db or postgresql+psycopg://user@host/db",
        ) from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported store {parsed.get_backend_name()!r} in {parsed.render_as_string()}",
            hint="corral stores history in SQLite or PostgreSQL",
        )
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise StoreError(
            f"unsupported PostgreSQL driver {parsed.get_driver_name()!r}",
            hint="use postgresql+psycopg://",
        )
    return url


# each SQLite engine's busy timeout, for the sqlite3 connections made next to it
_BUSY_TIMEOUTS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


def busy_timeout_of(engine: Engine) -> int:
    """The busy timeout `create_store_engine` gave a SQLite engine (else the default)."""
    return _BUSY_TIMEOUTS.get(engine, BUSY_TIMEOUT_MS)


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain `sqlite:///PATH` URL, else None (another backend, an
    in-memory database, or a URL with options: those go through SQLAlchemy)."""
    head = "sqlite:///"
    if not url.startswith(head) or "?" in url:
        return None
    path = url[len(head) :]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    from urllib.parse import unquote

    # the database part of a URL is percent-decoded, as SQLAlchemy's make_url does (an
    # engine renders `a[b]` as `a%5Bb%5D`)
    return Path(unquote(path))


def connect_sqlite(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A stdlib connection to an existing SQLite history, set up as the engine's are.

    `mode=rw` never creates the file: a history is created (0600, migrated) by the
    SQLAlchemy path only. Autocommit: each read is its own snapshot.
    """
    uri = "file:" + _uri_path(path) + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _uri_path(path: Path) -> str:
    # a path may hold '?', '#' or '%': percent-encode what a URI would read as syntax
    from urllib.parse import quote

    return quote(str(path), safe="/")


def sqlite_revision(conn: sqlite3.Connection) -> str | None:
    """`current_revision` over a stdlib connection."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as error:
        if "alembic_version" not in str(error):
            raise
        return None
    return None if row is None or row[0] is None else str(row[0])


def is_current_sqlite(path: Path) -> bool:
    """Whether `path` is an existing SQLite history at the newest revision (one SELECT,
    no SQLAlchemy, no Alembic): then it opens without the migration machinery."""
    if not path.is_file():
        return False
    try:
        conn = connect_sqlite(path)
    except sqlite3.Error:
        return False  # the SQLAlchemy path opens it and reports what is wrong
    try:
        return sqlite_revision(conn) == HEAD_REVISION
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def create_store_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for a resolved URL, with the SQLite settings above or PostgreSQL's."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise MissingExtraError(
                "storing history in PostgreSQL needs psycopg",
                hint=f"install it with: {POSTGRES_INSTALL}",
            )
        # pre-ping replaces connections that died with a restarted server; a short
        # connect timeout keeps the writer's retries from hanging on a dead host
        engine = create_engine(
            url, pool_pre_ping=True, connect_args={"connect_timeout": 3}, pool_size=2
        )
        event.listen(engine, "before_cursor_execute", _encode_nul, retval=True)
        return engine
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        try:
            private_dir(Path(database).parent)
        except OSError as error:
            raise StoreError(f"cannot create the history folder for {database}: {error}") from None
        # 0600 before SQLite makes it (its -wal and -shm files copy the mode); a folder
        # we cannot write is reported by the open itself, with its own message
        with contextlib.suppress(OSError):
            private_file(Path(database))
    engine = create_engine(url, connect_args={"check_same_thread": False})
    _BUSY_TIMEOUTS[engine] = busy_timeout_ms
    event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_timeout_ms))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


NUL_STANDIN = "\u2400"  # SYMBOL FOR NULL: PostgreSQL text cannot hold U+0000


def _encode_nul(
    _conn: Connection,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> tuple[str, Any]:
    """PostgreSQL rejects a NUL byte in text, and with it the whole batch (another job's
    result too): write the visible stand-in instead. SQLite keeps NUL as it is."""

    def clean(value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            return value.replace("\x00", NUL_STANDIN)
        return value

    def clean_set(values: Any) -> Any:
        if isinstance(values, dict):
            return {k: clean(v) for k, v in values.items()}
        if isinstance(values, tuple | list):
            return type(values)(clean(v) for v in values)
        return values

    if isinstance(parameters, list) and parameters and isinstance(parameters[0], dict | tuple):
        return statement, [clean_set(p) for p in parameters]
    return statement, clean_set(parameters)


def _sqlite_connect(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # isolation_level None stops the driver's own implicit BEGIN; we emit ours in _begin
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first: switching to WAL itself needs the lock for a moment
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable across a crash of corral in WAL mode (only power loss can
        # drop the last commits) and several times faster than FULL
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get(IMMEDIATE) else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


# "full": a disk that fills up may be freed; the bounded backlog waits for that
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o", "readonly", "full")


def database_error(error: BaseException) -> bool:
    """Whether `error` comes from the database (either driver), not from a bug."""
    if isinstance(error, sqlite3.Error):
        return True
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy import exc

    return isinstance(error, exc.SQLAlchemyError)


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying: a lost or refused connection, a locked SQLite file."""
    if isinstance(error, sqlite3.OperationalError):
        # sqlite3 also reports mistakes ("no such table") as OperationalError
        return any(word in str(error).lower() for word in _SQLITE_TRANSIENT)
    if "sqlalchemy" not in sys.modules:
        return False
    from sqlalchemy import exc

    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, exc.OperationalError) and isinstance(error.orig, sqlite3.Error):
        return is_transient(error.orig)
    return isinstance(
        error, exc.OperationalError | exc.InterfaceError | exc.DisconnectionError | exc.TimeoutError
    )


def reason_of(error: BaseException) -> str:
    """The first line of what the database said (the driver's error, not the wrapper's)."""
    orig = getattr(error, "orig", None)
    if isinstance(orig, BaseException):
        error = orig
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def current_revision(connection: Connection) -> str | None:
    """The schema revision of the database, or None when it has no corral tables.

    One query, and no migration machinery: opening a current history (every run, every
    history command) costs a single SELECT; Alembic is imported only to migrate.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError) as error:
        if "alembic_version" not in str(error.orig):
            raise
        connection.rollback()  # PostgreSQL aborts the transaction on a missing table
        return None
    return None if value is None else str(value)


def migrate(engine: Engine, target: str = "head") -> None:
    """Bring the schema to `target` (default: the newest), once, even with rivals.

    The whole upgrade runs in one transaction holding the write lock (BEGIN IMMEDIATE
    on SQLite, an advisory lock on PostgreSQL): a second process waits, then finds the
    schema current and does nothing.
    """
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    # SQLite answers "database is locked" at once, busy timeout or not, to a rival that
    # switches a brand-new file to WAL (it needs an exclusive lock): retry that a while
    deadline = time.monotonic() + 20.0
    pause = 0.02
    while True:
        try:
            _migrate_once(engine, target)
            return
        except OperationalError as error:
            locked = "locked" in str(error.orig).lower() or "busy" in str(error.orig).lower()
            if not locked or time.monotonic() + pause > deadline:
                raise _open_error(engine, error) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        except SQLAlchemyError as error:
            raise _open_error(engine, error) from None


def _migrate_once(engine: Engine, target: str) -> None:
    from sqlalchemy import text

    with engine.connect() as probe:
        current = current_revision(probe)
        if target in ("head", HEAD_REVISION) and current == HEAD_REVISION:
            return
    if current is not None and current not in known_revisions():
        raise _too_new(engine, current)
    with engine.connect().execution_options(**{IMMEDIATE: True}) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        _run_alembic(conn, target)


def known_revisions() -> frozenset[str]:
    """The schema revisions this corral's migrations know (read from their files)."""
    versions = Path(__file__).parent / "migrations" / "versions"
    found = set()
    for path in versions.glob("[0-9]*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("revision = "):
                found.add(line.split("=", 1)[1].strip().strip("\"'"))
                break
    return frozenset(found)


def _too_new(engine: Engine, revision: str) -> HistoryTooNewError:
    where = engine.url.render_as_string(hide_password=True)
    return HistoryTooNewError(
        f"the run history at {where} was migrated by a newer corral (schema revision "
        f"{revision!r}; this corral knows up to {HEAD_REVISION!r}): upgrade corral "
        "(pip install -U corral), or use another history with --store URL"
    )


def _open_error(engine: Engine, error: SQLAlchemyError) -> StoreError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    where = engine.url.render_as_string(hide_password=True)
    return StoreError(f"cannot open the run history at {where}: {reason}")


def _run_alembic(connection: Connection, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, target)
