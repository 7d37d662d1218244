"""Alembic environment: runs on the engine that `tracker.db.migrate` hands in."""

from alembic import context
from sqlmodel import SQLModel

import tracker.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from tracker.migrations import include_name

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = context.config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
        )
        context.run_migrations()


run_migrations()
