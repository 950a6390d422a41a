"""Two `hub run --role ingest` workers behind a Mosquitto shared subscription and one `--role state`,
on PostgreSQL and InfluxDB 1.x: nothing lost, nothing stored twice, alerts and availability as one process
would have them, and a worker killed (SIGKILL) mid-run and started again loses nothing either.

Mosquitto (2.0) keeps giving a killed worker's persistent session its share of the messages while it is
gone, and redelivers its unacknowledged ones only to it: the test restarts it, as systemd would, and
checks that its share arrives then (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from hubprocess import HubProcess
from paho.mqtt.enums import CallbackAPIVersion
from services import InfluxDB1, Mosquitto, free_port
from waiting import wait_for

from hub.config import parse_config
from hub.domain.alert_rules import rule_from_dict
from hub.domain.alerts import AlertEngine
from hub.domain.model import Thing
from hub.mqtt.client import BrokerAddress, Inbound, MqttConnection
from hub.storage.alertstore import AlertStore
from hub.storage.directory import Directory
from hub.storage.store import Store

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0
SENSORS = [f"s-{i:02d}" for i in range(30)]
ALERTING = [f"a-{i}" for i in range(4)]
PM25_HIGH = {"kind": "threshold", "id": "pm25-high", "measurement": "pm25", "above": 50, "clear_below": 40}
OFFLINE = {"kind": "offline", "id": "offline", "debounce_s": 0}
#: per alert thing and round: above 50 opens, between 40 and 50 holds (hysteresis), below 40 clears
PM25_ROUND = [10.0, 60.0, 45.0, 55.0, 44.0, 30.0, 70.0, 48.0, 20.0]


class Watcher:
    """Follows the hub's status topics and counts what the workers forward, per worker."""

    def __init__(self, broker: Mosquitto) -> None:
        self.status: dict[str, bytes] = {}
        self.entries: Counter[str] = Counter()
        self.keys: Counter[tuple[str, int]] = Counter()
        self.retained: Counter[str] = Counter()  # thing → entries of retained copies
        self.lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
        )
        self.client.on_message = self._message
        self.client.on_connect = lambda c, *_: c.subscribe(
            [("neighborhood/hub/#", 1), ("neighborhood/internal/events/+", 1)]
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        with self.lock:
            if message.topic.startswith("neighborhood/internal/events/"):
                worker = message.topic.rsplit("/", 1)[1]
                for entry in json.loads(message.payload)["entries"]:
                    self.entries[worker] += 1
                    if entry["key"]:
                        self.keys[(entry["key"], entry["stamp"])] += 1
                    if entry["retained"]:
                        self.retained[entry["events"][0].get("thing", "")] += 1
            else:
                self.status[message.topic] = message.payload

    def wait_online(self, topic: str, process: HubProcess, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.status.get(topic) != b"online":
            assert time.monotonic() < deadline, (
                f"{topic} never said online; its log:\n{process.output()[-3000:]}"
            )
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher(broker: Mosquitto) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def metric(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@pytest.fixture
def processes() -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    yield started
    for process in started:
        if process.running:
            process.stop(signal.SIGKILL)


def prepare_store(url: str) -> None:
    """Migrated, with every test thing registered (the alert engine evaluates registered things)."""
    store = Store.open(url)
    store.migrate()
    directory = Directory(store)
    now = time.time()
    for thing in [*SENSORS, *ALERTING, "av-0", "av-1"]:
        directory.create_thing(Thing(id=thing, name=thing), owner=None, actor=None, now=now)
    store.close()


def expected_transitions(values: list[float]) -> list[str]:
    """What one hub process makes of the values: the pure engine, fed in order."""
    engine = AlertEngine([rule_from_dict(PM25_HIGH)], now=T0)
    engine.add_thing(Thing(id="a", name="a"), T0)
    return [t.kind for i, v in enumerate(values) for t in engine.on_reading("a", {"pm25": v}, T0 + i)]


def test_two_ingest_workers_and_a_state_process_lose_nothing_store_nothing_twice_and_alert_once(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1: InfluxDB1,
    postgres_url: str,
    processes: list[HubProcess],
) -> None:
    began = time.monotonic()
    db = f"scale_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    prepare_store(postgres_url)
    web_port = free_port()
    config = tmp_path / "hub.yaml"
    config.write_text(
        f"""\
mqtt:
  url: {mosquitto.url}
  client_id: hub-{db}
timeseries:
  kind: influxdb-v1
  url: {influxdb_v1.url}
  database: {db}
  flush_interval: 0.2
storage:
  path: {tmp_path / "data"}
  url: {postgres_url}
web:
  listen: 127.0.0.1:{web_port}
homeassistant_discovery:
  enabled: false
alerts:
  defaults: false
  rules:
    - {json.dumps(PM25_HIGH)}
    - {json.dumps(OFFLINE)}
scale_out:
  share_group: g-{db}
  reorder_window_s: 0.5
"""
    )
    parse_config(config.read_text())  # the test's own config must be valid before anything starts
    watcher = Watcher(mosquitto)
    # a retained reading from before the hub: each worker's first subscription replays it
    seed = publisher(mosquitto)
    seed.publish("neighborhood/things/r-0/state", '{"pm25": 12.5}', qos=1, retain=True).wait_for_publish(5)
    state = HubProcess(config, "--role", "state").start()
    workers = {
        name: HubProcess(config, "--role", "ingest", "--worker", name).start() for name in ("w1", "w2")
    }
    processes.extend([state, *workers.values()])
    watcher.wait_online("neighborhood/hub/status", state)
    for name, worker in workers.items():
        watcher.wait_online(f"neighborhood/hub/workers/{name}/status", worker)
    started = time.monotonic() - began

    client = publisher(mosquitto)
    infos: list[paho.MQTTMessageInfo] = []
    published: dict[str, list[float]] = {thing: [] for thing in SENSORS}
    seq = 0

    def sensors(count: int, per_second: float) -> None:
        nonlocal seq
        for _ in range(count):
            thing = SENSORS[seq % len(SENSORS)]
            payload = {"energy": float(seq), "temperature": 20.0 + seq % 7}
            infos.append(client.publish(f"neighborhood/things/{thing}/state", json.dumps(payload), qos=1))
            published[thing].append(float(seq))
            seq += 1
            if seq % 50 == 0:
                time.sleep(50 / per_second)

    def alert_round(first: int) -> None:
        """The hysteresis sequence on every alert thing, 0.25 s between a thing's readings, device-timed."""
        for i, value in enumerate(PM25_ROUND):
            for thing in ALERTING:
                payload = {"pm25": value, "time": T0 + first + i}
                infos.append(client.publish(f"neighborhood/things/{thing}/state", json.dumps(payload), qos=1))
            time.sleep(0.25)

    # A: both workers up; availability goes away for two things; a first alert round
    for thing in ("av-0", "av-1"):
        client.publish(f"neighborhood/things/{thing}/availability", "online", qos=1, retain=True)
    sensors(300, 1000)
    alert_round(0)
    for thing in ("av-0", "av-1"):
        infos.append(
            client.publish(f"neighborhood/things/{thing}/availability", "offline", qos=1, retain=True)
        )

    # B: a steady load; worker w1 is killed mid-way and started again 1.5 s later
    killer_done = threading.Event()

    def kill_and_restart() -> None:
        time.sleep(1.0)
        workers["w1"].stop(signal.SIGKILL)
        time.sleep(1.5)
        workers["w1"].start()
        killer_done.set()

    killer = threading.Thread(target=kill_and_restart)
    killer.start()
    sensors(2400, 600)
    killer.join()
    watcher.wait_online("neighborhood/hub/workers/w1/status", workers["w1"])

    # C: a second alert round, one thing back online, and a last reading per sensor
    alert_round(100)
    infos.append(client.publish("neighborhood/things/av-0/availability", "online", qos=1, retain=True))
    finals = {}
    for i, thing in enumerate(SENSORS):
        finals[thing] = 1000.0 + i
        payload = {"energy": float(seq), "temperature": finals[thing]}
        infos.append(client.publish(f"neighborhood/things/{thing}/state", json.dumps(payload), qos=1))
        published[thing].append(float(seq))
        seq += 1
    for info in infos:
        info.wait_for_publish(30)
    published_at = time.monotonic() - began

    total = seq + len(ALERTING) * len(PM25_ROUND) * 2

    def stored() -> int:
        rows = influxdb_v1.rows(db, 'SELECT count("energy") FROM "reading"')
        pm = influxdb_v1.rows(db, 'SELECT count("pm25") FROM "reading"')
        return (int(rows[0]["count"]) if rows else 0) + (int(pm[0]["count"]) if pm else 0)

    wait_for(lambda: stored() >= total, 30, f"{total} points in InfluxDB")
    time.sleep(0.5)

    # no loss, no duplicates: every sensor's stored energy values are exactly the published ones
    for thing in SENSORS:
        rows = influxdb_v1.rows(db, f'SELECT "energy" FROM "reading" WHERE "thing" = \'{thing}\'')
        assert sorted(row["energy"] for row in rows) == published[thing], thing
    assert stored() == total

    store = Store.open(postgres_url)
    alerts = AlertStore(store)
    expected = expected_transitions(PM25_ROUND) * 2
    assert expected.count("opened") == 4 and expected.count("cleared") == 4  # the oracle itself

    def settled() -> bool:
        things = [*ALERTING, "av-0"]
        cleared = [a for thing in things for a in alerts.alerts(thing=thing) if a.state == "cleared"]
        back = store.thing("av-0")
        return len(cleared) == 4 * len(ALERTING) + 1 and back is not None and back.online is True

    with contextlib.suppress(AssertionError):  # if not, the assertions below say what is wrong
        wait_for(settled, 15, "the second alert round cleared and av-0 back online")

    # alerts: what one process makes of the same readings, each transition once
    for thing in ALERTING:
        history = sorted(
            (event.time, event.id, event.action)
            for alert in alerts.alerts(thing=thing)
            for event in alerts.history(alert.id)
        )
        assert [action for _, _, action in history] == expected, thing
    # availability: av-0 went offline and came back, av-1 stayed away; one offline alert each
    assert store.thing("av-1").online is False
    av0 = [e.action for a in alerts.alerts(thing="av-0") for e in alerts.history(a.id)]
    av1 = [(a.state, [e.action for e in alerts.history(a.id)]) for a in alerts.alerts(thing="av-1")]
    assert sorted(av0) == ["cleared", "opened"]
    assert av1 == [("active", ["opened"])]
    # latest values: the last reading of every sensor, newer wins across workers
    for thing in SENSORS:
        assert store.thing(thing).values["temperature"] == finals[thing], thing
    # the retained reading: replayed to both workers, applied by the state, not a point (not measured now)
    with watcher.lock:
        assert watcher.retained == {"r-0": 2}
    assert store.thing("r-0").values == {"pm25": 12.5}
    assert influxdb_v1.rows(db, 'SELECT * FROM "reading" WHERE "thing" = \'r-0\'') == []
    store.close()

    state_url = f"http://127.0.0.1:{web_port}"
    duplicates = metric(state_url, "hub_state_duplicates_total")
    late = metric(state_url, "hub_scaleout_late_events_total")
    applied = metric(state_url, "hub_state_entries_total")
    with watcher.lock:
        shares = dict(watcher.entries)
        forwarded_twice = sum(1 for n in watcher.keys.values() if n > 1)
    watcher.close()
    for paho_client in (client, seed):
        paho_client.disconnect()
        paho_client.loop_stop()
    print(
        f"\nscale-out: published {total} readings (+4 availability), stored {stored()}, duplicates 0; "
        f"forwarded entries per worker {shares}; entries forwarded twice {forwarded_twice}, "
        f"dropped by the state as duplicates {duplicates:.0f}; late events {late:.0f}; "
        f"applied {applied:.0f}; processes up in {started:.1f} s, published by {published_at:.1f} s, "
        f"test {time.monotonic() - began:.1f} s"
    )
    assert set(shares) == {"w1", "w2"} and min(shares.values()) > total // 5  # both took a real share
    # every entry a worker forwarded reached the state process: applied once, or dropped as a copy
    assert applied + duplicates == sum(shares.values())
    assert duplicates >= 1  # at least the second worker's copy of the retained reading
    for process in processes:
        assert process.stop() == 0, process.output()[-3000:]


def test_shared_filters_split_the_messages_and_inventories_reach_every_worker_once(
    mosquitto: Mosquitto,
) -> None:
    """Two connections in one share group: ``homie/#`` (shared) overlaps ``homie/+/$state`` (an
    inventory, not shared). Each value reaches exactly one of them; the retained and the live ``$state``
    reach both, once each, through the inventory's subscription (listed last on purpose: the connection
    orders the subscription identifiers itself)."""
    seed = publisher(mosquitto)
    seed.publish("homie/dev/$state", "ready", qos=1, retain=True).wait_for_publish(5)
    got: dict[str, list[Inbound]] = {"w1": [], "w2": []}
    lock = threading.Lock()
    connections = []
    for name in got:

        def deliver(message: Inbound, name: str = name) -> None:
            with lock:
                got[name].append(message)
            if message.token is not None:
                connections[list(got).index(name)].ack(message.token)

        connection = MqttConnection(
            BrokerAddress(mosquitto.host, mosquitto.port),
            client_id=f"share-{name}",
            subscriptions=[("homie/#", 1, False), ("homie/+/$state", 1, True)],
            deliver=deliver,
            share_group="g",
        )
        connections.append(connection)
        connection.start()
        assert connection.wait_connected(10), f"no connection to Mosquitto at {mosquitto.url}"
    time.sleep(0.5)
    infos = [seed.publish("homie/dev/node/temperature", str(i), qos=1) for i in range(40)]
    infos.append(seed.publish("homie/dev/$state", "lost", qos=1))
    for info in infos:
        info.wait_for_publish(5)
    with contextlib.suppress(AssertionError):  # if not, the assertions below say what is wrong
        wait_for(lambda: sum(len(v) for v in got.values()) >= 40 + 4, 10, "every message")
    time.sleep(0.3)  # an extra copy would come right behind
    for connection in connections:
        connection.stop()
    seed.disconnect()
    seed.loop_stop()
    values = {name: [m.payload for m in got[name] if m.topic.endswith("temperature")] for name in got}
    states = {name: [m.payload for m in got[name] if m.topic.endswith("$state")] for name in got}
    assert sorted(values["w1"] + values["w2"], key=int) == [str(i).encode() for i in range(40)]
    assert values["w1"] and values["w2"]  # both took a share
    assert states == {"w1": [b"ready", b"lost"], "w2": [b"ready", b"lost"]}


def test_roles_refuse_a_store_or_series_only_one_process_can_use_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    config = tmp_path / "hub.yaml"
    config.write_text(f"storage:\n  path: {tmp_path / 'data'}\n")
    assert main(["run", "--config", str(config), "--role", "ingest", "--worker", "1"]) == 1
    assert "key storage.url: --role ingest needs the PostgreSQL store" in capsys.readouterr().err
    config.write_text(f"storage:\n  url: postgresql+psycopg://hub@127.0.0.1/hub\n  path: {tmp_path}\n")
    assert main(["run", "--config", str(config), "--role", "state"]) == 1
    assert "key timeseries.kind: --role state needs a time-series server" in capsys.readouterr().err
    config.write_text(
        "storage:\n  url: postgresql+psycopg://hub@127.0.0.1/hub\n"
        "timeseries:\n  kind: influxdb-v1\n  url: http://127.0.0.1:8086\n"
    )
    assert main(["run", "--config", str(config), "--role", "ingest"]) == 1
    assert "--role ingest needs --worker NAME" in capsys.readouterr().err
