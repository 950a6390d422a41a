"""InfluxDB away while readings keep coming: nothing lost, the spool bounded (oldest dropped, counted and
alerted), and replay that drains the backlog without holding up live readings.

Real Mosquitto, real InfluxDB 1.6.7, the hub as `hub run` (or in-process where a test reads its state).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import (
    T0,
    FaultProxy,
    HubProcess,
    hub_config,
    seconds_until,
    soak_enabled,
    wait_for,
    write_config,
)
from ingestkit import PacedPublisher, per_thing, stored, wait_hub_online
from services import InfluxDB1, Mosquitto

from hub.app import Hub
from hub.config import HubConfig
from hub.storage.lineprotocol import encode
from hub.storage.sink import Point
from hub.storage.spool import Spool

pytestmark = pytest.mark.integration

RATE = 200.0


def _outage(
    tmp_path: Path,
    broker: Mosquitto,
    influx: InfluxDB1,
    hub_process: Callable[[Path], HubProcess],
    *,
    outage_s: float,
    blackhole: FaultProxy | None = None,
) -> None:
    db = "outage"
    influx.create_database(db)
    url = f"http://{blackhole.host}:{blackhole.port}" if blackhole else None
    config = hub_config(tmp_path, broker.url, influx=influx, influx_url=url, db=db)
    config["timeseries"]["timeout"] = 2.0
    hub = hub_process(write_config(tmp_path, config))
    wait_hub_online(broker)
    publisher = PacedPublisher(broker, things=20, rate=RATE).start()
    time.sleep(2.0)
    wait_for(lambda: stored(influx, db) > 0, 10, "live points before the outage")

    if blackhole is not None:
        blackhole.blackhole()  # connections hang: the sink times out
    else:
        influx.stop()
    down_at = time.monotonic()
    time.sleep(outage_s)
    if blackhole is not None:
        blackhole.passthrough()
    else:
        influx.start()
    up_at = time.monotonic()
    outage = up_at - down_at
    time.sleep(2.0)
    published = publisher.stop()
    drained = seconds_until(lambda: stored(influx, db) >= published, 120, f"{published} points stored")
    time.sleep(1.0)  # anything more would be a duplicate or a stray
    counts = per_thing(influx, db)
    total = sum(counts.values())
    print(
        f"\ninflux outage {outage:.1f} s at {RATE:g} msg/s: published={published} stored={total} "
        f"drained {drained + 3.0:.1f} s after InfluxDB was back"
    )
    assert total == published
    assert counts == publisher.sent
    assert hub.stop() == 0
    assert "Traceback" not in hub.stderr
    assert "spooling" in hub.stderr and "replaying the spool" in hub.stderr


def test_influxdb_stopped_for_12s_at_200_msgs_loses_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1_factory: Callable[..., InfluxDB1],
    hub_process: Callable[[Path], HubProcess],
) -> None:
    # minutes-long outages are the soak variant below; 12 s already spools over 2,000 messages
    _outage(tmp_path, mosquitto, influxdb_v1_factory(), hub_process, outage_s=12.0)


def test_influxdb_blackholed_for_10s_at_200_msgs_loses_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1_factory: Callable[..., InfluxDB1],
    hub_process: Callable[[Path], HubProcess],
    fault_proxy: Callable[[str, int], FaultProxy],
) -> None:
    """Writes hang instead of failing fast (a frozen server, a dropped route): the sink times out."""
    influx = influxdb_v1_factory()
    _outage(
        tmp_path,
        mosquitto,
        influx,
        hub_process,
        outage_s=10.0,
        blackhole=fault_proxy(influx.host, influx.port),
    )


@pytest.mark.soak
def test_soak_influxdb_down_for_minutes_loses_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1_factory: Callable[..., InfluxDB1],
    hub_process: Callable[[Path], HubProcess],
) -> None:
    assert soak_enabled()
    _outage(tmp_path, mosquitto, influxdb_v1_factory(), hub_process, outage_s=240.0)


# -- the bound ------------------------------------------------------------------------------------------
def test_past_its_bound_the_spool_drops_the_oldest_counts_it_and_raises_a_hub_alert(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1_factory: Callable[..., InfluxDB1]
) -> None:
    influx = influxdb_v1_factory()
    influx.create_database("bounded")
    config = hub_config(tmp_path, mosquitto.url, influx=influx, db="bounded")
    config["storage"]["spool_max_mb"] = 0.02  # ~20 kB: about 250 readings
    config["web"] = {"enabled": True, "listen": "127.0.0.1:0"}
    hub = Hub(HubConfig.model_validate(config), env={})
    hub.start()
    try:
        wait_hub_online(mosquitto)
        influx.stop()
        publisher = PacedPublisher(mosquitto, things=10, rate=400.0).start()
        wait_for(lambda: hub.telemetry.value("hub_drops_total", queue="spool") > 0, 30, "a spool drop")
        published = publisher.stop()
        assert hub.spool is not None
        batches, _, size = hub.spool.usage()
        assert size <= hub.spool.max_bytes or batches == 1, (size, batches)  # the newest batch stays
        dropped = hub.telemetry.value("hub_drops_total", queue="spool")
        spooled = hub.telemetry.value("hub_points_spooled_total")
        assert dropped == hub.spool.dropped_points > 0
        wait_for(lambda: any(a.thing == "hub" for a in hub.alerting.open_alerts()), 5, "the hub alert")
        [alert] = [a for a in hub.alerting.open_alerts() if a.thing == "hub"]
        assert alert.severity.value == "critical" and alert.kind == "hub_condition"
        assert hub.health()["spool"]["status"] == "degraded"
        with urllib.request.urlopen(f"{hub.web_url}/metrics", timeout=5) as response:
            assert 'hub_drops_total{queue="spool"}' in response.read().decode()

        influx.start()
        wait_for(lambda: hub.spool is not None and hub.spool.points == 0, 60, "the spool replayed")
        wait_for(
            lambda: not any(a.thing == "hub" for a in hub.alerting.open_alerts()), 10, "the alert cleared"
        )
        kept = stored(influx, "bounded")
        print(
            f"\nspool bound {hub.spool.max_bytes} bytes: published={published} spooled={spooled:.0f} "
            f"dropped={dropped:.0f} stored={kept}"
        )
        assert kept + dropped == published  # every reading stored or counted as dropped, none twice
    finally:
        hub.stop()


# -- replay ----------------------------------------------------------------------------------------------
def stored_from(server: InfluxDB1, db: str, since_ns: int) -> int:
    """Live readings (things ``thing-*``) stored with a device time from ``since_ns`` on."""
    query = f'SELECT count("temperature") FROM "reading" WHERE "thing" =~ /^thing-/ AND time >= {since_ns}'
    try:
        rows = server.rows(db, query)
    except (AssertionError, OSError):
        return 0
    return sum(int(row["count"]) for row in rows)


def test_replay_drains_a_backlog_while_live_readings_keep_being_stored(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1_factory: Callable[..., InfluxDB1]
) -> None:
    influx = influxdb_v1_factory()
    influx.create_database("replay")
    backlog = 500_000
    config = hub_config(tmp_path, mosquitto.url, influx=influx, db="replay")
    spool = Spool(tmp_path / "data" / "spool.sqlite", 512 << 20)
    for start in range(0, backlog, 5000):  # spooled by an earlier run during an outage
        points = [
            Point(f"old-{i % 100:03d}", "native", {"temperature": 1.0}, int((1.7e9 + i) * 1e9))
            for i in range(start, start + 5000)
        ]
        spool.append(encode(points), len(points))
    spool.close()

    hub = Hub(HubConfig.model_validate(config), env={})
    publisher = PacedPublisher(mosquitto, things=10, rate=RATE)
    live_during_replay = 0
    influx.stop()  # InfluxDB comes back while live readings flow: the replay competes with them
    hub.start()
    try:
        wait_hub_online(mosquitto)
        publisher.start()
        time.sleep(1.0)
        influx.start()
        started = time.monotonic()
        # message seq of a thing carries device time T0 + seq: later ones were sent after InfluxDB's return
        after = int((T0 + max(publisher.sent.values())) * 1e9)
        assert hub.spool is not None
        while hub.spool.points > 0 and time.monotonic() - started < 60:
            live = stored_from(influx, "replay", after)  # not the live readings spooled before
            if hub.spool.points > 0:
                live_during_replay = max(live_during_replay, live)
            time.sleep(0.05)
        replay_s = time.monotonic() - started
        published = publisher.stop()
        wait_for(lambda: stored(influx, "replay") >= backlog + published, 30, "everything stored")
        counts = per_thing(influx, "replay")
        old = sum(n for thing, n in counts.items() if thing.startswith("old-"))
        live = sum(n for thing, n in counts.items() if thing.startswith("thing-"))
        print(
            f"\nreplay of {backlog} points took {replay_s:.1f} s ({backlog / replay_s:,.0f} points/s in the "
            f"suite); live stored during replay={live_during_replay}, live total={live}/{published}"
        )
        assert old == backlog
        assert live == published
        assert live_during_replay > 0, "no live reading was stored while the backlog was replayed"
    finally:
        hub.stop()
