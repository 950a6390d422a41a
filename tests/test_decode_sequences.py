"""``hub decode FILE`` (DESIGN §5) over one JSON-lines file mixing every ecosystem, in order.

Each ecosystem's announcement comes before its state, so the printed lines show what the hub learned:
discovery lines with name, model and measurements, readings with canonical values (units converted)
on the thing the announcement named, device times as ISO UTC with ``Z``, rejections with a reason.
The command runs as a user runs it: the installed ``hub`` script in a subprocess.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
HUB = REPO / ".venv" / "bin" / "hub"
FIXTURES = REPO.parent / "shared" / "fixtures" / "payloads"
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fixture(file: str, index: int) -> Any:
    return json.loads((FIXTURES / file).read_text(encoding="utf-8"))[index]["payload"]


def z2m_devices() -> list[dict[str, Any]]:
    """zigbee2mqtt.json's bridge/devices excerpt with its elided exposes filled in (Z2M 1.x shape)."""
    return [
        {
            "ieee_address": "0x00158d00018255df",
            "type": "Router",
            "network_address": 29159,
            "supported": True,
            "friendly_name": "my_plug",
            "definition": {
                "model": "ZNCZ02LM",
                "vendor": "Xiaomi",
                "description": "Mi power plug ZigBee",
                "exposes": [
                    {
                        "type": "switch",
                        "features": [
                            {"type": "binary", "name": "state", "property": "state", "value_on": "ON",
                             "value_off": "OFF", "access": 7}
                        ],
                    },
                    {"type": "numeric", "name": "power", "property": "power", "unit": "W", "access": 5},
                    {"type": "numeric", "name": "energy", "property": "energy", "unit": "kWh", "access": 1},
                    {"type": "numeric", "name": "voltage", "property": "voltage", "unit": "V", "access": 1},
                    {"type": "numeric", "name": "current", "property": "current", "unit": "A", "access": 1},
                    {"type": "numeric", "name": "linkquality", "property": "linkquality", "unit": "lqi",
                     "access": 1},
                ],
            },
            "power_source": "Mains (single phase)",
            "date_code": "02-28-2017",
            "model_id": "lumi.plug",
            "interviewing": False,
            "interview_completed": True,
        }
    ]  # fmt: skip


def sequence(now: float) -> list[dict[str, Any]]:
    t = float(int(now) - 60)  # a device time a minute ago (whole seconds: Tasmota prints no fraction)
    tasmota_config = json.loads(fixture("tasmota.json", 10))
    ttn_uplink = json.loads(fixture("ttn.json", 0))
    ttn_uplink["received_at"] = ttn_uplink["uplink_message"]["received_at"] = iso(t).replace("Z", "123456Z")
    airrohr = json.loads(fixture("sensorcommunity.json", 0))
    shelly_full = {
        "src": "shellyplus1pm-a8032abe2f18",
        "dst": "shellyplus1pm-a8032abe2f18/events",
        "method": "NotifyFullStatus",
        "params": {
            "ts": t,
            "sys": {"mac": "A8032ABE2F18", "unixtime": int(t), "uptime": 1234},
            "switch:0": {
                "id": 0,
                "source": "init",
                "output": False,
                "apower": 0.0,
                "voltage": 240.9,
                "current": 0.0,
                "aenergy": {"total": 1234.5, "by_minute": [0.0, 0.0, 0.0], "minute_ts": int(t)},
                "temperature": {"tC": 46.2, "tF": 115.1},
            },
            "wifi": {"sta_ip": "192.168.1.20", "status": "got ip", "ssid": "home", "rssi": -61},
        },
    }
    shelly_delta = {
        "src": "shellyplus1pm-a8032abe2f18",
        "dst": "shellyplus1pm-a8032abe2f18/events",
        "method": "NotifyStatus",
        "params": {"ts": t + 30, "switch:0": {"id": 0, "output": True, "apower": 55.5}},
    }
    ha_config = {
        "name": "Bedroom temperature",
        "stat_t": "bedroom/sensor/state",
        "dev_cla": "temperature",
        "unit_of_meas": "°F",
        "val_tpl": "{{ value_json.temperature }}",
        "uniq_id": "bedroom_temp_1",
        "dev": {"ids": ["bedroom01"], "name": "Bedroom sensor", "mf": "Acme", "mdl": "T-1000", "sw": "1.2"},
    }
    return [
        {"topic": "homeassistant/sensor/bedroom_temp/config", "payload": ha_config},  # 0
        {"topic": "bedroom/sensor/state", "payload": {"temperature": 68.0}},  # 1
        {"topic": "zigbee2mqtt/bridge/devices", "payload": z2m_devices()},  # 2
        {
            "topic": "zigbee2mqtt/my_plug",
            "payload": {
                "state": "ON",
                "power": 3,
                "energy": 8.42,
                "voltage": 241,
                "current": 0.1,
                "linkquality": 48,
                "last_seen": iso(t),
            },
        },  # 3
        {"topic": "tasmota/discovery/DC4F220756C6/config", "payload": tasmota_config},  # 4
        {
            "topic": "tele/cv-ruimte/SENSOR",
            "payload": {
                "Time": iso(t).removesuffix("Z"),
                "DS18B20-1": {"Id": "3CCCE3810022", "Temperature": 18.4},
                "TempUnit": "C",
            },
        },  # 5
        {"topic": "homie/weather-1/$homie", "payload": "4.0"},  # 6
        {"topic": "homie/weather-1/$name", "payload": "Weather station"},
        {"topic": "homie/weather-1/$state", "payload": "init"},
        {"topic": "homie/weather-1/$nodes", "payload": "air"},
        {"topic": "homie/weather-1/air/$name", "payload": "Air"},
        {"topic": "homie/weather-1/air/$properties", "payload": "temperature,pressure"},
        {"topic": "homie/weather-1/air/temperature/$name", "payload": "Temperature"},
        {"topic": "homie/weather-1/air/temperature/$datatype", "payload": "float"},
        {"topic": "homie/weather-1/air/temperature/$unit", "payload": "°C"},
        {"topic": "homie/weather-1/air/pressure/$datatype", "payload": "float"},
        {"topic": "homie/weather-1/air/pressure/$unit", "payload": "Pa"},
        {"topic": "homie/weather-1/$state", "payload": "ready"},  # 17
        {"topic": "homie/weather-1/air/temperature", "payload": "21.5"},  # 18
        {"topic": "homie/weather-1/air/pressure", "payload": "101325"},  # 19
        {"topic": "shellyplus1pm-a8032abe2f18/events/rpc", "payload": shelly_full},  # 20
        {"topic": "shellyplus1pm-a8032abe2f18/events/rpc", "payload": shelly_delta},  # 21
        {"topic": "v3/app1@ttn/devices/dev1/up", "payload": ttn_uplink},  # 22
        {"topic": "http/airrohr/esp8266-12331981", "payload": airrohr},  # 23
        {
            "topic": "zigbee2mqtt/my_plug",
            "payload_b64": base64.b64encode(b'\xff\xfe{"power":1}').decode(),
        },  # 24
        {"topic": "neighborhood/things/porch/state", "payload": {"temperature": 19.0, "time": t}},  # 25
    ]


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[float, list[dict[str, Any]], str]:
    now = time.time()
    path = tmp_path_factory.mktemp("decode") / "mixed.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sequence(now)), encoding="utf-8"
    )
    done = subprocess.run([str(HUB), "decode", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return now, lines, done.stderr


def of(lines: list[dict[str, Any]], type_: str, source: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == type_ and line["source"] == source]


def one_reading(lines: list[dict[str, Any]], source: str) -> dict[str, Any]:
    found = of(lines, "reading", source)
    assert len(found) == 1, f"{source}: expected one reading, got {found}"
    return found[0]


def test_every_line_is_a_known_event_with_json_types(
    decoded: tuple[float, list[dict[str, Any]], str],
) -> None:
    _, lines, stderr = decoded
    assert "Traceback" not in stderr
    assert lines
    for line in lines:
        assert line["type"] in ("reading", "availability", "discovery", "scan", "rejected", "ignored"), line
        assert isinstance(line["source"], str) and line["source"], line
        if line["type"] == "reading":
            assert line["values"], line
            assert all(isinstance(v, bool | float) for v in line["values"].values()), line
            if "time" in line:
                assert ISO_Z.fullmatch(line["time"]), line
        if line["type"] == "rejected":
            assert line["reason"] and line["reason"] != "decoder_error", line


def test_home_assistant_discovery_then_state_in_fahrenheit(
    decoded: tuple[float, list[dict[str, Any]], str],
) -> None:
    _, lines, _ = decoded
    [discovery] = of(lines, "discovery", "homeassistant")
    assert discovery["name"] in ("Bedroom sensor", "Bedroom temperature")
    assert discovery["model"] == "T-1000" and discovery["manufacturer"] == "Acme"
    assert discovery["measurements"] == ["temperature"]
    assert "bedroom/sensor/state" in discovery["topics"]
    reading = one_reading(lines, "homeassistant")
    assert reading["thing"] == discovery["thing"]
    assert reading["values"] == {"temperature": pytest.approx(20.0)}  # 68 °F


def test_zigbee2mqtt_devices_then_a_device_message(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    now, lines, _ = decoded
    discoveries = of(lines, "discovery", "zigbee2mqtt")
    [plug] = [d for d in discoveries if d.get("model") == "ZNCZ02LM"]
    assert set(plug["measurements"]) >= {"state", "power", "energy", "voltage", "current"}
    assert plug.get("power") == "mains"
    reading = one_reading(lines, "zigbee2mqtt")
    assert reading["thing"] == plug["thing"]
    assert reading["values"] == {
        "state": True,
        "power": 3.0,
        "energy": 8.42,
        "voltage": 241.0,
        "current": 0.1,
        "linkquality": 48.0,
    }
    assert reading["time"] == iso(int(now) - 60)
    [rejected] = of(lines, "rejected", "zigbee2mqtt")  # the non-UTF-8 payload_b64 line
    assert rejected["reason"] == "not_utf8" and rejected["topic"] == "zigbee2mqtt/my_plug"


def test_tasmota_discovery_then_sensor(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    now, lines, _ = decoded
    [device] = [d for d in of(lines, "discovery", "tasmota") if d.get("name") == "CV-Ruimte"]
    assert device.get("sw_version", "").startswith("13.4.0")
    assert device.get("power") == "mains"
    reading = one_reading(lines, "tasmota")
    # the device itself, or one of its sensors (several DS18B20 are told apart by their Id)
    assert reading["thing"] == device["thing"] or reading["thing"].startswith(device["thing"] + ".")
    assert reading["values"] == {"temperature": 18.4}
    assert reading["time"] == iso(int(now) - 60)  # Tasmota's offset-less Time, taken as UTC


def test_homie_attributes_then_values(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    _, lines, _ = decoded
    discoveries = [d for d in of(lines, "discovery", "homie") if not d.get("retired")]
    assert discoveries
    last = discoveries[-1]
    assert last["name"] == "Weather station"
    assert set(last.get("measurements", [])) == {"temperature", "pressure"}
    readings = of(lines, "reading", "homie")
    assert [r["values"] for r in readings] == [{"temperature": 21.5}, {"pressure": pytest.approx(1013.25)}]
    assert {r["thing"] for r in readings} == {last["thing"]}


def test_shelly_full_status_then_partial_status(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    now, lines, _ = decoded
    readings = of(lines, "reading", "shelly")
    assert len(readings) == 2, readings
    full, delta = readings
    assert full["thing"] == delta["thing"]
    assert {k: full["values"][k] for k in ("state", "power", "voltage", "current", "energy")} == {
        "state": False,
        "power": 0.0,
        "voltage": 240.9,
        "current": 0.0,
        "energy": pytest.approx(1.2345),  # aenergy.total is Wh
    }
    # the delta's own values; what it left out may be carried over from the full status, unchanged
    assert {k: delta["values"][k] for k in ("state", "power")} == {"state": True, "power": 55.5}
    assert {k: v for k, v in delta["values"].items() if k not in ("state", "power")}.items() <= full[
        "values"
    ].items()
    assert full["time"] == iso(int(now) - 60)
    assert delta["time"] == iso(int(now) - 30)


def test_ttn_uplink(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    now, lines, _ = decoded
    reading = one_reading(lines, "ttn")
    values = dict(reading["values"])
    assert values.pop("illuminance", 0.64) == 0.64  # "luminosity" has no unit: lux, or left unmapped
    assert values == {"temperature": 1.0, "rssi": -35.0, "snr": 5.0}
    assert reading["thing"].startswith("ttn.") and "dev1" in reading["thing"]
    assert reading["time"] == iso(int(now) - 60)
    if "illuminance" not in reading["values"]:
        assert "luminosity" in json.dumps(reading.get("unmapped", {}))


def test_airrohr_push(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    _, lines, _ = decoded
    reading = one_reading(lines, "airrohr")
    assert reading["values"] == {
        "pm10": 0.4,
        "pm25": 0.2,
        "temperature": 20.47,
        "pressure": pytest.approx(1006.1325),
        "humidity": 69.02,
        "rssi": -94.0,
    }
    assert "12331981" in reading["thing"]


def test_native_and_the_order_of_lines(decoded: tuple[float, list[dict[str, Any]], str]) -> None:
    now, lines, _ = decoded
    native = one_reading(lines, "native")
    assert native == {
        "type": "reading",
        "source": "native",
        "thing": "porch",
        "values": {"temperature": 19.0},
        "time": iso(int(now) - 60),
    }
    assert lines[-1] == native  # printed in input order: the native line was the last input
    sources = [line["source"] for line in lines if line["type"] == "reading"]
    assert sources == ["homeassistant", "zigbee2mqtt", "tasmota", "homie", "homie", "shelly", "shelly", "ttn",
                       "airrohr", "native"]  # fmt: skip


def test_decode_reads_stdin_and_reports_bad_input_lines_without_failing() -> None:
    good = '{"topic": "neighborhood/things/a/state", "payload": {"temperature": 21}}'
    stdin = good + '\nnot json\n\n{"payload": 1}\n'
    done = subprocess.run([str(HUB), "decode"], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["reading", "rejected", "rejected"]
    assert lines[0]["values"] == {"temperature": 21.0}
    assert {line["reason"] for line in lines[1:]} == {"bad_input"}


def test_an_esphome_node_is_one_thing_of_source_esphome_with_or_without_its_discovery_config(
    tmp_path: Path,
) -> None:
    """ESPHome publishes Home Assistant discovery for some entities; the node stays an ESPHome device."""
    config = json.loads((FIXTURES / "esphome.json").read_text(encoding="utf-8"))[8]["payload"]
    records = [
        {"topic": "livingroom/status", "payload": "online"},
        {
            "topic": "homeassistant/sensor/livingroom/living_room_temperature/config",
            "payload": json.loads(config),
        },
        {"topic": "livingroom/sensor/living_room_temperature/state", "payload": "21.4"},
        {"topic": "livingroom/sensor/living_room_humidity/state", "payload": "41"},  # no config of its own
    ]
    path = tmp_path / "esphome.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    done = subprocess.run([str(HUB), "decode", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    readings = [line for line in lines if line["type"] == "reading"]
    assert [r["values"] for r in readings] == [{"temperature": 21.4}, {"humidity": 41.0}]
    assert {(r["source"], r["thing"]) for r in readings} == {("esphome", "esphome.livingroom")}, readings
