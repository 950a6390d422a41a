"""The hub's handling of announcements: learned topics validated, followed once, bounded; counters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import app
from hub.app import Hub, valid_filter
from hub.config import HubConfig
from hub.domain.events import Discovery
from hub.mqtt.client import Inbound

NOW = 1_790_000_000.0


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub that is built but not started: ``handle`` runs as the ingest worker would run it."""
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "timeseries": {"kind": "embedded"},
            "storage": {"path": str(tmp_path)},
            "web": {"enabled": False},
        }
    )
    made = Hub(config, env={})
    made.store.migrate()
    yield made
    made.sink.close()
    made.store.close()


@pytest.mark.parametrize(
    ("topic", "valid"),
    [
        ("garden/weather/state", True),
        ("garden/+/state", True),
        ("garden/#", True),
        ("#", True),
        ("", False),
        ("garden/#/state", False),
        ("garden/we+/state", False),
        ("garden/weather#", False),
        ("nul\x00here", False),
    ],
)
def test_valid_filter_accepts_what_a_broker_accepts(topic: str, valid: bool) -> None:
    assert valid_filter(topic) is valid


def test_a_home_assistant_config_registers_counts_and_learns_its_state_topic_once(hub: Hub) -> None:
    config = {
        "name": "T",
        "unique_id": "ws-t",
        "state_topic": "garden/weather/state",
        "device_class": "temperature",
        "unit_of_measurement": "°C",
        "device": {"identifiers": ["ws"], "name": "Weather", "model": "WS-1"},
    }
    message = Inbound("homeassistant/sensor/ws/t/config", json.dumps(config).encode(), 0, True, NOW, None)
    hub.handle(message)
    hub.handle(message)  # retained config seen again
    assert hub._to_subscribe == ["garden/weather/state"]
    assert hub.telemetry.value("hub_discoveries_total", source="homeassistant") == 2
    state = hub.live.get("homeassistant.ws")
    assert state is not None and state.announced is not None and state.announced.model == "WS-1"


def test_bad_announced_topics_are_rejected_and_the_good_ones_still_followed(hub: Hub) -> None:
    hub._discovered(Discovery("x.1", "x", topics=("ok/state", "bad/#/state")), NOW)
    assert hub._to_subscribe == ["ok/state"]
    assert hub.telemetry.value("hub_rejections_total", source="x", reason="bad_topic") == 1


def test_learned_topics_are_bounded_and_the_overflow_counted(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "MAX_LEARNED_TOPICS", 3)
    hub._discovered(Discovery("x.1", "x", topics=("a/1", "a/2")), NOW)
    hub._discovered(Discovery("x.2", "x", topics=("a/2", "a/3", "a/4", "a/5")), NOW)
    assert hub._to_subscribe == ["a/1", "a/2", "a/3"]
    assert hub.telemetry.value("hub_drops_total", queue="learned_topics") == 2


def test_a_withdrawal_is_counted_as_a_retirement(hub: Hub) -> None:
    hub._discovered(Discovery("x.1", "x", name="one"), NOW)
    hub._discovered(Discovery("x.1", "x", retired=True), NOW + 1)
    assert hub.telemetry.value("hub_retirements_total", source="x") == 1
    state = hub.live.get("x.1")
    assert state is not None and state.withdrawn
