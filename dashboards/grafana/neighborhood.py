"""The Grafana dashboard "Neighborhood" in both query languages, from one description of its panels.

    python dashboards/grafana/neighborhood.py    # rewrites influxql/ and flux/neighborhood.json

The two JSON files are generated so that the InfluxDB 1.x (InfluxQL) and 2.x (Flux) dashboards keep the
same panels, thresholds and units; the tests check that the committed files match this script. Edit the
panels here, not in the JSON (or export from Grafana and carry the change back here).

Units come from the hub's canonical vocabulary (DESIGN §5): each panel names the measurement it shows and
the Grafana unit is looked up from the measurement's unit, never typed per panel.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere in the checkout
    sys.path.insert(0, str(ROOT))

from hub.domain.vocabulary import BOOLEAN, NUMERIC  # noqa: E402

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
MEASUREMENT = "reading"

#: Grafana's unit id for each canonical unit. µg/m³ is Grafana's "conμgm3", spelt with the Greek mu
#: (U+03BC); the vocabulary writes the micro sign (U+00B5). dB(A) has no Grafana unit: a custom suffix.
GRAFANA_UNITS = {
    "°C": "celsius",
    "%": "percent",
    "hPa": "pressurehpa",
    "µg/m³": "con\u03bcgm3",
    "ppm": "ppm",
    "ppb": "conppb",
    "lx": "lux",
    "dB(A)": "suffix:dB(A)",
    "V": "volt",
    "A": "amp",
    "W": "watt",
    "kWh": "kwatth",
    "dBm": "dBm",
    "": "none",
}

#: Alert defaults (docs/alerts.md, DEFAULT_RULES) and WHO 2021 24-hour guideline values, in µg/m³.
PM25_WHO_24H, PM25_HIGH, PM25_VERY_HIGH = 15, 35, 75
PM10_WHO_24H, PM10_HIGH, PM10_VERY_HIGH = 45, 50, 150
PM25_EU_DAILY_2030, PM10_EU_DAILY = 25, 50  # Directive (EU) 2024/2881; Directive 2008/50/EC
NOISE_LOUD = 70  # dB(A), noise-loud
BATTERY_LOW, BATTERY_CLEAR = 15, 25  # %, battery-low trips below 15 and clears above 25
LAST_SEEN_WINDOW = "30d"  # how far back "last seen" looks: a thing silent for days still shows


def grafana_unit(measurement: str) -> str:
    """The Grafana unit id of a canonical measurement."""
    if measurement in BOOLEAN:
        return "none"
    return GRAFANA_UNITS[NUMERIC[measurement]]


# -- query languages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One series of a panel, described once and written in each language.

    ``shape``: ``series`` (aggregated per time bucket), ``hourly_increase`` (a counter's rise per hour),
    ``latest`` (the last value per thing in the range), ``mean_24h`` (mean over the last 24 hours per
    thing) or ``last_seen`` (each thing's newest point, as a table).
    """

    ref: str
    measurement: str
    shape: str = "series"
    aggregate: str = "mean"


def influxql(query: Query) -> dict[str, Any]:
    """The InfluxQL target (Grafana's InfluxDB data source in raw-query mode)."""
    things = '"thing" =~ /^$thing$/'
    name = query.measurement
    column = f'{query.aggregate}("{name}") AS "{name}"'
    source = f'FROM "{MEASUREMENT}" WHERE {things}'
    result = "time_series"
    if query.shape == "series":
        text = f'SELECT {column} {source} AND $timeFilter GROUP BY time($__interval), "thing" fill(none)'
    elif query.shape == "hourly_increase":
        text = (
            f'SELECT non_negative_difference(max("{name}")) AS "{name}" '
            f'{source} AND $timeFilter GROUP BY time(1h), "thing" fill(none)'
        )
    elif query.shape == "latest":
        text = f'SELECT last("{name}") AS "{name}" {source} AND $timeFilter GROUP BY "thing"'
    elif query.shape == "mean_24h":
        text = f'SELECT mean("{name}") AS "{name}" {source} AND time > now() - 24h GROUP BY "thing"'
    elif query.shape == "last_seen":
        text = (
            f"SELECT * {source} AND time > now() - {LAST_SEEN_WINDOW} "
            'GROUP BY "thing" ORDER BY time DESC LIMIT 1'
        )
        result = "table"
    else:
        raise ValueError(f"unknown query shape {query.shape!r}")
    return {
        "refId": query.ref,
        "datasource": DATASOURCE,
        "query": text,
        "rawQuery": True,
        "resultFormat": result,
    }


def flux(query: Query) -> dict[str, Any]:
    """The Flux target (Grafana's InfluxDB data source with Flux); ``${bucket}`` is a dashboard variable."""
    window = f"-{LAST_SEEN_WINDOW}" if query.shape == "last_seen" else "v.timeRangeStart"
    if query.shape == "mean_24h":
        window = "-24h"
    stop = ", stop: v.timeRangeStop" if window == "v.timeRangeStart" else ""
    lines = [
        'from(bucket: "${bucket}")',
        f"  |> range(start: {window}{stop})",
        f'  |> filter(fn: (r) => r._measurement == "{MEASUREMENT}")',
        "  |> filter(fn: (r) => r.thing =~ /^${thing:regex}$/)",
    ]
    if query.shape != "last_seen":
        lines.append(f'  |> filter(fn: (r) => r._field == "{query.measurement}")')
    # Series of one thing from several ecosystems are merged, as InfluxQL's GROUP BY "thing" does;
    # a merge leaves rows out of time order, so selectors (last) sort first.
    if query.shape == "series":
        lines.append('  |> group(columns: ["thing", "_field"])')
        if query.aggregate == "last":
            lines.append('  |> sort(columns: ["_time"])')
        lines.append(
            f"  |> aggregateWindow(every: v.windowPeriod, fn: {query.aggregate}, createEmpty: false)"
        )
    elif query.shape == "hourly_increase":
        lines += [
            '  |> group(columns: ["thing", "_field"])',
            "  |> aggregateWindow(every: 1h, fn: max, createEmpty: false)",
            "  |> difference(nonNegative: true)",
        ]
    elif query.shape == "latest":
        lines += ["  |> last()", '  |> group(columns: ["thing", "_field"])', '  |> sort(columns: ["_time"])']
    elif query.shape == "mean_24h":
        lines += ['  |> group(columns: ["thing", "_field"])', "  |> mean()"]
    elif query.shape == "last_seen":
        lines += [
            "  |> last()",
            '  |> group(columns: ["thing"])',
            '  |> sort(columns: ["_time"], desc: true)',
            "  |> limit(n: 1)",
            '  |> keep(columns: ["_time", "thing", "source"])',
            '  |> rename(columns: {_time: "Time"})',
            "  |> group()",
        ]
    else:
        raise ValueError(f"unknown query shape {query.shape!r}")
    return {"refId": query.ref, "datasource": DATASOURCE, "query": "\n".join(lines)}


DATASOURCE = {"type": "influxdb", "uid": "${datasource}"}


# -- panels ---------------------------------------------------------------------------------------------


def steps(base: str, *levels: tuple[float, str]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}, *({"color": c, "value": v} for v, c in levels)],
    }


@dataclass
class Panel:
    title: str
    kind: str
    queries: list[Query]
    width: int
    height: int = 8
    description: str = ""
    thresholds: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    #: per query ref: extra field properties (display name, mappings, axis placement)
    per_query: dict[str, dict[str, Any]] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)


def _unit_of(queries: list[Query]) -> str:
    units = {grafana_unit(q.measurement) for q in queries if q.shape != "last_seen"}
    return units.pop() if len(units) == 1 else "none"


def render_panel(
    panel: Panel, panel_id: int, x: int, y: int, language: Callable[[Query], dict[str, Any]]
) -> dict[str, Any]:
    default_unit = _unit_of(panel.queries)
    overrides = []
    for query in panel.queries:
        properties = dict(panel.per_query.get(query.ref, {}))
        if query.shape != "last_seen" and grafana_unit(query.measurement) != default_unit:
            properties["unit"] = grafana_unit(query.measurement)
        if properties:
            overrides.append(
                {
                    "matcher": {"id": "byFrameRefID", "options": query.ref},
                    "properties": [{"id": k, "value": v} for k, v in properties.items()],
                }
            )
    defaults: dict[str, Any] = {"unit": default_unit, **panel.defaults}
    if panel.thresholds is not None:
        defaults["thresholds"] = panel.thresholds
    if panel.custom:
        defaults["custom"] = panel.custom
    rendered: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": overrides},
        "options": panel.options,
        "targets": [language(q) for q in panel.queries],
    }
    if panel.description:
        rendered["description"] = panel.description
    if panel.transformations:
        rendered["transformations"] = panel.transformations
    return rendered


BY_THING = "${__field.labels.thing}"
LEGEND = {"displayMode": "list", "placement": "bottom", "showLegend": True}
TOOLTIP = {"mode": "multi", "sort": "desc"}
LINES = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "spanNulls": 600000, "showPoints": "never"}
DASHED = {"mode": "dashed"}


def timeseries(title: str, queries: list[Query], width: int, **extra: Any) -> Panel:
    custom = {**LINES, **extra.pop("custom", {})}
    if extra.get("thresholds") is not None:
        custom["thresholdsStyle"] = DASHED
    return Panel(
        title,
        "timeseries",
        queries,
        width,
        custom=custom,
        options={"legend": LEGEND, "tooltip": TOOLTIP},
        defaults={"displayName": BY_THING, **extra.pop("defaults", {})},
        **extra,
    )


def bargauge(title: str, query: Query, width: int, thresholds: dict[str, Any], **extra: Any) -> Panel:
    return Panel(
        title,
        "bargauge",
        [query],
        width,
        thresholds=thresholds,
        options={
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        defaults={"displayName": BY_THING, "min": 0, **extra.pop("defaults", {})},
        **extra,
    )


def _row(title: str) -> Panel:
    return Panel(title, "row", [], 24, height=1)


def _boolean_mapping(
    true_text: str, true_color: str, false_text: str, false_color: str
) -> list[dict[str, Any]]:
    return [
        {
            "type": "value",
            "options": {
                "true": {"text": true_text, "color": true_color, "index": 0},
                "false": {"text": false_text, "color": false_color, "index": 1},
            },
        }
    ]


PANELS: list[Panel] = [
    _row("Air quality"),
    timeseries(
        "PM2.5",
        [Query("A", "pm25")],
        12,
        description=(
            f"Dashed lines: WHO 2021 24-hour guideline ({PM25_WHO_24H} µg/m³; a 24-hour mean, drawn "
            f"for reference), the hub's alert levels pm25-high ({PM25_HIGH}) and pm25-very-high "
            f"({PM25_VERY_HIGH}), each tripped when exceeded for 10 minutes (docs/alerts.md)."
        ),
        thresholds=steps("green", (PM25_WHO_24H, "yellow"), (PM25_HIGH, "orange"), (PM25_VERY_HIGH, "red")),
        defaults={"min": 0},
    ),
    timeseries(
        "PM10",
        [Query("A", "pm10")],
        12,
        description=(
            f"Dashed lines: WHO 2021 24-hour guideline ({PM10_WHO_24H} µg/m³, for reference), the hub's "
            f"alert levels pm10-high ({PM10_HIGH}) and pm10-very-high ({PM10_VERY_HIGH}), each tripped "
            "when exceeded for 10 minutes (docs/alerts.md)."
        ),
        thresholds=steps("green", (PM10_WHO_24H, "yellow"), (PM10_HIGH, "orange"), (PM10_VERY_HIGH, "red")),
        defaults={"min": 0},
    ),
    bargauge(
        "PM2.5, mean of the last 24 hours",
        Query("A", "pm25", shape="mean_24h"),
        12,
        steps("green", (PM25_WHO_24H, "orange"), (PM25_EU_DAILY_2030, "red")),
        height=6,
        description=(
            f"The 24-hour mean is what the guideline values are defined on: orange above the WHO guideline "
            f"({PM25_WHO_24H} µg/m³), red above the EU daily limit from 2030 ({PM25_EU_DAILY_2030} µg/m³)."
        ),
    ),
    bargauge(
        "PM10, mean of the last 24 hours",
        Query("A", "pm10", shape="mean_24h"),
        12,
        steps("green", (PM10_WHO_24H, "orange"), (PM10_EU_DAILY, "red")),
        height=6,
        description=(
            f"Orange above the WHO guideline ({PM10_WHO_24H} µg/m³, also the EU daily limit from 2030), "
            f"red above the EU daily limit in force ({PM10_EU_DAILY} µg/m³)."
        ),
    ),
    _row("Climate and noise"),
    timeseries(
        "Temperature and humidity",
        [Query("A", "temperature"), Query("B", "humidity")],
        12,
        description="Temperature on the left axis, relative humidity (dashed) on the right.",
        per_query={
            "A": {"displayName": f"{BY_THING} temperature"},
            "B": {
                "displayName": f"{BY_THING} humidity",
                "custom.axisPlacement": "right",
                "custom.lineStyle": {"fill": "dash", "dash": [10, 10]},
                "min": 0,
                "max": 100,
            },
        },
    ),
    timeseries(
        "Noise",
        [Query("A", "noise")],
        12,
        description=(
            f"Dashed line: noise-loud, tripped above {NOISE_LOUD} dB(A) for 15 minutes (docs/alerts.md)."
        ),
        thresholds=steps("green", (NOISE_LOUD, "orange")),
    ),
    _row("Power"),
    timeseries("Power of plugs", [Query("A", "power")], 12, defaults={"min": 0}),
    timeseries(
        "Energy per hour",
        [Query("A", "energy", shape="hourly_increase")],
        12,
        description="The rise of each plug's energy counter per hour (a counter reset is not counted).",
        custom={"drawStyle": "bars", "fillOpacity": 60, "lineWidth": 1},
        defaults={"min": 0},
    ),
    _row("Safety and devices"),
    Panel(
        "Water leaks and contacts",
        "state-timeline",
        [Query("A", "water_leak", aggregate="last"), Query("B", "contact", aggregate="last")],
        24,
        height=7,
        options={
            "mergeValues": True,
            "showValue": "auto",
            "alignValue": "left",
            "rowHeight": 0.9,
            "legend": LEGEND,
        },
        custom={"fillOpacity": 70, "lineWidth": 0},
        per_query={
            "A": {
                "displayName": f"{BY_THING} water leak",
                "mappings": _boolean_mapping("leak", "red", "dry", "green"),
            },
            "B": {
                "displayName": f"{BY_THING} contact",
                "mappings": _boolean_mapping("closed", "blue", "open", "yellow"),
            },
        },
    ),
    bargauge(
        "Battery",
        Query("A", "battery", shape="latest"),
        12,
        steps("red", (BATTERY_LOW, "orange"), (BATTERY_CLEAR, "green")),
        height=9,
        defaults={"max": 100},
        description=(
            f"Last battery level of every thing in the time range; battery-low trips below {BATTERY_LOW} % "
            f"and clears above {BATTERY_CLEAR} % (docs/alerts.md)."
        ),
    ),
    Panel(
        "Last seen",
        "table",
        [Query("A", "", shape="last_seen")],
        12,
        height=9,
        description=f"The newest reading of each thing within the last {LAST_SEEN_WINDOW}, oldest first.",
        options={
            "showHeader": True,
            "cellHeight": "sm",
            "sortBy": [{"displayName": "Last seen", "desc": False}],
        },
        transformations=[
            {"id": "filterFieldsByName", "options": {"include": {"names": ["Time", "thing", "source"]}}},
            {
                "id": "organize",
                "options": {
                    "indexByName": {"thing": 0, "Time": 1, "source": 2},
                    "renameByName": {"thing": "Thing", "Time": "Last seen", "source": "Source"},
                },
            },
        ],
        per_query={},
    ),
]


def _last_seen_overrides(panel: dict[str, Any]) -> None:
    # The time column reads as "3 minutes ago"; overrides address it by its name after organize.
    panel["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byName", "options": "Last seen"},
            "properties": [{"id": "unit", "value": "dateTimeFromNow"}],
        }
    ]


# -- dashboards -----------------------------------------------------------------------------------------


def _layout(language: Callable[[Query], dict[str, Any]]) -> list[dict[str, Any]]:
    rendered = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(PANELS, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        if panel.kind == "row":
            rendered.append(
                {
                    "id": panel_id,
                    "type": "row",
                    "title": panel.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                }
            )
            y += 1
            continue
        item = render_panel(panel, panel_id, x, y, language)
        if panel.title == "Last seen":
            _last_seen_overrides(item)
        rendered.append(item)
        x += panel.width
        row_height = max(row_height, panel.height)
        if x >= 24:
            x, y, row_height = 0, y + row_height, 0
    return rendered


def _datasource_variable(name: str, uid: str) -> dict[str, Any]:
    return {
        "type": "datasource",
        "name": "datasource",
        "label": "Data source",
        "query": "influxdb",
        "regex": "",
        "current": {"text": name, "value": uid},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }


def _query_variable(
    name: str, label: str, query: str, *, multi: bool, current: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 1,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "current": current,
        "hide": 0,
        "regex": "",
        "options": [],
    }


ALL = {"text": ["All"], "value": ["$__all"]}
THING_VALUES_INFLUXQL = f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY = "thing"'
THING_VALUES_FLUX = (
    'import "influxdata/influxdb/schema"\n\n'
    f'schema.measurementTagValues(bucket: "${{bucket}}", measurement: "{MEASUREMENT}", tag: "thing")'
)
BUCKETS_FLUX = (
    "buckets()\n"
    "  |> filter(fn: (r) => r.name !~ /^_/)\n"
    '  |> rename(columns: {name: "_value"})\n'
    '  |> keep(columns: ["_value"])'
)


def dashboard(language: str) -> dict[str, Any]:
    """The dashboard for ``influxql`` (InfluxDB 1.x) or ``flux`` (InfluxDB 2.x)."""
    if language == "influxql":
        title, uid = "Neighborhood (InfluxDB 1.x)", "neighborhood-hub-influxql"
        variables = [
            _datasource_variable("Neighborhood Hub (InfluxQL)", "hub-influxql"),
            _query_variable("thing", "Thing", THING_VALUES_INFLUXQL, multi=True, current=ALL),
        ]
        panels = _layout(influxql)
    elif language == "flux":
        title, uid = "Neighborhood (InfluxDB 2.x)", "neighborhood-hub-flux"
        variables = [
            _datasource_variable("Neighborhood Hub (Flux)", "hub-flux"),
            _query_variable(
                "bucket", "Bucket", BUCKETS_FLUX, multi=False, current={"text": "hub", "value": "hub"}
            ),
            _query_variable("thing", "Thing", THING_VALUES_FLUX, multi=True, current=ALL),
        ]
        panels = _layout(flux)
    else:
        raise ValueError(f"unknown query language {language!r}: influxql or flux")
    return {
        "uid": uid,
        "title": title,
        "description": 'Readings of the neighborhood hub: measurement "reading", tags thing and source.',
        "tags": ["neighborhood-hub"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": variables},
        "panels": panels,
    }


def dashboard_text(language: str) -> str:
    """The dashboard as it is committed: indented JSON, non-ASCII kept, one newline at the end."""
    return json.dumps(dashboard(language), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for language in ("influxql", "flux"):
        path = HERE / language / "neighborhood.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(dashboard_text(language), encoding="utf-8")


if __name__ == "__main__":
    main()
