"""PostgreSQL for the storage tests: a fresh database per test on the local server, dropped after.

Stands in until the suite-wide fixture exists; a missing server fails the test, naming it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_HOST = os.environ.get("HUB_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HUB_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("HUB_TEST_PG_USER", "postgres")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a new, empty database on the test PostgreSQL server."""
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is needed for the PostgreSQL tests: pip install -e '.[dev]'")
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is needed at {PG_HOST}:{PG_PORT} (user {PG_USER}) for this test: {e}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
