"""Seven devices from seven ecosystems through a real Mosquitto into ``hub run`` and InfluxDB 1.x.

Tasmota, Zigbee2MQTT, ESPHome, Shelly Gen2, Homie 4, Home Assistant discovery and The Things Stack
each publish what the real firmware publishes (the shared fixtures, with current timestamps), in the
order and with the retain flags the firmware uses. Each device must appear as a thing of its ecosystem
in the store, and its readings must be points of measurement ``reading`` tagged with the thing and
``source`` = the ecosystem, holding the canonical values (DESIGN §5 Time series).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from services import InfluxDB1, Mosquitto
from waiting import wait_for

from hub.storage.store import Store

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "payloads"
SOURCES = ("tasmota", "zigbee2mqtt", "esphome", "shelly", "homie", "homeassistant", "ttn")


def fixture(file: str, index: int) -> Any:
    return json.loads((FIXTURES / file).read_text(encoding="utf-8"))[index]["payload"]


def iso(ts: float, z: bool = True) -> str:
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z" if z else "")


def messages(t: float) -> list[tuple[str, Any, bool]]:
    """(topic, payload, retain) in the order the devices publish them; ``t`` is the devices' clock."""
    tasmota_sensor = json.loads(fixture("tasmota.json", 0))  # BME280
    tasmota_sensor["Time"] = iso(t, z=False)
    ttn = json.loads(fixture("ttn.json", 0))
    ttn["end_device_ids"]["device_id"] = "six-node"
    ttn["received_at"] = ttn["uplink_message"]["received_at"] = iso(t).replace("Z", ".014773143Z")
    z2m_devices = [
        {
            "ieee_address": "0x00158d00018255df",
            "type": "Router",
            "friendly_name": "six_plug",
            "supported": True,
            "definition": {
                "model": "ZNCZ02LM",
                "vendor": "Xiaomi",
                "description": "Mi power plug ZigBee",
                "exposes": [
                    {"type": "switch", "features": [{"type": "binary", "name": "state", "property": "state",
                                                     "value_on": "ON", "value_off": "OFF"}]},
                    {"type": "numeric", "name": "power", "property": "power", "unit": "W"},
                    {"type": "numeric", "name": "energy", "property": "energy", "unit": "kWh"},
                    {"type": "numeric", "name": "voltage", "property": "voltage", "unit": "V"},
                ],
            },
            "power_source": "Mains (single phase)",
            "interview_completed": True,
        }
    ]  # fmt: skip
    esphome_config = json.loads(fixture("esphome.json", 8))  # livingroom temperature, abbreviated keys
    assert esphome_config["stat_t"] == "livingroom/sensor/living_room_temperature/state"
    shelly = "shellyplus1pm-a8032abe2f18"
    shelly_full = {
        "src": shelly,
        "dst": f"{shelly}/events",
        "method": "NotifyFullStatus",
        "params": {
            "ts": t,
            "sys": {"mac": "A8032ABE2F18", "unixtime": int(t)},
            "switch:0": {"id": 0, "source": "init", "output": False, "apower": 0.0, "voltage": 240.873,
                         "current": 0.0, "aenergy": {"total": 1500.0, "by_minute": [0, 0, 0]},
                         "temperature": {"tC": 46.2, "tF": 115.1}},
        },
    }  # fmt: skip
    shelly_delta = json.loads(fixture("shelly.json", 0))  # a NotifyStatus of switch:0's aenergy
    shelly_delta["params"]["ts"] = t + 5
    shelly_delta["params"]["switch:0"]["apower"] = 42.5
    shelly_delta["params"]["switch:0"]["aenergy"]["total"] = 1512.0  # Wh
    ha_config = {
        "name": "Garden temperature",
        "stat_t": "garden/weather/state",
        "dev_cla": "temperature",
        "unit_of_meas": "°F",
        "val_tpl": "{{ value_json.temperature }}",
        "uniq_id": "garden_temp_six",
        "avty_t": "garden/weather/availability",
        "dev": {"ids": ["garden-six"], "name": "Garden weather", "mf": "Acme", "mdl": "W-1"},
    }
    homie = "homie/six-weather"
    return [
        # Tasmota: LWT retained, then telemetry
        ("tele/six-tasmota/LWT", "Online", True),
        ("tele/six-tasmota/SENSOR", tasmota_sensor, False),
        # Zigbee2MQTT: the retained inventory, then the device's state
        ("zigbee2mqtt/bridge/state", {"state": "online"}, True),
        ("zigbee2mqtt/bridge/devices", z2m_devices, True),
        (
            "zigbee2mqtt/six_plug",
            {
                "state": "ON",
                "power": 3,
                "energy": 8.42,
                "voltage": 241,
                "linkquality": 48,
                "last_seen": iso(t),
            },
            False,
        ),
        # ESPHome: retained status and discovery config, retained state (ESPHome's default)
        ("livingroom/status", "online", True),
        ("homeassistant/sensor/livingroom/living_room_temperature/config", esphome_config, True),
        ("livingroom/sensor/living_room_temperature/state", "21.4", True),
        # Shelly Gen2: online, a full status at wake-up, then a delta
        (f"{shelly}/online", "true", True),
        (f"{shelly}/events/rpc", shelly_full, False),
        (f"{shelly}/events/rpc", shelly_delta, False),
        # Homie 4: retained attributes, then values
        (f"{homie}/$homie", "4.0", True),
        (f"{homie}/$name", "Six weather", True),
        (f"{homie}/$state", "init", True),
        (f"{homie}/$nodes", "air", True),
        (f"{homie}/air/$name", "Air", True),
        (f"{homie}/air/$properties", "temperature,humidity", True),
        (f"{homie}/air/temperature/$datatype", "float", True),
        (f"{homie}/air/temperature/$unit", "°C", True),
        (f"{homie}/air/humidity/$datatype", "float", True),
        (f"{homie}/air/humidity/$unit", "%", True),
        (f"{homie}/$state", "ready", True),
        (f"{homie}/air/temperature", "19.5", True),
        (f"{homie}/air/humidity", "55", True),
        # Home Assistant discovery: retained config, availability, a retained state in °F
        ("homeassistant/sensor/garden_temp_six/config", ha_config, True),
        ("garden/weather/availability", "online", True),
        ("garden/weather/state", {"temperature": 50.0}, True),
        # The Things Stack: an uplink
        ("v3/app1@ttn/devices/six-node/up", ttn, False),
    ]


# -- services and the hub ---------------------------------------------------------------------------


def hub_config(tmp_path: Path, broker: Mosquitto, influx: InfluxDB1, db: str) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(
        f"""\
mqtt:
  url: {broker.url}
  client_id: hub-six-{db}
timeseries:
  kind: influxdb-v1
  url: {influx.url}
  database: {db}
  flush_interval: 0.2
storage:
  path: {tmp_path / "data"}
web:
  listen: 127.0.0.1:0
  enabled: false
"""
    )
    return path


@pytest.fixture
def hub_run(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(config: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def mqtt_client(broker: Mosquitto) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"six-{uuid.uuid4().hex[:8]}",
                         protocol=paho.MQTTv311)  # fmt: skip
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def wait_hub_online(broker: Mosquitto, timeout: float = 30) -> None:
    seen: list[bytes] = []
    client = mqtt_client(broker)
    client.on_message = lambda _c, _u, m: seen.append(m.payload)
    client.subscribe("neighborhood/hub/status", 1)
    try:
        wait_for(lambda: b"online" in seen, timeout, "the hub's online status")
    finally:
        client.disconnect()
        client.loop_stop()
    time.sleep(0.5)  # its subscriptions follow the status publish


def publish(broker: Mosquitto, items: list[tuple[str, Any, bool]]) -> None:
    client = mqtt_client(broker)
    try:
        for topic, payload, retain in items:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            client.publish(topic, data, qos=1, retain=retain).wait_for_publish(10)
            time.sleep(0.05)  # devices do not publish a whole inventory in the same millisecond
    finally:
        client.disconnect()
        client.loop_stop()


def points(influx: InfluxDB1, db: str) -> list[dict[str, Any]]:
    try:
        return influx.rows(db, 'SELECT * FROM "reading" GROUP BY "thing", "source"')
    except AssertionError:  # no point written yet
        return []


def by_source(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        fields = {k: v for k, v in row.items() if k not in ("time", "thing", "source") and v is not None}
        out.setdefault(row["source"], []).append({"thing": row["thing"], "time": row["time"], **fields})
    return out


# -- the test -----------------------------------------------------------------------------------------


def test_seven_ecosystems_become_things_with_readings_in_influxdb(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb_v1: InfluxDB1,
    hub_run: Callable[[Path], subprocess.Popen[str]],
) -> None:
    db = f"six_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    hub = hub_run(hub_config(tmp_path, mosquitto, influxdb_v1, db))
    wait_hub_online(mosquitto)
    t = float(int(time.time()) - 30)
    publish(mosquitto, messages(t))
    ns = int(t * 1e9)
    expected: dict[str, list[dict[str, Any]]] = {  # per ecosystem, its points' fields (and times)
        "tasmota": [{"temperature": 21.7, "humidity": 66.6, "pressure": 988.6, "time": ns}],
        "zigbee2mqtt": [
            {"state": True, "power": 3.0, "energy": 8.42, "voltage": 241.0, "linkquality": 48.0, "time": ns}
        ],
        "esphome": [{"temperature": 21.4}],
        "shelly": [
            {"state": False, "power": 0.0, "voltage": 240.873, "energy": 1.5, "time": ns},
            {"power": 42.5, "energy": 1.512, "time": ns + 5_000_000_000},
        ],
        "homie": [{"temperature": 19.5}, {"humidity": 55.0}],
        "homeassistant": [{"temperature": 10.0}],  # 50 °F
        "ttn": [{"temperature": 1.0, "rssi": -35.0, "time": ns + 14_773_000}],  # received_at, in µs
    }

    def complete() -> bool:
        got = by_source(points(influxdb_v1, db))
        return all(len(got.get(s, [])) >= len(want) for s, want in expected.items())

    with contextlib.suppress(AssertionError):  # every missing or wrong point is listed below
        wait_for(complete, 30, "points from all seven ecosystems")
    time.sleep(1.0)  # anything late or duplicated shows up now
    got = by_source(points(influxdb_v1, db))
    problems: list[str] = []
    for source in sorted(set(got) - set(SOURCES)):
        problems.append(f"points under an unexpected source {source!r}: {got[source]}")
    for source, want in expected.items():
        have = sorted(got.get(source, []), key=lambda p: (p["time"], sorted(p)))
        if len(have) != len(want):
            problems.append(f"{source}: {len(have)} points, expected {len(want)}: {have}")
            continue
        for point, fields in zip(have, want, strict=True):
            for name, value in fields.items():
                ok = (
                    abs(point.get(name, -1) - value) < 1000
                    if name == "time"
                    else point.get(name) == pytest.approx(value)
                    and isinstance(point.get(name), bool) == isinstance(value, bool)
                )
                if not ok:
                    problems.append(f"{source}: {name} = {point.get(name)!r}, expected {value!r} in {point}")
    things = {source: {p["thing"] for p in got.get(source, [])} for source in SOURCES}
    for source, ids in things.items():
        if len(ids) > 1:
            problems.append(f"{source}: one device became several things {sorted(ids)}")
        problems += [
            f"{source}: thing id {i!r} is not {source}.<id>" for i in ids if not i.startswith(f"{source}.")
        ]

    assert hub.poll() is None, "hub run exited"
    hub.send_signal(signal.SIGTERM)
    assert hub.wait(20) == 0
    assert hub.stderr is not None
    stderr = hub.stderr.read()
    if "Traceback" in stderr:
        problems.append(f"hub run logged a traceback: {stderr[-2000:]}")

    store = Store.open(tmp_path / "data")
    try:
        for source, ids in things.items():
            for thing_id in ids:
                state = store.thing(thing_id)
                if state is None:
                    problems.append(f"{source}: thing {thing_id} is not in the store")
                    continue
                if state.source != source:
                    problems.append(f"{source}: thing {thing_id} has source {state.source!r} in the store")
                if not state.values:
                    problems.append(f"{source}: thing {thing_id} has no latest values in the store")
                if source != "zigbee2mqtt" and source != "ttn" and state.online is not True:
                    # each of the others said it was online (LWT, status, $state ready, availability)
                    problems.append(f"{source}: thing {thing_id} online={state.online!r} in the store")
    finally:
        store.close()
    assert not problems, "\n".join(problems)
