"""Soak: the broker killed (SIGKILL) and restarted again and again for minutes under steady QoS 1 load;
at the end every published reading is stored. Run with ``--soak`` (``scripts/test --soak``); the length
is HUB_SOAK_SECONDS (default 240).

The broker saves its state every second here (``autosave_interval 1``): Mosquitto keeps sessions and
queued messages in memory between saves and a SIGKILL loses them (the shipped config saves every 60 s).
What the hub itself was given it must never lose; what the broker lost it cannot have been given.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import InfluxDB1, Mosquitto, Publisher, hub_config, influx_count, seconds_until, wait_for

from hub.app import Hub
from hub.config import HubConfig

pytestmark = [pytest.mark.integration, pytest.mark.soak]

RATE = 100  # readings per second
THINGS = 20


class Load(threading.Thread):
    """A device fleet publishing QoS 1 at RATE/s through one persistent-session client, whatever the
    broker is doing: paho queues while it is away and resends what was not acknowledged."""

    def __init__(self, broker: Mosquitto) -> None:
        super().__init__(daemon=True)
        self.publisher = Publisher(broker, client_id=f"fleet-{uuid.uuid4().hex[:6]}")
        self.stop = threading.Event()
        self.published = 0

    def run(self) -> None:
        next_at = time.monotonic()
        seq = 0
        while not self.stop.is_set():
            self.publisher.reading(f"thing-{seq % THINGS:03d}", seq)
            self.published += 1
            seq += 1
            next_at += 1 / RATE
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def test_broker_kill_restart_cycles_under_load_lose_nothing(
    tmp_path: Path, mosquitto_factory: Callable[..., Mosquitto], influxdb_v1: InfluxDB1
) -> None:
    seconds = float(os.environ.get("HUB_SOAK_SECONDS", "240"))
    broker = mosquitto_factory(extra_config="autosave_interval 1")
    db = f"soak_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = Hub(HubConfig.model_validate(hub_config(tmp_path, broker.url, influx=influxdb_v1, db=db)), env={})
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(15)
    mqtt = hub.mqtt
    load = Load(broker)
    load.start()
    rng = random.Random(7)
    reconnects: list[float] = []
    downs: list[float] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(rng.uniform(5, 15))  # up, under load
            broker.kill()
            down = rng.choice([0.5, 2.0, 5.0, 10.0, 20.0])
            downs.append(down)
            time.sleep(down)
            broker.start()
            reconnects.append(seconds_until(mqtt.connected.is_set, 30, "the hub to reconnect"))
        load.stop.set()
        load.join(10)
        wait_for(lambda: load.publisher.acked >= load.published, 60, "the broker to take every reading")
        published = load.published
        wait_for(lambda: influx_count(influxdb_v1, db) >= published, 120, f"{published} stored", every=0.5)
        time.sleep(1.0)
        stored = influx_count(influxdb_v1, db)
    finally:
        load.stop.set()
        load.publisher.close()
        hub.stop()
    print(
        f"\nbroker soak {seconds:g} s: {len(downs)} kills (down {min(downs):g}-{max(downs):g} s); hub "
        f"connected after each return in {min(reconnects):.2f}-{max(reconnects):.2f} s "
        f"(mean {sum(reconnects) / len(reconnects):.2f} s); published {published}, stored {stored}, "
        f"{mqtt.connects} connections"
    )
    assert max(reconnects) <= 5.0
    assert stored == published


def test_broker_down_for_40_s_is_reconnected_within_5_s_of_its_return(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1
) -> None:
    db = f"down40_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = Hub(
        HubConfig.model_validate(hub_config(tmp_path, mosquitto.url, influx=influxdb_v1, db=db)), env={}
    )
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(15)
        mosquitto.kill()
        time.sleep(40)
        mosquitto.start()
        back = time.monotonic()
        probe = Publisher(mosquitto)
        seq = 0
        connected_after = None
        while time.monotonic() < back + 20:
            if connected_after is None and hub.mqtt.connected.is_set():
                connected_after = time.monotonic() - back
            probe.reading("probe", seq)
            seq += 1
            if influx_count(influxdb_v1, db) > 0:
                break
            time.sleep(0.1)
        stored_after = time.monotonic() - back
        probe.close()
        print(
            f"\nbroker down 40 s: hub connected {connected_after or stored_after:.2f} s and first new "
            f"reading stored {stored_after:.2f} s after its return"
        )
        assert stored_after <= 5.0
    finally:
        hub.stop()
