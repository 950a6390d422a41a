"""`hub run` end to end against the real Mosquitto, InfluxDB 1.x and VictoriaMetrics.

Each test publishes real MQTT messages and reads what was stored back from the server.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from hubprocess import HubProcess
from paho.mqtt.enums import CallbackAPIVersion
from services import InfluxDB1, Mosquitto, VictoriaMetrics
from waiting import wait_for

from hub.app import Hub
from hub.config import HubConfig, parse_config

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0  # device time of the first reading: distinct, sane timestamps per message


def publisher(broker: Mosquitto) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv311
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def publish_readings(broker: Mosquitto, things: int, per_thing: int, qos: int = 1, offset: int = 0) -> None:
    client = publisher(broker)
    infos = []
    for i in range(per_thing):
        for t in range(things):
            payload = {"temperature": 20 + t + i / 100, "humidity": 50.0, "time": T0 + offset + i}
            infos.append(
                client.publish(f"neighborhood/things/thing-{t:02d}/state", json.dumps(payload), qos=qos)
            )
    for info in infos:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


def influx_count(server: InfluxDB1, db: str) -> int:
    try:
        rows = server.rows(db, 'SELECT count("temperature") FROM "reading"')
    except AssertionError:  # database not created yet
        return 0
    return int(rows[0]["count"]) if rows else 0


def v1_config(tmp_path: Path, broker: Mosquitto, influx: InfluxDB1, db: str, **extra: str) -> Path:
    text = f"""\
mqtt:
  url: {broker.url}
  client_id: hub-{db}
timeseries:
  kind: influxdb-v1
  url: {influx.url}
  database: {db}
  flush_interval: {extra.get("flush_interval", "0.2")}
storage:
  path: {tmp_path / "data"}
web:
  listen: 127.0.0.1:{extra.get("web_port", "0")}
  enabled: {extra.get("web", "false")}
"""
    path = tmp_path / "hub.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def hub_process() -> Iterator[Callable[[Path], HubProcess]]:
    started: list[HubProcess] = []

    def start(config: Path) -> HubProcess:
        hub = HubProcess(config)
        hub.start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        if hub.proc is not None and hub.proc.poll() is None:
            hub.stop(signal.SIGKILL)


def wait_hub_online(broker: Mosquitto, timeout: float = 20) -> None:
    """The hub's retained status says online (it has connected and subscribed)."""
    seen = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        if message.payload == b"online":
            seen.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe("neighborhood/hub/status", 1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert seen.wait(timeout), "hub never published online on neighborhood/hub/status"
    finally:
        client.disconnect()
        client.loop_stop()
    time.sleep(0.3)  # the subscription follows the status publish in the same connect callback


def retained(broker: Mosquitto, topic: str, timeout: float = 5) -> bytes | None:
    """The retained payload of a topic, or None."""
    got: list[bytes] = []
    arrived = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        got.append(message.payload)
        arrived.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, 1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    arrived.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None


def test_hub_run_stores_2000_of_2000_qos1_readings_from_50_things(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1, hub_process: Callable[[Path], HubProcess]
) -> None:
    db = f"e2e_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = hub_process(v1_config(tmp_path, mosquitto, influxdb_v1, db))
    wait_hub_online(mosquitto)

    publish_readings(mosquitto, things=50, per_thing=40)
    wait_for(lambda: influx_count(influxdb_v1, db) >= 2000, 30, "2,000 points in InfluxDB")
    time.sleep(0.5)
    assert influx_count(influxdb_v1, db) == 2000

    per_thing = influxdb_v1.rows(db, 'SELECT count("temperature") FROM "reading" GROUP BY "thing", "source"')
    assert len(per_thing) == 50
    assert {row["count"] for row in per_thing} == {40}
    assert {row["source"] for row in per_thing} == {"native"}
    [first] = influxdb_v1.rows(
        db, 'SELECT * FROM "reading" WHERE "thing" = \'thing-07\' ORDER BY time LIMIT 1'
    )
    assert first["time"] == int(T0 * 1e9)  # the device's own timestamp
    assert first["temperature"] == pytest.approx(27.0)
    assert first["humidity"] == 50.0

    assert hub.stop() == 0
    assert "Traceback" not in hub.stderr


def test_qos1_messages_are_acknowledged_only_after_storage(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1, hub_process: Callable[[Path], HubProcess]
) -> None:
    """Killed while holding unstored readings, the hub loses nothing: the broker redelivers them."""
    db = f"ack_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    slow = hub_process(v1_config(tmp_path, mosquitto, influxdb_v1, db, flush_interval="10"))
    wait_hub_online(mosquitto)
    publish_readings(mosquitto, things=5, per_thing=20)  # 100 messages: below the early-flush threshold
    time.sleep(1.5)  # received and waiting for their batch
    assert influx_count(influxdb_v1, db) == 0
    slow.stop(signal.SIGKILL)
    assert retained(mosquitto, "neighborhood/hub/status") == b"offline"  # the broker sent the hub's will

    hub_process(v1_config(tmp_path, mosquitto, influxdb_v1, db))
    wait_for(lambda: influx_count(influxdb_v1, db) >= 100, 30, "100 redelivered points")
    time.sleep(0.5)
    assert influx_count(influxdb_v1, db) == 100


def test_messages_published_while_the_hub_is_down_arrive_when_it_returns(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1, hub_process: Callable[[Path], HubProcess]
) -> None:
    db = f"session_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    config = v1_config(tmp_path, mosquitto, influxdb_v1, db)
    first = hub_process(config)
    wait_hub_online(mosquitto)
    assert first.stop() == 0

    publish_readings(mosquitto, things=10, per_thing=30)  # the broker queues them in the hub's session
    hub_process(config)
    wait_for(lambda: influx_count(influxdb_v1, db) >= 300, 30, "300 points queued by the broker")
    time.sleep(0.5)
    assert influx_count(influxdb_v1, db) == 300


def test_influxdb_outage_spools_then_replays_everything(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1_factory: Callable[..., InfluxDB1]
) -> None:
    influx = influxdb_v1_factory()
    db = "outage"
    influx.create_database(db)
    config = parse_config(v1_config(tmp_path, mosquitto, influx, db).read_text())
    hub = Hub(config, env={})
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
        publish_readings(mosquitto, things=10, per_thing=10)
        wait_for(lambda: influx_count(influx, db) >= 100, 20, "the first 100 points")

        influx.stop()
        publish_readings(mosquitto, things=10, per_thing=50, offset=1000)
        wait_for(lambda: hub.telemetry.value("hub_points_spooled_total") >= 500, 30, "500 spooled points")
        assert hub.health()["timeseries"]["status"] == "degraded"
        assert hub.spool is not None and hub.spool.points == 500

        influx.start()
        wait_for(lambda: influx_count(influx, db) >= 600, 60, "the spool replayed")
        time.sleep(0.5)
        assert influx_count(influx, db) == 600
        assert hub.spool.points == 0
        assert hub.health()["timeseries"]["status"] == "ok"
    finally:
        hub.stop()


def test_influxdb_down_at_start_up_gives_one_clear_message_and_recovers(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1_factory: Callable[..., InfluxDB1],
    hub_process: Callable[[Path], HubProcess],
) -> None:
    influx = influxdb_v1_factory()
    influx.create_database("late")
    influx.stop()
    hub = hub_process(v1_config(tmp_path, mosquitto, influx, "late"))
    wait_hub_online(mosquitto)
    publish_readings(mosquitto, things=4, per_thing=25)
    time.sleep(1.0)
    influx.start()
    wait_for(lambda: influx_count(influx, "late") >= 100, 60, "spooled points after InfluxDB came up")
    assert hub.stop() == 0
    assert "Traceback" not in hub.stderr
    assert f"{influx.host}:{influx.port}" in hub.stderr or influx.url in hub.stderr


def test_unreachable_broker_at_start_up_is_retried_without_traceback(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Mosquitto],
    influxdb_v1: InfluxDB1,
    hub_process: Callable[[Path], HubProcess],
) -> None:
    broker = mosquitto_factory()
    broker.stop()
    db = f"late_broker_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = hub_process(v1_config(tmp_path, broker, influxdb_v1, db))
    wait_for(lambda: "is unreachable" in hub.output(), 60, "the hub to report the broker unreachable")
    time.sleep(2)  # a retry or two more, which must not be logged again
    broker.start()
    wait_hub_online(broker, timeout=40)
    publish_readings(broker, things=2, per_thing=5)
    wait_for(lambda: influx_count(influxdb_v1, db) >= 10, 20, "points after the broker came up")
    assert hub.stop() == 0
    assert hub.stderr.count("is unreachable") == 1, hub.stderr
    assert "Traceback" not in hub.stderr


def test_retained_poison_message_causes_no_crash_loop(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1
) -> None:
    db = f"poison_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    client = publisher(mosquitto)
    for topic, payload in [
        ("neighborhood/things/bad-1/state", b"\xff\xfe not utf-8"),
        ("neighborhood/things/bad-2/state", b'{"temperature": NaN}'),
        ("neighborhood/things/bad-3/state", b"[1,2,3]"),
        ("neighborhood/things/bad-4/state", b"{" * 70_000),  # past the 64 KiB configured below
        ("neighborhood/things/good/state", json.dumps({"temperature": 21.5, "time": T0}).encode()),
    ]:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()

    config = parse_config(v1_config(tmp_path, mosquitto, influxdb_v1, db).read_text())
    small = config.ingest.model_copy(update={"max_payload_bytes": 65536})
    config = config.model_copy(update={"ingest": small})
    for restart in range(2):
        hub = Hub(
            config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"client_id": f"p{restart}"})}),
            env={},
        )
        hub.start()
        try:
            wait_for(
                lambda hub=hub: hub.telemetry.value("hub_messages_received_total") >= 5,
                20,
                "retained messages",
            )
            wait_for(
                lambda hub=hub: hub.telemetry.value("hub_points_stored_total") >= 1, 20, "the good reading"
            )
            reasons = {
                r: hub.telemetry.value("hub_rejections_total", source="native", reason=r)
                for r in ("not_utf8", "bad_number", "not_object", "too_large")
            }
            assert reasons == {"not_utf8": 1, "bad_number": 1, "not_object": 1, "too_large": 1}
            assert hub.health()["mqtt"]["status"] == "ok"
        finally:
            hub.stop()
    assert influx_count(influxdb_v1, db) == 1  # the same retained reading twice overwrites itself


def test_influxdb_v2_write_api_through_victoria_metrics(
    tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics
) -> None:
    marker = f"vm-{uuid.uuid4().hex[:6]}"
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": marker},
            "timeseries": {
                "kind": "influxdb-v2",
                "url": victoria_metrics.url,
                "org": "neighborhood",
                "bucket": "hub",
                "flush_interval": 0.2,
            },
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
        }
    )
    hub = Hub(config, env={"HUB_TIMESERIES_TOKEN": "unused-by-victoria-metrics"})
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
        assert hub.mqtt.protocol_name == "5"  # Mosquitto 2 speaks MQTT 5
        client = publisher(mosquitto)
        for i in range(20):
            payload = {"pm25": 10.0 + i, "water_leak": i % 2 == 0, "time": T0 + i}
            client.publish(
                f"neighborhood/things/{marker}/state", json.dumps(payload), qos=1
            ).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: hub.telemetry.value("hub_points_stored_total") >= 20, 20, "20 points written")
        victoria_metrics.flush()
        series = victoria_metrics.export(f'{{__name__=~"reading_.*",thing="{marker}"}}')
        by_name = {s["metric"]["__name__"]: s for s in series}
        assert set(by_name) == {"reading_pm25", "reading_water_leak"}
        assert by_name["reading_pm25"]["metric"]["source"] == "native"
        assert by_name["reading_pm25"]["values"] == [10.0 + i for i in range(20)]
        assert by_name["reading_pm25"]["timestamps"] == [int((T0 + i) * 1000) for i in range(20)]
        assert by_name["reading_water_leak"]["values"] == [1.0 if i % 2 == 0 else 0.0 for i in range(20)]
    finally:
        hub.stop()


def test_store_on_postgresql_registers_things_latest_values_and_scans(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    from hub.storage.store import Store

    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": "hub-pg"},
            "timeseries": {"kind": "embedded", "flush_interval": 0.2},
            "storage": {"path": str(tmp_path / "data"), "url": postgres_url},
            "web": {"enabled": False},
        }
    )
    hub = Hub(config, env={})
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
        client = publisher(mosquitto)
        for topic, payload in [
            ("neighborhood/things/flood-1/availability", "online"),
            (
                "neighborhood/things/flood-1/state",
                json.dumps({"water_leak": False, "battery": 90, "time": T0}),
            ),
            (
                "neighborhood/things/flood-1/state",
                json.dumps({"water_leak": True, "battery": 89, "time": T0 + 60}),
            ),
            ("neighborhood/readers/shed/scan", json.dumps({"tag": "01000734e0", "time": T0 + 61})),
        ]:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: hub.telemetry.value("hub_scans_total") >= 1, 10, "the scan")
    finally:
        hub.stop()

    store = Store(postgres_url)
    try:
        thing = store.thing("flood-1")
        assert thing is not None
        assert thing.values == {"water_leak": True, "battery": 89.0}
        assert thing.times["battery"] == T0 + 60
        assert thing.online is True
        [scan] = store.recent_scans(reader="shed")
        assert (scan.tag, scan.time) == ("01000734E0", T0 + 61)
    finally:
        store.close()

    again = Hub(config, env={})  # a restarted hub knows its things before any message arrives
    try:
        again.store.migrate()
        again.live.load(again.store.load_things())
        state = again.live.get("flood-1")
        assert state is not None and state.values["water_leak"] is True
    finally:
        again.stop()


def test_broker_restart_reconnects_and_resubscribes(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_v1: InfluxDB1
) -> None:
    db = f"restart_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = Hub(parse_config(v1_config(tmp_path, mosquitto, influxdb_v1, db).read_text()), env={})
    hub.start()
    try:
        assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
        publish_readings(mosquitto, things=5, per_thing=4)
        wait_for(lambda: influx_count(influxdb_v1, db) >= 20, 20, "points before the restart")

        mosquitto.kill()  # no clean shutdown: the hub must notice by itself
        wait_for(lambda: not hub.mqtt.connected.is_set(), 10, "the hub to notice")
        assert hub.health()["mqtt"]["status"] == "down"
        mosquitto.start()
        wait_for(hub.mqtt.connected.is_set, 30, "the hub to reconnect")
        publish_readings(mosquitto, things=5, per_thing=4, offset=100)
        wait_for(lambda: influx_count(influxdb_v1, db) >= 40, 20, "points after the restart")
        assert hub.mqtt.connects == 2
    finally:
        hub.stop()


def test_a_clean_stop_acknowledges_what_it_stored_so_nothing_is_delivered_twice(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """Readings without a device time get the arrival time: a redelivery would store them twice."""
    config = HubConfig.model_validate(
        {
            "mqtt": {"url": mosquitto.url, "client_id": "hub-clean-stop"},
            "timeseries": {"kind": "embedded", "flush_interval": 5},  # acks wait for the batch
            "storage": {"path": str(tmp_path / "data")},
            "web": {"enabled": False},
        }
    )
    hub = Hub(config, env={})
    hub.start()
    assert hub.mqtt is not None and hub.mqtt.wait_connected(10)
    client = publisher(mosquitto)
    for i in range(50):
        client.publish(
            "neighborhood/things/no-clock/state", json.dumps({"noise": 40 + i}), qos=1
        ).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    wait_for(lambda: hub.telemetry.value("hub_messages_received_total") >= 50, 10, "50 messages received")
    assert hub.telemetry.value("hub_points_stored_total") == 0  # still waiting for their batch
    hub.stop()

    again = Hub(config, env={})
    again.start()
    try:
        assert again.mqtt is not None and again.mqtt.wait_connected(10)
        time.sleep(2)
        assert again.telemetry.value("hub_messages_received_total") == 0
        assert again.sink.count("no-clock") == 50  # type: ignore[union-attr]
    finally:
        again.stop()
