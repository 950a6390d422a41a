"""Fixtures of the delivery tests; the servers behind them live in local_servers.py and, for the real
Home Assistant, homeassistant_real.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from homeassistant_real import HOMEASSISTANT_VERSION, RealHomeAssistant
from local_servers import closed_port, hanging_server, homeassistant, webhook

__all__ = ["closed_port", "hanging_server", "homeassistant", "real_homeassistant", "webhook"]


@pytest.fixture(scope="session")
def real_homeassistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealHomeAssistant]:
    """The session's real Home Assistant, onboarded: ``url``, ``token``, ``notifications()``,
    ``websocket(command, **fields)``. Its binary is ``$HUB_TEST_HASS`` (set by scripts/test)."""
    hass = os.environ.get("HUB_TEST_HASS", "")
    if not hass or not os.access(hass, os.X_OK):
        where = f" ({hass} is not an executable)" if hass else " (HUB_TEST_HASS is unset)"
        pytest.fail(
            f"Home Assistant not installed{where}: run scripts/test, which installs "
            f"homeassistant=={HOMEASSISTANT_VERSION} with Python 3.13 from pyenv",
            pytrace=False,
        )
    server = RealHomeAssistant(tmp_path_factory.mktemp("homeassistant"), hass)
    server.start()
    yield server
    server.stop()
