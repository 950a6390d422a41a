"""The broker goes away: killed and restarted, frozen (SIGSTOP), or behind a network that silently drops
everything (the fault proxy in blackhole mode). The hub notices in time, comes back by itself, and loses
nothing the broker still holds. Each test prints its figures (run with -s).

Messages are QoS 1 native readings with deterministic timestamps, stored in a real InfluxDB 1.x and
counted there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import (
    FaultProxy,
    InfluxDB1,
    Mosquitto,
    Publisher,
    frozen,
    hub_config,
    influx_count,
    kill,
    seconds_until,
    wait_for,
)

from hub.app import Hub
from hub.config import HubConfig
from hub.mqtt.client import RECONNECT_MAX, WATCHDOG_KEEPALIVES

pytestmark = pytest.mark.integration

#: the issue's promises
RECONNECT_WITHIN = 5.0
DETECT_WITHIN_KEEPALIVES = 1.5
#: short keepalive for the freeze tests (the config's minimum is 5 s)
KEEPALIVE = 5


@pytest.fixture
def run_hub() -> Iterator[Callable[[dict[str, Any]], Hub]]:
    hubs: list[Hub] = []

    def start(config: dict[str, Any]) -> Hub:
        hub = Hub(HubConfig.model_validate(config), env={})
        hubs.append(hub)
        hub.start()
        assert hub.mqtt is not None
        assert hub.mqtt.wait_connected(15), f"the hub did not connect: {hub.mqtt.last_error}"
        return hub

    yield start
    for hub in hubs:
        hub.stop()


def database(influx: InfluxDB1, prefix: str) -> str:
    db = f"{prefix}_{uuid.uuid4().hex[:8]}"
    influx.create_database(db)
    return db


def stored(influx: InfluxDB1, db: str, thing_prefix: str = "thing-") -> int:
    return influx_count(influx, db, f'"thing" =~ /^{thing_prefix}/')


def connected(hub: Hub) -> bool:
    return hub.mqtt is not None and hub.mqtt.connected.is_set()


def probe_until_stored(
    hub: Hub, broker: Mosquitto, influx: InfluxDB1, db: str, since: float, timeout: float = 20
) -> tuple[float, float, int]:
    """Publish one new reading every 0.1 s until one of them is stored. Returns (seconds from ``since``
    until the hub was connected, seconds until the first new reading was stored, probes sent)."""
    probe = Publisher(broker)
    try:
        up_at: float | None = time.monotonic() - since if connected(hub) else None
        seq = 0
        deadline = since + timeout
        while time.monotonic() < deadline:
            if up_at is None and connected(hub):
                up_at = time.monotonic() - since
            probe.reading("probe", seq, offset=500_000)
            seq += 1
            if influx_count(influx, db, "\"thing\" = 'probe'") > 0:
                stored_at = time.monotonic() - since
                return (up_at if up_at is not None else stored_at), stored_at, seq
            time.sleep(0.1)
        raise AssertionError(
            f"no new reading stored within {timeout:g} s of the broker's return "
            f"(hub mqtt: {hub.health()['mqtt']})"
        )
    finally:
        probe.close()


def broker_kill_restart(
    hub: Hub, mosquitto: Mosquitto, influx: InfluxDB1, db: str, down_for: float
) -> dict[str, float]:
    """Kill the broker, keep it down ``down_for`` s, start it; figures of the hub's return."""
    killed = kill(mosquitto)
    noticed = seconds_until(lambda: not connected(hub), 10, "the hub to notice the dead broker")
    assert hub.health()["mqtt"]["status"] == "down"
    time.sleep(max(0.0, down_for - (time.monotonic() - killed)))
    mosquitto.start()
    back = time.monotonic()
    up, first_stored, probes = probe_until_stored(hub, mosquitto, influx, db, back)
    return {"noticed": noticed, "reconnected": up, "first_stored": first_stored, "probes": probes}


def test_broker_killed_for_16_s_the_hub_is_back_and_subscribed_within_5_s(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1, run_hub: Callable[[dict[str, Any]], Hub]
) -> None:
    """16 s down is past paho's default backoff steps (1, 2, 4, 8: the next try 15 s after the return)."""
    db = database(influxdb_v1, "kill")
    hub = run_hub(hub_config(tmp_path, mosquitto.url, influx=influxdb_v1, db=db))
    publisher = Publisher(mosquitto)
    sent = publisher.burst(things=10, per_thing=10)
    publisher.close()
    wait_for(lambda: stored(influxdb_v1, db) >= sent, 20, f"{sent} points before the kill")

    figures = broker_kill_restart(hub, mosquitto, influxdb_v1, db, down_for=16)

    publisher = Publisher(mosquitto)
    sent += publisher.burst(things=10, per_thing=10, offset=1000)
    publisher.close()
    wait_for(lambda: stored(influxdb_v1, db) >= sent, 20, f"{sent} points after the restart")
    time.sleep(0.5)
    total = stored(influxdb_v1, db)
    print(
        f"\nbroker SIGKILL, down 16 s: hub noticed in {figures['noticed']:.2f} s; after the broker's "
        f"return: connected in {figures['reconnected']:.2f} s, first new reading stored in "
        f"{figures['first_stored']:.2f} s ({figures['probes']:.0f} probes); published {sent}, stored {total}"
    )
    assert figures["first_stored"] <= RECONNECT_WITHIN
    assert total == sent
    assert hub.mqtt is not None and hub.mqtt.connects == 2
    assert hub.health()["mqtt"]["status"] == "ok"


def test_reconnect_backoff_is_capped(tmp_path: Path) -> None:
    """However long the broker stays away, the next try is at most RECONNECT_MAX s away."""
    from hub.mqtt.client import reconnect_delay

    waits = [reconnect_delay(attempt, rng=lambda: 1.0) for attempt in range(40)]
    assert waits[:3] == [1.0, 2.0, 3.0] and max(waits) == RECONNECT_MAX
    assert min(reconnect_delay(a, rng=lambda: 0.0) for a in range(40)) == 0.5  # jitter halves at most
    assert RECONNECT_MAX + 1.0 < RECONNECT_WITHIN  # room for CONNACK, subscribe and the first store


def detect_silence(hub: Hub, keepalive: float) -> tuple[float, dict[str, str]]:
    """Seconds until the hub's connection is down, and its MQTT health then."""
    detection = seconds_until(
        lambda: not connected(hub), 4 * keepalive, "the hub to notice the silent broker"
    )
    return detection, hub.health()["mqtt"]


def assert_detected(detection: float, health: dict[str, str]) -> None:
    assert detection <= DETECT_WITHIN_KEEPALIVES * KEEPALIVE
    assert health["status"] == "down"
    assert "stopped answering" in health["detail"], health  # the watchdog's doing, said plainly


def test_frozen_broker_is_detected_within_1_5_keepalives_and_nothing_is_lost(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1, run_hub: Callable[[dict[str, Any]], Hub]
) -> None:
    db = database(influxdb_v1, "freeze")
    hub = run_hub(hub_config(tmp_path, mosquitto.url, influx=influxdb_v1, db=db, keepalive=KEEPALIVE))
    publisher = Publisher(mosquitto)
    sent = publisher.burst(things=10, per_thing=10)
    # The last reading just before the freeze: paho alone would only ping a keepalive after it and give
    # up another keepalive later (2x); the watchdog must do better.
    wait_for(lambda: stored(influxdb_v1, db) >= sent, 20, f"{sent} points before the freeze")

    with frozen(mosquitto) as at:
        during = [publisher.reading(f"thing-{t:03d}", 100 + i) for i in range(10) for t in range(10)]
        sent += len(during)
        detection, health = detect_silence(hub, KEEPALIVE)
        frozen_for = time.monotonic() - at
        time.sleep(max(0.0, 2 * KEEPALIVE - frozen_for))  # stay frozen a while: reconnects go nowhere
    thawed = time.monotonic()
    recovered = seconds_until(lambda: connected(hub), 20, "the hub to reconnect after SIGCONT")
    for info in during:
        info.wait_for_publish(20)
    wait_for(lambda: stored(influxdb_v1, db) >= sent, 30, f"all {sent} points after the thaw")
    all_stored = time.monotonic() - thawed
    publisher.close()
    time.sleep(0.5)
    total = stored(influxdb_v1, db)
    print(
        f"\nbroker SIGSTOP, keepalive {KEEPALIVE} s: detected in {detection:.2f} s "
        f"(limit {DETECT_WITHIN_KEEPALIVES * KEEPALIVE:.1f} s, watchdog at {WATCHDOG_KEEPALIVES}x); "
        f"after SIGCONT reconnected in {recovered:.2f} s, everything stored in {all_stored:.2f} s; "
        f"published {sent} ({len(during)} while frozen), stored {total}"
    )
    assert_detected(detection, health)
    assert total == sent
    assert hub.mqtt is not None and hub.mqtt.silences >= 1


def test_silently_dropping_network_is_detected_within_1_5_keepalives_and_nothing_is_lost(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1: InfluxDB1,
    run_hub: Callable[[dict[str, Any]], Hub],
    fault_proxy: Callable[[str, int], FaultProxy],
) -> None:
    """The hub reaches the broker through the fault proxy; devices reach it directly."""
    proxy = fault_proxy(mosquitto.host, mosquitto.port)
    db = database(influxdb_v1, "blackhole")
    hub = run_hub(
        hub_config(tmp_path, f"mqtt://{proxy.url_netloc}", influx=influxdb_v1, db=db, keepalive=KEEPALIVE)
    )
    publisher = Publisher(mosquitto)
    sent = publisher.burst(things=10, per_thing=10)
    wait_for(lambda: stored(influxdb_v1, db) >= sent, 20, f"{sent} points before the blackhole")

    proxy.blackhole()
    # The broker still takes readings (and acknowledges them to the devices) and sends them into the void.
    sent += publisher.burst(things=10, per_thing=10, offset=1000)
    detection, health = detect_silence(hub, KEEPALIVE)
    time.sleep(KEEPALIVE)  # a few reconnects into the blackhole
    proxy.passthrough()
    healed = time.monotonic()
    recovered = seconds_until(lambda: connected(hub), 20, "the hub to reconnect once the network heals")
    wait_for(lambda: stored(influxdb_v1, db) >= sent, 30, f"all {sent} points after the network healed")
    all_stored = time.monotonic() - healed
    publisher.close()
    time.sleep(0.5)
    total = stored(influxdb_v1, db)
    print(
        f"\nblackhole between hub and broker, keepalive {KEEPALIVE} s: detected in {detection:.2f} s "
        f"(limit {DETECT_WITHIN_KEEPALIVES * KEEPALIVE:.1f} s); healed: reconnected in {recovered:.2f} s, "
        f"everything stored in {all_stored:.2f} s; published {sent} (100 into the blackhole), "
        f"stored {total}; proxy dropped {proxy.stats.dropped_bytes} bytes"
    )
    assert_detected(detection, health)
    assert total == sent
    assert proxy.stats.dropped_bytes > 0


def test_without_a_fault_the_watchdog_stays_quiet(
    tmp_path: Path, mosquitto: Mosquitto, run_hub: Callable[[dict[str, Any]], Hub]
) -> None:
    """An idle but healthy connection answers paho's PINGREQs in time: no false alarms over 2 keepalives
    (the watchdog fires after 1.25)."""
    hub = run_hub(hub_config(tmp_path, mosquitto.url, keepalive=KEEPALIVE))
    time.sleep(2 * KEEPALIVE)
    assert hub.mqtt is not None
    assert hub.mqtt.silences == 0 and hub.mqtt.connects == 1 and connected(hub)
