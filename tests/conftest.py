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
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from services import InfluxDB1, Mosquitto, PostgresDatabase, Service, VictoriaMetrics, stop_all

# Property tests check behaviour, never speed: on a busy 2-core CI machine a slow example is not a failure.
settings.register_profile("hub", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hub")

S = TypeVar("S", bound=Service)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (scripts/test): a file's tests stay on one worker,
    so its module fixtures start once, and every test of the real Home Assistant goes to the worker
    that started it."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        group = "homeassistant" if "real_homeassistant" in fixtures else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


def _started(
    make: Callable[..., S], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Callable[..., S]]:
    """A factory of running services, each in its own temp dir, all stopped at the end."""
    started: list[Service] = []

    def start(*args: Any, **kwargs: Any) -> S:
        service = make(tmp_path_factory.mktemp(name), *args, **kwargs)
        started.append(service)
        service.start()
        return service

    yield start
    stop_all(started)


def _session(make: Callable[[Path], S], tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[S]:
    service = make(tmp_path_factory.mktemp(name))
    service.start()
    yield service
    service.stop()


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Mosquitto]]:
    """Start brokers on demand: ``mosquitto_factory(extra_config="...")`` returns a running Mosquitto."""
    yield from _started(Mosquitto, tmp_path_factory, "mosquitto")


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
    yield from _started(InfluxDB1, tmp_path_factory, "influxdb")


@pytest.fixture(scope="session")
def _influxdb_v1_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    yield from _session(InfluxDB1, tmp_path_factory, "influxdb")


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
    yield from _started(VictoriaMetrics, tmp_path_factory, "victoria-metrics")


@pytest.fixture(scope="session")
def _victoria_metrics_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    yield from _session(VictoriaMetrics, tmp_path_factory, "victoria-metrics")


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
