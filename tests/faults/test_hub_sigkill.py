"""The hub killed with SIGKILL under QoS 1 load, also during an InfluxDB outage: nothing lost, nothing
twice. The readings carry no device time, so each point's time is the hub's arrival time: a message
stored, then redelivered because the kill came before its acknowledgement, must get the same time
again (the timestamp journal) or it would become a second point.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import FaultProxy, HubProcess, hub_config, seconds_until, soak_enabled, write_config
from ingestkit import PacedPublisher, per_thing, stored, wait_hub_online
from services import InfluxDB1, Mosquitto

pytestmark = pytest.mark.integration


def _kill_run(
    tmp_path: Path,
    broker: Mosquitto,
    influx: InfluxDB1,
    hub_process: Callable[[Path], HubProcess],
    proxy: FaultProxy,
    *,
    kills: int,
    between_s: float,
) -> None:
    """Kills cycle through three moments: under plain load; while InfluxDB is down (batches in the
    spool); and while the sink is slow (2 s latency each way), so a kill lands after InfluxDB stored a
    batch and before its acknowledgement: the broker redelivers those messages, which must overwrite
    their points instead of adding new ones."""
    db = "killed"
    influx.create_database(db)
    config = hub_config(tmp_path, broker.url, influx_url=f"http://{proxy.host}:{proxy.port}", db=db)
    path = write_config(tmp_path, config)
    hub = hub_process(path)
    wait_hub_online(broker)
    publisher = PacedPublisher(broker, things=20, rate=200.0, device_time=False).start()
    moments = {"load": 0, "outage": 0, "slow sink": 0}
    started = time.monotonic()
    for n in range(kills):
        time.sleep(between_s)
        moment = ("load", "outage", "slow sink")[n % 3]
        if moment == "outage":
            influx.stop()
            time.sleep(1.5)  # batches go to the spool
        elif moment == "slow sink":
            proxy.latency(2000)
            time.sleep(3.0)  # a batch is in InfluxDB, its answer (and so the acks) still on the way
        hub.stop(signal.SIGKILL)
        moments[moment] += 1
        time.sleep(0.5)
        if moment == "slow sink":
            proxy.passthrough()
        hub = hub_process(path)
        wait_hub_online(broker)  # the will said offline; a kill before this would test nothing
        if moment == "outage":
            time.sleep(1.5)  # the new run spools too, and replays what the last one left once it is back
            influx.start()
    time.sleep(between_s)
    published = publisher.stop()
    run_s = time.monotonic() - started
    drained = seconds_until(lambda: stored(influx, db) >= published, 90, f"{published} points stored")
    time.sleep(2.0)  # redeliveries and replays still in flight would show up as extra points
    counts = per_thing(influx, db)
    total = sum(counts.values())
    print(
        f"\nSIGKILL x{kills} {moments} over {run_s:.0f} s at 200 msg/s: published={published} "
        f"stored={total} (distinct thing+time), drained {drained:.1f} s after the last publish"
    )
    assert total == published, f"{total - published:+d} points against published"
    assert counts == publisher.sent  # per thing: none missing, none twice
    assert hub.stop() == 0


def test_sigkill_under_qos1_load_and_during_an_outage_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1_factory: Callable[..., InfluxDB1],
    hub_process: Callable[[Path], HubProcess],
    fault_proxy: Callable[[str, int], FaultProxy],
) -> None:
    influx = influxdb_v1_factory()
    proxy = fault_proxy(influx.host, influx.port)
    _kill_run(tmp_path, mosquitto, influx, hub_process, proxy, kills=3, between_s=2.0)


@pytest.mark.soak
def test_soak_many_sigkills(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1_factory: Callable[..., InfluxDB1],
    hub_process: Callable[[Path], HubProcess],
    fault_proxy: Callable[[str, int], FaultProxy],
) -> None:
    assert soak_enabled()
    influx = influxdb_v1_factory()
    proxy = fault_proxy(influx.host, influx.port)
    _kill_run(tmp_path, mosquitto, influx, hub_process, proxy, kills=30, between_s=5.0)
