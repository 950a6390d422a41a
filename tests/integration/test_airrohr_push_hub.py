"""An air sensor on a balcony pushes to a running hub: the config's password and switch reach the endpoint,
and the pushed values are stored like any MQTT reading."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from services import Mosquitto

from hub.app import Hub
from hub.config import HubConfig
from hub.storage.embedded import EmbeddedSink

PUSH = {
    "esp8266id": "12331981",
    "software_version": "NRZ-2024-135",
    "sensordatavalues": [
        {"value_type": "SDS_P1", "value": "12.40"},
        {"value_type": "SDS_P2", "value": "7.10"},
        {"value_type": "BME280_pressure", "value": "101325.00"},
    ],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hub(tmp_path: Path, broker: Mosquitto, airrohr: dict[str, Any]) -> Hub:
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": f"hub-push-{tmp_path.name}"},
            "timeseries": {"kind": "embedded", "flush_interval": 0.2},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"listen": f"127.0.0.1:{_free_port()}"},
            "homeassistant_discovery": {"enabled": False},
            "ingest": {"ecosystems": {"airrohr": airrohr}},
        }
    )
    hub = Hub(config, env={})
    hub.start()
    assert hub.web_url, "the hub's web server did not start"
    return hub


@pytest.mark.integration
def test_a_push_with_the_configured_password_is_stored(tmp_path: Path, mosquitto: Mosquitto) -> None:
    hub = _hub(tmp_path, mosquitto, {"password": "balcony-secret"})
    try:
        url = f"{hub.web_url.rstrip('/')}/api/v1/push/airrohr"
        headers = {"X-Sensor": "esp8266-12331981"}
        assert httpx.post(url, json=PUSH, headers=headers, timeout=5).status_code == 401
        wrong = httpx.post(url, json=PUSH, headers=headers, auth=("x", "guess"), timeout=5)
        assert wrong.status_code == 401
        ok = httpx.post(url, json=PUSH, headers=headers, auth=("airrohr", "balcony-secret"), timeout=5)
        assert ok.status_code == 200 and ok.json() == {"accepted": True}
        sink = hub.sink
        assert isinstance(sink, EmbeddedSink)
        deadline = time.monotonic() + 10
        while sink.count("airrohr.esp8266-12331981") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [v for _, v in sink.history("airrohr.esp8266-12331981", "pm25", 0)] == [7.1]
        assert [v for _, v in sink.history("airrohr.esp8266-12331981", "pressure", 0)] == [1013.25]
    finally:
        hub.stop()


@pytest.mark.integration
def test_a_hub_with_airrohr_turned_off_answers_404(tmp_path: Path, mosquitto: Mosquitto) -> None:
    hub = _hub(tmp_path, mosquitto, {"enabled": False})
    try:
        url = f"{hub.web_url.rstrip('/')}/api/v1/push/airrohr"
        response = httpx.post(url, json=PUSH, headers={"X-Sensor": "esp8266-1"}, timeout=5)
        assert response.status_code == 404
    finally:
        hub.stop()
