"""Grafana dashboards and provisioning, Home Assistant entities and view (dashboards/).

Every InfluxQL query of the 1.x dashboard runs against a real InfluxDB 1.6 filled through the hub's own
line-protocol encoder. No Flux engine is available to the tests, so the Flux dashboard is checked for its
structure and its agreement with the InfluxQL one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import pytest
from ruamel.yaml import YAML

from hub.domain.alert_rules import DEFAULT_RULES, LowBattery, Threshold
from hub.domain.lending import HELD
from hub.domain.vocabulary import BOOLEAN, MEASUREMENTS, NUMERIC
from hub.storage.lineprotocol import encode
from hub.storage.sink import Point

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
HOMEASSISTANT = ROOT / "dashboards" / "homeassistant"
LANGUAGES = ("influxql", "flux")

#: Grafana's unit ids for the canonical units (Grafana's µg/m³ id is spelt with the Greek mu).
GRAFANA_UNIT = {
    "µg/m³": "con\u03bcgm3",
    "°C": "celsius",
    "%": "percent",
    "dB(A)": "suffix:dB(A)",
    "W": "watt",
    "kWh": "kwatth",
    "V": "volt",
    "A": "amp",
    "hPa": "pressurehpa",
    "ppm": "ppm",
    "ppb": "conppb",
    "lx": "lux",
    "dBm": "dBm",
}
#: Home Assistant's spelling of the canonical units (its µg/m³ uses the Greek mu, its dB(A) is dBA).
HA_UNIT = {**{unit: unit for unit in NUMERIC.values() if unit}, "µg/m³": "\u03bcg/m³", "dB(A)": "dBA"}
HA_DEVICE_CLASS = {
    "temperature": "temperature",
    "humidity": "humidity",
    "pressure": "atmospheric_pressure",
    "pm1": "pm1",
    "pm25": "pm25",
    "pm10": "pm10",
    "co2": "carbon_dioxide",
    "voc": "volatile_organic_compounds_parts",
    "illuminance": "illuminance",
    "noise": "sound_pressure",
    "battery": "battery",
    "voltage": "voltage",
    "current": "current",
    "power": "power",
    "energy": "energy",
    "rssi": "signal_strength",
}
HA_BINARY_DEVICE_CLASS = {
    "water_leak": "moisture",
    "contact": "door",
    "occupancy": "occupancy",
    "smoke": "smoke",
    "tamper": "tamper",
    "state": "power",
}
WHO_24H = {"pm25": 15.0, "pm10": 45.0}  # WHO 2021 24-hour guideline values, µg/m³
FLUX_V = {"timeRangeStart", "timeRangeStop", "windowPeriod"}  # what Grafana defines in v


def load(language: str) -> dict[str, Any]:
    return json.loads((GRAFANA / language / "neighborhood.json").read_text(encoding="utf-8"))


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("neighborhood_dashboard", GRAFANA / "neighborhood.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in panels(board) for target in panel["targets"]]


def fields_of(query: str) -> set[str]:
    """Canonical measurement names a query reads (InfluxQL function arguments or Flux _field filters)."""
    return set(re.findall(r'\w+\("(\w+)"\)', query)) | set(re.findall(r'r\._field == "(\w+)"', query))


def unit_of_target(panel: dict[str, Any], ref: str) -> str:
    unit = panel["fieldConfig"]["defaults"].get("unit")
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byFrameRefID", "options": ref}:
            for prop in override["properties"]:
                if prop["id"] == "unit":
                    unit = prop["value"]
    return unit


def thresholds_of(panel: dict[str, Any]) -> list[float]:
    return [
        s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None
    ]


def panel_titled(board: dict[str, Any], title: str) -> dict[str, Any]:
    (panel,) = [p for p in board["panels"] if p["title"] == title]
    return panel


def variable(board: dict[str, Any], name: str) -> dict[str, Any]:
    (var,) = [v for v in board["templating"]["list"] if v["name"] == name]
    return var


# -- the JSON ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_dashboard_is_what_the_generator_writes(language: str) -> None:
    committed = (GRAFANA / language / "neighborhood.json").read_text(encoding="utf-8")
    assert committed == generator().dashboard_text(language), (
        f"dashboards/grafana/{language}/neighborhood.json is stale: run dashboards/grafana/neighborhood.py"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_dashboard_has_the_structure_grafana_imports(language: str) -> None:
    board = load(language)
    assert board["schemaVersion"] >= 38
    assert board["uid"] and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert variable(board, "datasource")["type"] == "datasource"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
    for panel in panels(board):
        assert panel["datasource"] == {"type": "influxdb", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["query"].strip() for t in panel["targets"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_dashboard_has_the_issues_panels(language: str) -> None:
    board = load(language)
    kinds: dict[str, set[str]] = {}
    for panel, target in targets(board):
        for name in fields_of(target["query"]):
            kinds.setdefault(name, set()).add(panel["type"])
    for name in ("pm25", "pm10", "temperature", "humidity", "noise", "power", "energy"):
        assert "timeseries" in kinds.get(name, set()), name
    assert "state-timeline" in kinds["water_leak"] and "state-timeline" in kinds["contact"]
    assert "bargauge" in kinds["battery"] or "gauge" in kinds["battery"]
    assert panel_titled(board, "Last seen")["type"] == "table"


def test_thing_variable_lists_the_thing_tag_of_reading() -> None:
    thing = variable(load("influxql"), "thing")
    assert thing["query"] == 'SHOW TAG VALUES FROM "reading" WITH KEY = "thing"'
    assert thing["multi"] and thing["includeAll"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_target_is_shown_in_the_unit_of_its_canonical_measurement(language: str) -> None:
    checked = 0
    for panel, target in targets(load(language)):
        for name in fields_of(target["query"]):
            assert name in MEASUREMENTS, f"{panel['title']}: {name!r} is not a canonical measurement"
            expected = "none" if name in BOOLEAN else GRAFANA_UNIT[NUMERIC[name]]
            assert unit_of_target(panel, target["refId"]) == expected, f"{panel['title']} {name}"
            checked += 1
    assert checked >= 11


def test_flux_and_influxql_dashboards_show_the_same_panels() -> None:
    def shape(board: dict[str, Any]) -> list[Any]:
        return [
            (
                p["type"],
                p["title"],
                p["gridPos"],
                p.get("fieldConfig"),
                p.get("options"),
                p.get("transformations"),
            )
            for p in board["panels"]
        ]

    influxql, flux = load("influxql"), load("flux")
    assert shape(influxql) == shape(flux)
    pairs = zip(targets(influxql), targets(flux), strict=True)
    for (panel, ql_target), (_, flux_target) in pairs:
        assert ql_target["refId"] == flux_target["refId"]
        assert fields_of(ql_target["query"]) == fields_of(flux_target["query"]), panel["title"]


@pytest.mark.parametrize(("title", "measurement"), [("PM2.5", "pm25"), ("PM10", "pm10"), ("Noise", "noise")])
def test_threshold_lines_are_the_hubs_alert_levels_and_the_who_guideline(
    title: str, measurement: str
) -> None:
    alert_levels = {
        rule.above
        for rule in DEFAULT_RULES
        if isinstance(rule, Threshold) and rule.measurement == measurement
    }
    assert alert_levels
    expected = sorted(alert_levels | ({WHO_24H[measurement]} if measurement in WHO_24H else set()))
    for language in LANGUAGES:
        panel = panel_titled(load(language), title)
        assert thresholds_of(panel) == expected
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] in ("line", "dashed")


def test_battery_bands_are_the_low_battery_rules_levels() -> None:
    (rule,) = [r for r in DEFAULT_RULES if isinstance(r, LowBattery)]
    assert thresholds_of(panel_titled(load("influxql"), "Battery")) == [rule.below, rule.clear_above]


# -- InfluxQL against InfluxDB 1.6 -------------------------------------------------------------------------

NOW_NS = time.time_ns()
MINUTE_NS = 60 * 10**9
SILENT_SINCE_NS = NOW_NS - 3 * 24 * 60 * MINUTE_NS  # a thing last heard of three days ago


def _points() -> list[Point]:
    points = []
    for k in range(180, 0, -5):  # every 5 minutes over the last 3 hours
        t = NOW_NS - k * MINUTE_NS
        points += [
            Point("air-quality-courtyard", "native", {"pm25": 12.0 + k % 30, "pm10": 20.0 + k % 40}, t),
            Point("air-quality-courtyard", "native", {"temperature": 9.5, "humidity": 71.0}, t + 1),
            Point("noise-playground", "native", {"noise": 52.0 + k % 20}, t),
            Point("washing-machine-basement", "native", {"power": 400.0, "state": k % 2 == 0}, t),
            Point("flood-basement", "native", {"water_leak": k == 60, "battery": 87.0}, t),
            Point("bike-shed-door", "zigbee2mqtt", {"contact": k % 10 == 0, "battery": 12.0}, t),
        ]
    # an energy counter read once in each of four hours: 0.5 kWh used, 1.25 kWh used, then the plug reset
    hour_ns = 60 * MINUTE_NS
    half_past = NOW_NS - NOW_NS % hour_ns + 30 * MINUTE_NS
    for hours, kwh in ((4, 100.0), (3, 100.5), (2, 101.75), (1, 0.25)):
        points.append(
            Point("washing-machine-basement", "native", {"energy": kwh}, half_past - hours * hour_ns)
        )
    points.append(Point("cargo-bike", "native", {"battery": 81.0}, SILENT_SINCE_NS))
    return points


@pytest.fixture
def reading_db(influxdb_v1: Any) -> str:
    """A fresh database holding the hub's points, written as the hub writes them (line protocol, ns)."""
    db = f"dashboards_{uuid.uuid4().hex[:8]}"
    influxdb_v1.create_database(db)
    request = urllib.request.Request(
        f"{influxdb_v1.url}/write?db={db}&precision=ns", data=encode(_points()), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204
    return db


THINGS = sorted({p.thing for p in _points()})


def grafana_regex(values: list[str]) -> str:
    """What Grafana puts in place of a multi-value $thing in an InfluxQL regex: escaped, (a|b)."""
    escaped = [re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(query: str, things: list[str]) -> str:
    text = (
        query.replace("$timeFilter", "time > now() - 24h")
        .replace("$__interval", "1m")
        .replace("$thing", grafana_regex(things))
    )
    assert not re.search(r"\$[\w{]", text), f"a Grafana macro the test does not know is left in {text!r}"
    return text


INFLUXQL_TARGETS = [
    pytest.param(panel, target, id=f"{panel['title']}-{target['refId']}")
    for panel, target in targets(load("influxql"))
]


def values_in(series: list[dict[str, Any]]) -> list[Any]:
    return [v for s in series for row in s["values"] for v in row[1:] if v is not None]


@pytest.mark.integration
@pytest.mark.parametrize(("panel", "target"), INFLUXQL_TARGETS)
def test_influxql_query_runs_and_returns_the_readings_written(
    influxdb_v1: Any, reading_db: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    series = influxdb_v1.query(reading_db, interpolate(target["query"], THINGS))
    assert values_in(series), f"{panel['title']}: no values"
    assert {s["tags"]["thing"] for s in series} <= set(THINGS)


@pytest.mark.integration
def test_thing_variable_query_lists_every_thing(influxdb_v1: Any, reading_db: str) -> None:
    query = variable(load("influxql"), "thing")["query"]
    assert [row["value"] for row in influxdb_v1.rows(reading_db, query)] == THINGS


@pytest.mark.integration
@pytest.mark.parametrize(("panel", "target"), INFLUXQL_TARGETS)
def test_influxql_query_narrowed_to_one_thing_returns_only_that_thing(
    influxdb_v1: Any, reading_db: str, panel: dict[str, Any], target: dict[str, Any]
) -> None:
    read = fields_of(target["query"])
    wanted = next(p.thing for p in _points() if not read or read & set(p.values))
    series = influxdb_v1.query(reading_db, interpolate(target["query"], [wanted]))
    assert values_in(series)
    assert {s["tags"]["thing"] for s in series} == {wanted}


@pytest.mark.integration
def test_last_seen_is_each_things_newest_point(influxdb_v1: Any, reading_db: str) -> None:
    (target,) = panel_titled(load("influxql"), "Last seen")["targets"]
    assert target["resultFormat"] == "table"
    rows = influxdb_v1.rows(reading_db, interpolate(target["query"], THINGS))
    newest: dict[str, int] = {}
    for point in _points():
        newest[point.thing] = max(newest.get(point.thing, 0), point.time_ns)
    assert {row["thing"]: row["time"] for row in rows} == newest
    assert {row["thing"]: row["source"] for row in rows}["bike-shed-door"] == "zigbee2mqtt"


@pytest.mark.integration
def test_energy_per_hour_is_the_rise_of_the_counter_and_ignores_a_reset(
    influxdb_v1: Any, reading_db: str
) -> None:
    (target,) = panel_titled(load("influxql"), "Energy per hour")["targets"]
    rows = influxdb_v1.rows(reading_db, interpolate(target["query"], THINGS))
    assert sorted(row["energy"] for row in rows) == [0.5, 1.25]


@pytest.mark.integration
def test_state_timeline_shows_the_leak_as_true(influxdb_v1: Any, reading_db: str) -> None:
    panel = panel_titled(load("influxql"), "Water leaks and contacts")
    (leak,) = [t for t in panel["targets"] if fields_of(t["query"]) == {"water_leak"}]
    values = [row["water_leak"] for row in influxdb_v1.rows(reading_db, interpolate(leak["query"], THINGS))]
    assert values.count(True) == 1 and False in values


# -- Flux (structure only: no Flux engine here) ------------------------------------------------------------

FLUX_TARGETS = [
    pytest.param(panel, target, id=f"{panel['title']}-{target['refId']}")
    for panel, target in targets(load("flux"))
]


def check_flux_names(query: str, board: dict[str, Any]) -> None:
    defined = {v["name"] for v in board["templating"]["list"]}
    used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}", query)) | set(re.findall(r"\$(\w+)", query))
    assert used <= defined, f"undefined dashboard variables {used - defined}"
    assert set(re.findall(r"\bv\.(\w+)", query)) <= FLUX_V
    lambdas = set(re.findall(r"fn: \((\w+)\) =>", query))
    roots = set(re.findall(r"(?<![\w.\"])([A-Za-z_]\w*)\.\w", query))
    imported = set(re.findall(r'^import "(?:[\w/]+/)?(\w+)"', query, flags=re.M))
    assert roots <= lambdas | imported | {"v"}, f"undefined names {roots - lambdas - imported - {'v'}}"


@pytest.mark.parametrize(("panel", "target"), FLUX_TARGETS)
def test_flux_query_reads_canonical_fields_of_reading_from_the_bucket_variable(
    panel: dict[str, Any], target: dict[str, Any]
) -> None:
    query = target["query"]
    assert query.startswith('from(bucket: "${bucket}")')
    assert 'r._measurement == "reading"' in query
    assert "r.thing =~ /^${thing:regex}$/" in query
    assert fields_of(query) <= MEASUREMENTS
    assert query.count("(") == query.count(")") and query.count("[") == query.count("]")
    check_flux_names(query, load("flux"))


def test_flux_variables_list_buckets_and_things_of_reading() -> None:
    board = load("flux")
    assert "buckets()" in variable(board, "bucket")["query"]
    thing = variable(board, "thing")["query"]
    assert 'bucket: "${bucket}"' in thing and 'measurement: "reading"' in thing and 'tag: "thing"' in thing
    for name in ("bucket", "thing"):
        check_flux_names(variable(board, name)["query"], board)


# -- provisioning ------------------------------------------------------------------------------------------

ENV_REFERENCE = re.compile(r"\$\{?[A-Z][A-Z0-9_]*\}?")


def yaml_file(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_datasources_take_every_secret_from_the_environment() -> None:
    config = yaml_file(GRAFANA / "provisioning" / "datasources" / "hub.yaml")
    assert config["apiVersion"] == 1
    by_uid = {ds["uid"]: ds for ds in config["datasources"]}
    assert by_uid["hub-influxql"]["jsonData"]["version"] == "InfluxQL"
    assert by_uid["hub-flux"]["jsonData"]["version"] == "Flux"
    for ds in by_uid.values():
        assert ds["type"] == "influxdb"
        assert ds["secureJsonData"], ds["name"]
        for key, value in ds["secureJsonData"].items():
            assert ENV_REFERENCE.fullmatch(value), (
                f"{ds['name']}: secureJsonData.{key} is not an env reference"
            )
        assert not {"password", "token", "basicAuthPassword"} & set(ds), "secrets belong in secureJsonData"
    for language, uid in (("influxql", "hub-influxql"), ("flux", "hub-flux")):
        assert variable(load(language), "datasource")["current"]["value"] == uid


def test_dashboard_providers_point_at_both_dashboard_folders() -> None:
    config = yaml_file(GRAFANA / "provisioning" / "dashboards" / "hub.yaml")
    assert config["apiVersion"] == 1
    folders = set()
    for provider in config["providers"]:
        assert provider["type"] == "file"
        folder = Path(provider["options"]["path"]).name
        assert (GRAFANA / folder / "neighborhood.json").is_file(), provider["options"]["path"]
        folders.add(folder)
    assert folders == set(LANGUAGES)


# -- Home Assistant ----------------------------------------------------------------------------------------


def mqtt_entities() -> dict[str, list[dict[str, Any]]]:
    return yaml_file(HOMEASSISTANT / "mqtt-sensors.yaml")["mqtt"]


def template_field(entity: dict[str, Any]) -> str:
    (name,) = set(re.findall(r"value_json\.(\w+)", entity["value_template"]))
    return name


def render(template: str, payload: str) -> str:
    """Render a value template as Home Assistant's MQTT entities do: value_json only when JSON parses."""
    variables: dict[str, Any] = {"value": payload}
    with contextlib.suppress(ValueError):
        variables["value_json"] = json.loads(payload)
    return jinja2.Environment().from_string(template).render(variables).strip()


def state_sensors() -> list[dict[str, Any]]:
    return [s for s in mqtt_entities()["sensor"] if s["state_topic"].endswith("/state")]


def test_every_sensor_reads_a_canonical_measurement_in_its_unit() -> None:
    sensors = state_sensors()
    assert len(sensors) >= 10
    for sensor in sensors:
        assert re.fullmatch(r"neighborhood/things/[A-Za-z0-9][\w.:-]*/state", sensor["state_topic"])
        name = template_field(sensor)
        assert name in NUMERIC, f"{sensor['name']}: {name!r} is not a numeric canonical measurement"
        assert sensor["unit_of_measurement"] == HA_UNIT[NUMERIC[name]], sensor["name"]
        assert sensor["device_class"] == HA_DEVICE_CLASS[name], sensor["name"]


def test_every_binary_sensor_reads_a_boolean_measurement_or_the_hub_status() -> None:
    binaries = mqtt_entities()["binary_sensor"]
    (hub,) = [b for b in binaries if b["state_topic"] == "neighborhood/hub/status"]
    assert (hub["payload_on"], hub["payload_off"], hub["device_class"]) == (
        "online",
        "offline",
        "connectivity",
    )
    readings = [b for b in binaries if b is not hub]
    assert {template_field(b) for b in readings} >= {"water_leak", "contact"}
    for binary in readings:
        name = template_field(binary)
        assert name in BOOLEAN and binary["device_class"] == HA_BINARY_DEVICE_CLASS[name], binary["name"]
        assert "unit_of_measurement" not in binary


def test_unique_ids_are_unique() -> None:
    entities = [e for kind in mqtt_entities().values() for e in kind]
    ids = [e["unique_id"] for e in entities]
    assert all(ids) and len(ids) == len(set(ids))


def test_sensor_templates_give_the_value_and_nothing_when_a_message_lacks_it() -> None:
    pm25 = next(s for s in state_sensors() if template_field(s) == "pm25")["value_template"]
    assert render(pm25, '{"pm25": 12.5, "pm10": 20.0, "time": 1767225600}') == "12.5"
    assert render(pm25, '{"pm10": 20.0}') == ""  # Home Assistant ignores an empty result: the state stays
    assert render(pm25, '{"pm25": 0.0}') == "0.0"


def test_binary_templates_map_canonical_booleans_to_home_assistant_states() -> None:
    by_field = {template_field(b): b["value_template"] for b in mqtt_entities()["binary_sensor"][1:]}
    assert render(by_field["water_leak"], '{"water_leak": true}') == "ON"
    assert render(by_field["water_leak"], '{"water_leak": false, "battery": 80}') == "OFF"
    assert render(by_field["water_leak"], '{"battery": 80}') == ""
    # contact is true when closed; a door binary sensor is on when open
    assert render(by_field["contact"], '{"contact": true}') == "OFF"
    assert render(by_field["contact"], '{"contact": false}') == "ON"


def test_custody_sensors_follow_the_loans_topic() -> None:
    custody = [s for s in mqtt_entities()["sensor"] if s["state_topic"].startswith("neighborhood/loans/")]
    assert len(custody) >= 1
    for sensor in custody:
        assert re.fullmatch(r"neighborhood/loans/[A-Za-z0-9][\w.:-]*", sensor["state_topic"])
        assert sensor["device_class"] == "enum"
        assert set(sensor["options"]) == {"available"} | {state.value for state in HELD}
        out = '{"thing": "drill", "state": "out", "holder": "dee", "since": 1767225600, "due": 1767830400}'
        assert render(sensor["value_template"], out) == "out"
        assert render(sensor["value_template"], '{"thing": "drill", "state": "available"}') == "available"
        # a thing made private has its retained custody cleared: the state becomes unknown
        assert render(sensor["value_template"], "") == "None"
        assert json.loads(render(sensor["json_attributes_template"], out))["holder"] == "dee"
        assert json.loads(render(sensor["json_attributes_template"], "")) == {}


def entity_id(domain: str, name: str) -> str:
    return f"{domain}.{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}"


def test_lovelace_view_shows_only_entities_the_mqtt_file_defines() -> None:
    defined = {entity_id(domain, e["name"]) for domain, items in mqtt_entities().items() for e in items}
    view = yaml_file(HOMEASSISTANT / "lovelace-neighborhood.yaml")
    assert view["title"] and view["path"] and view["cards"]
    used = set()
    for card in view["cards"]:
        for key in ("entity",):
            if key in card:
                used.add(card[key])
        for row in card.get("entities", []):
            used.add(row if isinstance(row, str) else row["entity"])
    assert used and used <= defined, f"undefined entities {used - defined}"
    assert "binary_sensor.neighborhood_hub" in used


def test_lovelace_pm_gauges_turn_red_at_the_alert_level() -> None:
    view = yaml_file(HOMEASSISTANT / "lovelace-neighborhood.yaml")
    gauges = {card["entity"]: card["severity"] for card in view["cards"] if card["type"] == "gauge"}
    for entity, measurement in (
        ("sensor.courtyard_air_pm2_5", "pm25"),
        ("sensor.courtyard_air_pm10", "pm10"),
    ):
        lowest_alert = min(
            r.above
            for r in DEFAULT_RULES
            if isinstance(r, Threshold) and r.measurement == measurement and r.above
        )
        assert gauges[entity] == {"green": 0, "yellow": WHO_24H[measurement], "red": lowest_alert}
