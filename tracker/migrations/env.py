"""Alembic environment: runs on the engine that `tracker.db.migrate` hands in."""

from alembic import context
from sqlmodel import SQLModel

import tracker.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from tracker.migrations import include_name

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # A table rebuild must not cascade: with foreign keys on, re-creating `claim`
            # would delete its sources and history. (PRAGMA works outside a transaction.)
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            _one_at_a_time(connection)
            _configure_and_run(connection)
            if connection.dialect.name == "sqlite":
                from tracker.db import repair_search_triggers

                repair_search_triggers(connection)
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _one_at_a_time(connection) -> None:
    """Two processes opening a new database at once (two imports, or an import and the
    dashboard) must not both create its tables: the second waits for the first, then finds
    the schema current. SQLite: take the write lock now; PostgreSQL: an advisory lock held
    to the end of this transaction."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7263531)")  # "tracker"


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    context.run_migrations()


run_migrations()
