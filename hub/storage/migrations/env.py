"""Alembic environment: runs on the connection ``Store.migrate()`` hands over.

For the alembic command line (``revision --autogenerate`` while developing), pass
``-x url=sqlite:///path/hub.sqlite`` with ``-c`` pointing at a config whose script_location is this
directory.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from hub.storage.store import metadata

config = context.config


def _configure(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=... or set sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _configure(conn)
    engine.dispose()


run()
