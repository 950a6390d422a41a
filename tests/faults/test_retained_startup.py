"""5,000 retained topics waiting at the broker when the hub starts: every one is loaded."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from faultkit import T0, InfluxDB1, Mosquitto, Publisher, hub_config, influx_count, seconds_until, wait_for

from hub.app import Hub
from hub.config import HubConfig

pytestmark = pytest.mark.integration

THINGS = 5000


def test_5000_retained_states_at_start_up_are_all_loaded(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1
) -> None:
    publisher = Publisher(mosquitto)
    infos = [publisher.reading(f"thing-{t:04d}", t, retain=True) for t in range(THINGS)]
    for info in infos:
        info.wait_for_publish(60)
    publisher.close()

    db = f"retained_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = Hub(
        HubConfig.model_validate(hub_config(tmp_path, mosquitto.url, influx=influxdb_v1, db=db)), env={}
    )
    start = time.monotonic()
    hub.start()
    try:
        received = seconds_until(
            lambda: hub.telemetry.value("hub_messages_received_total") >= THINGS,
            60,
            f"{THINGS} retained messages received",
            every=0.1,
        )

        def all_live() -> bool:
            return (
                sum(1 for t in range(THINGS) if (s := hub.live.get(f"thing-{t:04d}")) and s.values) == THINGS
            )

        live = received + seconds_until(all_live, 60, f"{THINGS} things with their latest value", every=0.1)
        points = seconds_until(
            lambda: influx_count(influxdb_v1, db) >= THINGS, 60, f"{THINGS} points", every=0.1
        )
        wait_for(
            lambda: len(hub.store.load_things()) >= THINGS, 60, f"{THINGS} things in the store", every=0.2
        )
        total = time.monotonic() - start
        things = {state.id: state for state in hub.store.load_things()}
        time.sleep(0.5)
        stored = influx_count(influxdb_v1, db)
        print(
            f"\n{THINGS} retained states at start-up: all received after {received:.2f} s, live after "
            f"{live:.2f} s, all {stored} points in InfluxDB after {points + live:.2f} s, all registered "
            f"in the store after {total:.2f} s"
        )
        assert stored == THINGS
        assert len([t for t in things if t.startswith("thing-")]) == THINGS
        sample = things["thing-4321"]
        assert sample.values["temperature"] == pytest.approx(20 + 4321 % 1000 / 100)
        assert sample.times["temperature"] == pytest.approx(T0 + 4321)
        assert hub.telemetry.value("hub_messages_received_total") >= THINGS
    finally:
        hub.stop()
