"""Engine creation and schema migrations, shared by the CLI, the dashboard and the tests."""

from __future__ import annotations

import atexit
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from tracker.migrations import HEAD

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys are off by default in SQLite; WAL lets the dashboard read while an
    # import writes; the busy timeout makes a writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for `url`, creating the SQLite file's folder when needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        uri = parsed.query.get("uri") == "true"  # file:...?mode=ro: opened as it is named
        if parsed.database and parsed.database != ":memory:" and not uri:
            path = Path(parsed.database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            url = parsed.set(database=str(path)).render_as_string(hide_password=False)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return sa.create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; a no-op when it is there already."""
    if revision == "head" and _schema_version(engine) == HEAD:
        return  # the common case, answered without loading Alembic
    from alembic import command

    command.upgrade(alembic_config(engine), revision)  # (it repairs SQLite's search triggers)
    refresh_statistics(engine)


def refresh_statistics(engine: Engine) -> None:
    """Bring the query planner's statistics up to date. A table rebuilt by a migration
    loses them, and SQLite never gathers them by itself; without them the queue's counts
    and pages pick slow plans at scale (285 ms instead of 12 ms at a million claims). A
    full ANALYZE of a million claims takes about 0.3 s."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")


def repair_search_triggers(conn: sa.Connection) -> None:
    """Re-create full-text triggers a table rebuild dropped, and re-index what they missed.

    Runs inside the migrations' transaction, under their lock (migrations/env.py): run
    after it, two processes opening a new database both found the triggers missing and
    the second failed with "trigger claim_fts_insert already exists"."""
    from tracker.migrations import SQLITE_SEARCH_TRIGGERS

    present = {
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'table')"
        )
    }
    missing = [name for name in SQLITE_SEARCH_TRIGGERS if name not in present]
    for name in missing:
        table = "claim_fts" if name.startswith("claim_") else "fact_check_fts"
        if table in present:
            conn.exec_driver_sql(SQLITE_SEARCH_TRIGGERS[name])
    for table in {"claim_fts" if n.startswith("claim_") else "fact_check_fts" for n in missing}:
        if table in present:
            conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('rebuild')")


def _schema_version(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.DBAPIError:  # no such table: a new database
        return None


@cache
def _engine_for(url: str) -> Engine:
    engine = create_db_engine(url)
    # Closed at exit, not left to the garbage collector (`tracker` freezes what is left at
    # exit: cli.main), even when the migration fails or is interrupted: SQLite folds its
    # write-ahead log in, PostgreSQL sees a goodbye.
    atexit.register(engine.dispose)
    migrate(engine)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The migrated engine for `url` (default: the configured database), one per process."""
    if url is None:
        from tracker.config import get_settings

        url = get_settings().database_url
    return _engine_for(url)


class StorageError(Exception):
    """The database cannot be written, and every later write would fail the same way
    (read-only, disk full, server gone): a batch stops rather than pay for answers it
    cannot keep. The message is one line, with no SQL and no article text."""


# SQLite's messages, and PostgreSQL's SQLSTATE classes and codes, for faults that repeat.
_LASTING_SQLITE = (
    "readonly database",
    "disk is full",
    "disk i/o error",
    "unable to open database",
    "database disk image is malformed",
    "file is not a database",
    "no such table",
)
_LASTING_SQLSTATE_CLASSES = ("08", "53", "57", "58", "3D")  # connection, resources, shutdown
_LASTING_SQLSTATES = {"25006", "42501", "42P01"}  # read-only, no privilege, no table


def storage_problem(exc: BaseException) -> tuple[str, bool]:
    """One line saying what the database refused, and whether it will refuse every write.

    SQLAlchemy's own message carries the statement and its parameters (article text, a
    claim); only the driver's first line is kept."""
    if isinstance(exc, StorageError):
        return str(exc), True
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0][:300]
    code = getattr(orig, "sqlstate", None) or ""
    lasting = (
        any(part in text.lower() for part in _LASTING_SQLITE)
        or code in _LASTING_SQLSTATES
        or code[:2] in _LASTING_SQLSTATE_CLASSES
        or disconnected(exc)
    )
    return text, lasting


def disconnected(exc: BaseException) -> bool:
    """The database connection was lost, or none could be made (PostgreSQL restarted,
    stopped, or the connection killed): a write may succeed again on a new connection."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    return (
        isinstance(exc, sa.exc.OperationalError)
        and type(orig).__module__.startswith("psycopg")
        and not getattr(orig, "sqlstate", None)  # no answer from a server: no SQLSTATE
    )


class SQLiteFileWatch:
    """Whether an SQLite database file is still the one a run opened. Deleted (or replaced)
    while open, the file is gone from its folder but SQLite goes on writing to it without
    an error: every article stored after that would be lost in silence."""

    def __init__(self, engine: Engine) -> None:
        self.path: Path | None = None
        url = engine.url
        if (
            url.get_backend_name() == "sqlite"
            and url.database
            and url.database != ":memory:"
            and url.query.get("uri") != "true"
        ):
            self.path = Path(url.database)
            self.identity = self._identity()

    def _identity(self) -> tuple[int, int] | None:
        assert self.path is not None
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_dev, info.st_ino

    def check(self) -> None:
        """Raise StorageError if the file was deleted or replaced since."""
        if self.path is not None and self._identity() != self.identity:
            raise StorageError(
                f"the database file {self.path} was deleted or replaced during the run"
            )


def check_writable(engine: Engine) -> None:
    """Write (and keep) one row, or raise StorageError: run before any model call, so
    that a read-only database or a full disk costs no paid request. A connection lost on
    the way (a terminated backend) is tried again on a new one before giving up."""
    for attempt in range(1, 4):
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            return
        except sa.exc.SQLAlchemyError as exc:
            if attempt == 3 or not disconnected(exc):
                raise StorageError(storage_problem(exc)[0]) from None
            time.sleep(0.5 * attempt)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
