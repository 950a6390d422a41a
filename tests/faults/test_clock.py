"""Clock sanity: a Pi booting in 1970 writes no 1970 points.

The hub runs in-process with an injected wall clock set to 1970; messages enter through its ingest
queue stamped by that clock, as the MQTT client stamps them. Readings without a device time are held in
the spool (counted) and, once the clock is set, written with their true arrival time: wall now minus
the monotonic time elapsed since they arrived. Held readings of an earlier boot cannot be dated and are
dropped, counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import T0, hub_config, wait_for
from ingestkit import stored
from services import InfluxDB1, Mosquitto

from hub.app import Hub
from hub.config import HubConfig
from hub.domain.clock import EARLIEST
from hub.mqtt.client import Inbound
from hub.storage.lineprotocol import encode
from hub.storage.recorder import Recorder
from hub.storage.sink import Point
from hub.storage.spool import Spool
from hub.telemetry import Telemetry

pytestmark = pytest.mark.integration

BOOT_1970 = 86_400.0 * 3  # three days after the epoch: a Pi without a real-time clock


class Clock:
    """A wall clock that starts in 1970 and is set (jumps) when NTP syncs; runs at real speed."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def sync(self) -> None:
        self.offset = 0.0


def test_a_hub_booted_in_1970_writes_no_1970_point_and_dates_its_readings_once_the_clock_is_set(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1_factory: Callable[..., InfluxDB1]
) -> None:
    influx = influxdb_v1_factory()
    influx.create_database("clock")
    clock = Clock(BOOT_1970)
    config = HubConfig.model_validate(hub_config(tmp_path, mosquitto.url, influx=influx, db="clock"))
    hub = Hub(config, env={}, clock=clock)
    hub.start()
    try:
        arrived: list[float] = []
        for i in range(50):  # no device time: arrival time is all there is
            arrived.append(time.time())
            payload = json.dumps({"temperature": 20.0 + i / 10, "linkquality": i}).encode()
            hub.queue.put(Inbound(f"neighborhood/things/pi-{i % 5}/state", payload, 1, False, clock(), None))
            time.sleep(0.02)
        for i in range(10):  # a device with its own synced clock: its time is sane, written at once
            payload = json.dumps({"temperature": 5.0, "time": T0 + i}).encode()
            hub.queue.put(Inbound("neighborhood/things/rtc/state", payload, 1, False, clock(), None))
        held = hub.telemetry.value
        wait_for(lambda: held("hub_points_held_for_clock_total") >= 60, 10, "60 held readings")
        time.sleep(1.5)  # the replayer runs; the clock is still 1970
        # the device-timed ones too: against a clock in 1970 their time looks like the future
        # (hub.domain.clock.sane_time), so they get arrival time like the others
        assert hub.spool is not None and hub.spool.held_points == 60
        assert stored(influx, "clock") == 0

        clock.sync()
        synced = time.time()
        wait_for(lambda: stored(influx, "clock") >= 60, 20, "held readings written once the clock is set")
        rows = influx.rows("clock", 'SELECT "temperature" FROM "reading"')
        times = sorted(int(row["time"]) / 1e9 for row in rows)
        assert len(times) == 60
        assert min(times) >= EARLIEST, "a point before 2020 reached the sink"
        assert max(times) <= synced + 1
        # each held reading got its true arrival time (to the ms), not the time the clock was set
        assert abs(times[0] - arrived[0]) < 0.5 and abs(times[-1] - arrived[-1]) < 0.5
        assert hub.telemetry.value("hub_points_restamped_total") == 60
        assert hub.telemetry.value("hub_drops_total", queue="clock_unknown") == 0
        assert hub.spool.held_points == 0
        print(
            f"\nclock in 1970: held={held('hub_points_held_for_clock_total'):.0f} "
            f"restamped={held('hub_points_restamped_total'):.0f} stored={len(times)} before-2020=0"
        )
    finally:
        hub.stop()


def test_held_readings_of_an_earlier_boot_are_dropped_and_counted_never_guessed(tmp_path: Path) -> None:
    telemetry = Telemetry()
    spool = Spool(tmp_path / "spool.sqlite", 1 << 20)
    point = Point("pi", "native", {"temperature": 1.0}, 123_456_789)  # monotonic ns of another boot
    spool.append(encode([point, point]), 2, boot="boot-before-the-reboot")

    class Down:
        kind = "influxdb-v1"

        def write_lines(self, body: bytes) -> None:
            raise AssertionError("nothing may be written")

        def ping(self) -> bool:
            return True

        def close(self) -> None: ...

    recorder = Recorder(Down(), telemetry, spool=spool, boot="this-boot")
    recorder.start()
    try:
        dropped = lambda: telemetry.value("hub_drops_total", queue="clock_unknown")  # noqa: E731
        wait_for(lambda: dropped() == 2, 5, "the held batch of the earlier boot dropped, counted")
        assert spool.points == 0
        assert telemetry.value("hub_points_restamped_total") == 0
    finally:
        recorder.stop()


def test_the_hub_takes_its_clock_from_the_constructor(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = hub_config(tmp_path, mosquitto.url)
    hub = Hub(HubConfig.model_validate(config), env={}, clock=lambda: BOOT_1970)
    assert hub.stamper.clock() == BOOT_1970 and not hub.stamper.clock_sane
    _time, entry, held = hub.stamper.arrival("t", b"{}", BOOT_1970, qos=1)
    assert held and entry is None
