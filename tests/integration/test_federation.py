"""Federation through the shipped Mosquitto bridge (config/mosquitto/federation-bridge.conf): a second
Mosquitto, bridged to the hub's by that file, receives hourly-style summaries and alert levels of public
things only, coarsened, and never a private or neighbors-only thing, a raw reading or another hub topic.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from hubprocess import HubProcess
from paho.mqtt.enums import CallbackAPIVersion
from services import REPO, Mosquitto
from waiting import wait_for

from hub.config import parse_config
from hub.domain.model import Location, Share, Thing, Visibility
from hub.storage.directory import Directory
from hub.storage.store import Store

pytestmark = pytest.mark.integration

BRIDGE = REPO / "config" / "mosquitto" / "federation-bridge.conf"
#: lines of the shipped bridge that need a real federation broker (TLS and its credentials)
_TLS_AND_CREDENTIALS = (
    "bridge_cafile",
    "bridge_tls_version",
    "bridge_insecure",
    "remote_username",
    "remote_password",
)
EXACT = Location(lat=52.520008, lon=13.404954, place="courtyard, house 12")
PM25_HIGH = {"kind": "threshold", "id": "pm25-high", "measurement": "pm25", "above": 50, "clear_below": 40}


def bridge_to(remote: Mosquitto) -> str:
    """The shipped bridge, pointed at the test's federation broker over plain loopback TCP; every other
    line, the ``topic`` line above all, as shipped."""
    lines = []
    for line in BRIDGE.read_text().splitlines():
        if line.startswith("address "):
            line = f"address {remote.host}:{remote.port}"
        elif line.startswith(_TLS_AND_CREDENTIALS):
            continue
        lines.append(line)
    text = "\n".join(lines)
    assert "topic # out 1 neighborhood/federation/out/ federation/courtyard/" in text
    return text


class Listener:
    """Everything the federation broker receives, on every topic."""

    def __init__(self, broker: Mosquitto) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fed-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
        )
        self.client.on_message = self._message
        self.client.on_connect = lambda c, *_: c.subscribe("#", 1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload))

    def on(self, topic: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p in self.messages if t == topic and p]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def register(store_dir: Path) -> None:
    store = Store.open(store_dir)
    store.migrate()
    directory = Directory(store)
    now = time.time()
    things = [
        Thing(id="air-public", name="Courtyard air", visibility=Visibility.PUBLIC, location=EXACT),
        Thing(
            id="leak-public",
            name="Cellar leak",
            visibility=Visibility.PUBLIC,
            watcher_share=Share.DERIVED,
            derived_from=("water_leak",),
        ),
        Thing(id="flood-neighbors", name="Flood", visibility=Visibility.NEIGHBORS),
        Thing(id="drill-private", name="Drill", visibility=Visibility.PRIVATE),
    ]
    for thing in things:
        directory.create_thing(thing, owner=None, actor=None, now=now)
    store.close()


def test_only_public_coarsened_summaries_and_alert_levels_cross_the_shipped_bridge(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto]
) -> None:
    began = time.monotonic()
    federation = mosquitto_factory()
    local = mosquitto_factory(extra_config=bridge_to(federation))
    listener = Listener(federation)
    register(tmp_path / "data")
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"""\
mqtt:
  url: {local.url}
  client_id: hub-fed-{uuid.uuid4().hex[:6]}
storage:
  path: {tmp_path / "data"}
web:
  enabled: false
homeassistant_discovery:
  enabled: false
alerts:
  defaults: false
  rules:
    - {json.dumps(PM25_HIGH)}
federation:
  enabled: true
  interval_s: 2
  grid_m: 1000
"""
    )
    parse_config(config.read_text())
    hub = HubProcess(config).start()
    try:
        publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        publisher.connect(local.host, local.port)
        publisher.loop_start()
        online = threading.Event()
        publisher.on_message = lambda _c, _u, m: m.payload == b"online" and online.set()
        publisher.subscribe("neighborhood/hub/status", 1)
        assert online.wait(30), f"hub never came online; its log:\n{hub.output()[-3000:]}"

        readings = {
            "air-public": [{"pm25": 10.0, "temperature": 8.0}, {"pm25": 20.0}, {"pm25": 90.0}],
            "leak-public": [
                {"water_leak": False, "temperature": 11.0},
                {"water_leak": True, "temperature": 12.5},
            ],
            "flood-neighbors": [{"water_leak": True, "pm25": 95.0}],
            "drill-private": [{"pm25": 99.0, "temperature": 30.0}],
        }
        infos = []
        for round_ in range(3):
            for thing, payloads in readings.items():
                if round_ < len(payloads):
                    topic = f"neighborhood/things/{thing}/state"
                    infos.append(publisher.publish(topic, json.dumps(payloads[round_]), qos=1))
            time.sleep(1.1)  # one reading per thing per sample, as devices send them
        for info in infos:
            info.wait_for_publish(10)

        air = "federation/courtyard/things/air-public/summary"
        leak = "federation/courtyard/things/leak-public/summary"
        alert = "federation/courtyard/alerts/air-public"

        def complete() -> bool:
            pm25 = sum(s["values"].get("pm25", {}).get("count", 0) for s in listener.on(air))
            return pm25 == 3 and bool(listener.on(leak)) and bool(listener.on(alert))

        wait_for(complete, 15, "the public things' summaries and alert on the federation broker")
        time.sleep(2.5)  # one more period: nothing else may follow

        with listener.lock:
            topics = {topic for topic, _ in listener.messages}
            everything = b"\n".join(payload for _, payload in listener.messages)
        # the bridge forwards the federation subtree alone, and the hub puts only public things in it
        assert all(topic.startswith("federation/courtyard/") for topic in topics), topics
        assert topics <= {air, leak, alert}, topics
        for secret in (
            b"flood-neighbors",
            b"drill-private",
            b"courtyard, house 12",
            b"99.0",
            b"95.0",
            b"30.0",
        ):
            assert secret not in everything, secret

        summaries = listener.on(air)
        pm25 = [s["values"]["pm25"] for s in summaries if "pm25" in s["values"]]
        assert sum(v["count"] for v in pm25) == 3
        assert min(v["min"] for v in pm25) == 10.0 and max(v["max"] for v in pm25) == 90.0
        assert sum(v["mean"] * v["count"] for v in pm25) == pytest.approx(120.0)
        for summary in summaries:
            assert summary["period_s"] == 2 and summary["name"] == "Courtyard air"
            cell = summary["cell"]
            assert cell["grid_m"] == 1000
            assert (cell["lat"], cell["lon"]) != (EXACT.lat, EXACT.lon)
            assert abs(cell["lat"] - EXACT.lat) < 0.0046 and abs(cell["lon"] - EXACT.lon) < 0.0075  # 1 km
        # a derived share: only the yes/no state crosses, never the temperature behind it
        for summary in listener.on(leak):
            assert summary["values"] == {}
            assert set(summary["states"]) == {"water_leak"}
        assert any(s["states"]["water_leak"] for s in listener.on(leak))
        [level] = {json.dumps(a) for a in listener.on(alert)}
        assert json.loads(level) == {
            "thing": "air-public",
            "alerts": [{"kind": "threshold", "severity": "minor"}],
        }
        print(
            f"\nfederation: {len(listener.messages)} messages crossed on {len(topics)} topics; "
            f"test {time.monotonic() - began:.1f} s"
        )
        publisher.disconnect()
        publisher.loop_stop()
    finally:
        listener.close()
        if hub.running:
            assert hub.stop() == 0, hub.output()[-3000:]
