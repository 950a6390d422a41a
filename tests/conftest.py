"""Fixtures that start real services (Mosquitto, InfluxDB 1.x, VictoriaMetrics) and provide a scratch
PostgreSQL database. The service classes live in tests/services.py.

- ``mosquitto``: a fresh broker per test; ``mosquitto_factory()`` starts more (``extra_config`` lines).
- ``influxdb_v1``, ``victoria_metrics``: one server per session, restarted before each test if a
  previous test stopped it; isolate tests by database name (InfluxDB) or by tag values (VictoriaMetrics).
  Tests that must own the server outright use ``influxdb_v1_factory`` / ``victoria_metrics_factory``.
- ``postgres_url``: a SQLAlchemy URL to a new database, dropped after the test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import InfluxDB1, Mosquitto, PostgresDatabase, Service, VictoriaMetrics, stop_all


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers on demand: ``mosquitto_factory(extra_config="...")`` returns a running Mosquitto."""
    started: list[Service] = []

    def start(extra_config: str = "") -> Mosquitto:
        broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"), extra_config)
        started.append(broker)
        broker.start()
        return broker

    yield start
    stop_all(started)


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A running Mosquitto for this test: ``host``, ``port``, ``url``, ``stop()``, ``start()``, ``kill()``."""
    return mosquitto_factory()


@pytest.fixture
def influxdb_v1_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., InfluxDB1]]:
    """Start private InfluxDB 1.x servers on demand, for tests that stop or break them.

    ``influxdb_v1_factory(auth=True)`` turns authentication on, with an admin user
    (``admin_user``/``admin_password``) that the helpers use.
    """
    started: list[Service] = []

    def start(auth: bool = False) -> InfluxDB1:
        server = InfluxDB1(tmp_path_factory.mktemp("influxdb"), auth=auth)
        started.append(server)
        server.start()
        return server

    yield start
    stop_all(started)


@pytest.fixture(scope="session")
def _influxdb_v1_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb_v1(_influxdb_v1_session: InfluxDB1) -> InfluxDB1:
    """The session's InfluxDB 1.x: ``url``, ``create_database(name)``, ``query(db, q)``, ``rows(db, q)``."""
    _influxdb_v1_session.start()
    return _influxdb_v1_session


@pytest.fixture
def victoria_metrics_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], VictoriaMetrics]]:
    """Start private VictoriaMetrics servers on demand, for tests that stop or break them."""
    started: list[Service] = []

    def start() -> VictoriaMetrics:
        server = VictoriaMetrics(tmp_path_factory.mktemp("victoria-metrics"))
        started.append(server)
        server.start()
        return server

    yield start
    stop_all(started)


@pytest.fixture(scope="session")
def _victoria_metrics_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria-metrics"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def victoria_metrics(_victoria_metrics_session: VictoriaMetrics) -> VictoriaMetrics:
    """The session's VictoriaMetrics: ``url``, ``export(match)``, ``flush()``, ``stop()``, ``start()``."""
    _victoria_metrics_session.start()
    return _victoria_metrics_session


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg://postgres@127.0.0.1:5432/<unique>``: a new database, dropped afterwards."""
    database = PostgresDatabase()
    database.create()
    yield database.url
    database.drop()
