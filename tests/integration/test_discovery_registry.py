"""The registry fed by discovery and availability by silence, end to end: a real Mosquitto, the `Hub` with
its embedded time-series store, and what lands in the registry, the store and /metrics.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import Mosquitto
from waiting import wait_for

from hub.app import Hub
from hub.config import HubConfig
from hub.domain.model import Thing, Visibility
from hub.storage.directory import Directory
from hub.storage.embedded import EmbeddedSink
from hub.storage.store import Store

pytestmark = pytest.mark.integration

CONFIG_TOPIC = "homeassistant/sensor/garden-weather/temperature/config"
STATE_TOPIC = "garden/weather/state"
WS = "homeassistant.garden-weather-1"
GARDEN_CONFIG = {
    "name": "Temperature",
    "unique_id": "garden-weather-t",
    "state_topic": STATE_TOPIC,
    "value_template": "{{ value_json.t }}",
    "unit_of_measurement": "°C",
    "device_class": "temperature",
    "device": {
        "identifiers": ["garden-weather-1"],
        "name": "Garden weather",
        "model": "WS-1",
        "manufacturer": "Acme",
        "sw_version": "1.2",
    },
}


class Publisher:
    def __init__(self, broker: Mosquitto) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    p = Publisher(mosquitto)
    yield p
    p.close()


def config_for(tmp_path: Path, broker: Mosquitto, **ingest: Any) -> HubConfig:
    return HubConfig.model_validate(
        {
            "mqtt": {"url": broker.url, "client_id": "hub-discovery", "qos": 1},
            "timeseries": {"kind": "embedded", "flush_interval": 0.2},
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
            "homeassistant_discovery": {"enabled": False},
            "ingest": ingest,
            "alerts": {
                "defaults": False,
                "rules": [{"kind": "offline", "id": "offline-fast", "debounce_s": 0.3}],
            },
        }
    )


def started(config: HubConfig) -> Hub:
    hub = Hub(config, env={})
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(15), "the hub did not connect to Mosquitto"
    return hub


def stored(hub: Hub, thing: str) -> list[float | bool]:
    sink = hub.sink
    assert isinstance(sink, EmbeddedSink)
    return [value for _, value in sink.history(thing, "temperature", 0)]


def test_home_assistant_discovery_registers_follows_survives_a_restart_and_retires(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher
) -> None:
    publisher.send(CONFIG_TOPIC, json.dumps(GARDEN_CONFIG), retain=True)
    config = config_for(tmp_path, mosquitto)

    hub = started(config)
    try:
        wait_for(lambda: hub.live.get(WS) is not None, 15, "the retained config to register the thing")

        # the hub subscribes to the learned state topic (no other decoder reads it): once that is done,
        # a state published there is decoded and stored. Published until it lands, as the SUBSCRIBE
        # may still be on its way.
        def landed() -> bool:
            if stored(hub, WS):
                return True
            publisher.send(STATE_TOPIC, json.dumps({"t": 21.5, "wind": 3}))
            time.sleep(0.3)
            return bool(stored(hub, WS))

        wait_for(landed, 15, "the first garden reading in the store")
        first = stored(hub, WS)
        assert set(first) == {21.5}
        wait_for(lambda: Directory(hub.store).thing(WS) is not None, 5, "the registry entry")
        thing = Directory(hub.store).thing(WS)
        assert thing is not None
        assert (thing.name, thing.visibility, thing.retired) == ("Garden weather", Visibility.PRIVATE, False)
        state = hub.store.thing(WS)
        assert state is not None and state.announced is not None
        assert (state.announced.model, state.announced.manufacturer, state.announced.sw_version) == (
            "WS-1",
            "Acme",
            "1.2",
        )
        assert hub.telemetry.value("hub_discoveries_total", source="homeassistant") >= 1
    finally:
        hub.stop()

    hub = started(config)  # same client id: the broker kept the session
    try:
        wait_for(
            lambda: hub.telemetry.value("hub_discoveries_total", source="homeassistant") >= 1,
            15,
            "the retained config replayed to the restarted hub",
        )
        publisher.send(STATE_TOPIC, json.dumps({"t": 22.0}))
        wait_for(lambda: stored(hub, WS) == [*first, 22.0], 15, "the reading after the restart")

        publisher.send(CONFIG_TOPIC, b"", retain=True)  # the device withdraws its announcement
        wait_for(lambda: hub.telemetry.value("hub_retirements_total", source="homeassistant") == 1, 10, "it")

        def retired() -> bool:
            thing = Directory(hub.store).thing(WS)
            return thing is not None and thing.retired

        wait_for(retired, 10, "the thing retired in the registry")
        state = hub.live.get(WS)
        assert state is not None and state.withdrawn
        assert stored(hub, WS) == [*first, 22.0]  # history stays
    finally:
        hub.stop()


def test_silent_things_go_offline_by_their_timeout_and_fire_offline_alerts(
    tmp_path: Path, mosquitto: Mosquitto, publisher: Publisher
) -> None:
    config = config_for(tmp_path, mosquitto, availability_timeout={"mains_s": 1.0, "battery_s": 4.0})
    hub = Hub(config, env={})
    hub.store.migrate()
    directory = Directory(hub.store)
    admin = directory.bootstrap_admin("ada", now=time.time())
    for thing_id in ("plug-1", "lwt-plug", "door-1"):  # registered: the offline rule applies to them
        directory.create_thing(Thing(thing_id, thing_id), owner=admin.id, actor=admin.id, now=time.time())
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(15)
        time.sleep(0.3)
        publisher.send("neighborhood/things/lwt-plug/availability", "online")
        for thing_id, payload in [
            ("plug-1", {"power": 3.0}),
            ("lwt-plug", {"power": 4.0}),
            ("door-1", {"contact": True, "battery": 88}),
        ]:
            publisher.send(f"neighborhood/things/{thing_id}/state", json.dumps(payload))

        def online(thing_id: str) -> bool | None:
            state = hub.live.get(thing_id)
            return None if state is None else state.online

        wait_for(lambda: all(online(t) for t in ("plug-1", "lwt-plug", "door-1")), 10, "all three online")
        wait_for(lambda: online("plug-1") is False, 5, "the silent mains plug offline")
        assert online("lwt-plug") is True  # it reports its own availability: no timeout
        assert online("door-1") is True  # on battery: 4 s, not 1 s
        wait_for(
            lambda: any(a.thing == "plug-1" and a.rule == "offline-fast" for a in hub.alerting.open_alerts()),
            5,
            "the offline alert of the silent plug",
        )
        wait_for(lambda: online("door-1") is False, 8, "the silent battery door offline")
        assert online("lwt-plug") is True
        assert hub.telemetry.value("hub_things_silent_offline_total") == 2

        publisher.send("neighborhood/things/plug-1/state", json.dumps({"power": 5.0}))
        wait_for(lambda: online("plug-1") is True, 5, "the plug back online with its next reading")
        wait_for(
            lambda: not any(a.thing == "plug-1" for a in hub.alerting.open_alerts()),
            5,
            "the offline alert cleared once it talks again",
        )
    finally:
        hub.stop()
    again = Store.open(config.storage.path)  # what was persisted
    try:
        door = again.thing("door-1")
        assert door is not None and door.online is False
    finally:
        again.close()


def test_push_feeds_ingest_and_unmapped_fields_are_counted_listed_and_kept_without_a_point(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    hub = started(config_for(tmp_path, mosquitto))
    plug = "tasmota.plug-1"
    try:
        energy = {"Power": 5, "ApparentPower": 7, "Factor": 0.7}
        assert hub.push("tele/plug-1/SENSOR", json.dumps({"ENERGY": energy}).encode())
        # only unmapped fields: the plug was heard, but there is nothing to store
        assert hub.push("tele/plug-1/SENSOR", json.dumps({"ENERGY": {"ApparentPower": 8}}).encode())
        wait_for(lambda: hub.telemetry.value("hub_messages_received_total") == 2, 10, "both pushes")
        wait_for(lambda: hub.telemetry.value("hub_points_stored_total") == 1, 10, "one point stored")
        sink = hub.sink
        assert isinstance(sink, EmbeddedSink)
        assert [v for _, v in sink.history(plug, "power", 0)] == [5.0]
        assert sink.count(plug) == 1
        assert hub.telemetry.value("hub_unmapped_fields_total", source="tasmota") == 3
        assert hub.telemetry.value("hub_readings_decoded_total", source="tasmota") == 1
        assert [(p, f.raw) for p, f in hub.live.unmapped(plug)] == [
            ("ENERGY.ApparentPower", 8),
            ("ENERGY.Factor", 0.7),
        ]
        assert b'hub_unmapped_fields_total{source="tasmota"} 3.0' in hub.telemetry.render()
    finally:
        hub.stop()
    assert not hub.push("tele/plug-1/SENSOR", b"{}")  # stopped: refused, not queued
    again = Store.open(tmp_path / "data")
    try:
        kept = again.load_unmapped()[plug]
        assert {p: f.raw for p, f in kept.items()} == {"ENERGY.ApparentPower": 8, "ENERGY.Factor": 0.7}
    finally:
        again.close()
