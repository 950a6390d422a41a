"""Fault-injection tests: the ``--soak`` option and ``soak`` marker, and fixtures for the fault proxy
and the hub.

Soak variants (``@pytest.mark.soak``) run for minutes and are skipped unless asked for: ``--soak`` when
pytest is pointed at tests/faults, or HUB_SOAK=1 in the environment (``scripts/test --soak`` sets it,
since a run over the whole of tests/ reads its options before it finds this folder). Helpers live in
faultkit.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faultkit import FaultProxy, HubProcess, soak_enabled


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak", action="store_true", default=False, help="also run the long soak variants (tests/faults)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: a long fault-injection run, only with --soak or HUB_SOAK=1")
    if config.getoption("--soak", default=False):
        os.environ["HUB_SOAK"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if soak_enabled() or config.getoption("--soak", default=False):
        return
    skip = pytest.mark.skip(reason="soak variant: run with --soak (or HUB_SOAK=1, scripts/test --soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str, int], FaultProxy]]:
    """``fault_proxy(host, port)`` starts a :class:`FaultProxy` to that target; all closed afterwards."""
    started: list[FaultProxy] = []

    def start(host: str, port: int) -> FaultProxy:
        proxy = FaultProxy(host, port).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()


@pytest.fixture
def hub_process() -> Iterator[Callable[[Path], HubProcess]]:
    """``hub_process(config_path)`` runs `hub run`; any still running at the end is killed."""
    started: list[HubProcess] = []

    def start(config: Path) -> HubProcess:
        hub = HubProcess(config).start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        if hub.running:
            hub.stop(signal.SIGKILL)
