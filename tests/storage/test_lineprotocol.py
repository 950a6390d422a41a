"""Line protocol for the ``reading`` measurement: exact text, and what a real InfluxDB 1.x reads from it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from hub.storage.influx import InfluxV1Sink
from hub.storage.lineprotocol import encode
from hub.storage.sink import Point

T0 = 1_700_000_000_123_456_789


def line(thing: str = "t1", source: str = "native", values: dict | None = None, time_ns: int = T0) -> str:
    return encode(
        [Point(thing, source, values if values is not None else {"temperature": 21.5}, time_ns)]
    ).decode()


def test_one_point_is_measurement_tags_fields_and_ns_timestamp() -> None:
    assert line() == "reading,thing=t1,source=native temperature=21.5 1700000000123456789"


def test_integer_valued_floats_and_ints_stay_floats_without_i_suffix() -> None:
    text = line(values={"temperature": 21.0, "battery": 97, "rssi": -70})
    assert (
        text == "reading,thing=t1,source=native temperature=21.0,battery=97.0,rssi=-70.0 1700000000123456789"
    )


def test_booleans_are_true_and_false_not_numbers() -> None:
    assert (
        line(values={"water_leak": True, "contact": False}).split(" ")[1] == "water_leak=true,contact=false"
    )


def test_tag_values_escape_comma_space_and_equals() -> None:
    text = line(thing="cellar flood,1=a", source="zig bee")
    assert text.startswith(r"reading,thing=cellar\ flood\,1\=a,source=zig\ bee ")


def test_backslash_is_literal_but_a_trailing_one_is_dropped() -> None:
    assert line(thing=r"a\b").startswith(r"reading,thing=a\b,")
    assert line(thing="a\\").startswith("reading,thing=a,")


def test_newline_in_a_tag_cannot_split_the_line() -> None:
    text = line(thing="evil\nreading,thing=x v=1")
    assert "\n" not in text
    assert text.startswith(r"reading,thing=evil\nreading\,thing\=x\ v\=1,source=native ")


def test_field_keys_are_escaped_like_tags() -> None:
    assert (
        line(values={"odd key,=x": 1.5})
        == r"reading,thing=t1,source=native odd\ key\,\=x=1.5 1700000000123456789"
    )


def test_empty_tag_is_left_out() -> None:
    assert line(source="") == "reading,thing=t1 temperature=21.5 1700000000123456789"


def test_nan_and_infinity_are_left_out_and_a_point_without_fields_vanishes() -> None:
    assert line(values={"a": math.nan, "b": 1.0, "c": math.inf, "d": -math.inf}).split(" ")[1] == "b=1.0"
    assert encode([Point("t1", "native", {"a": math.nan}, T0), Point("t2", "native", {}, T0)]) == b""


def test_points_are_joined_by_newlines_and_utf8_encoded() -> None:
    body = encode(
        [Point("küche", "native", {"temperature": 1.0}, 1), Point("t2", "native", {"humidity": 2.0}, 2)]
    )
    assert body.decode().split("\n") == [
        "reading,thing=küche,source=native temperature=1.0 1",
        "reading,thing=t2,source=native humidity=2.0 2",
    ]
    assert encode([]) == b""


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_reads_back_exactly(value: float) -> None:
    field = line(values={"v": value}).split(" ")[1]
    text = field.removeprefix("v=")
    assert "i" not in text
    assert float(text) == value
    assert math.copysign(1, float(text)) == math.copysign(1, value)


def test_awkward_names_and_values_round_trip_through_influxdb_1x(influxdb_v1) -> None:
    influxdb_v1.create_database("lp_roundtrip")
    things = [r"a\b", "a\\", r"d\,e", "e,f g=h", "x\ny", "küche", "plain"]
    values = [21.0, 0.1, -0.0, 1e-300, 1.7976931348623157e308, 123456789.12345679, 5e-324]
    points = [
        Point(
            thing,
            "zig bee,2",
            {"temperature": values[i], "water_leak": i % 2 == 0, "odd key=": float(i)},
            T0 + i,
        )
        for i, thing in enumerate(things)
    ]
    sink = InfluxV1Sink(influxdb_v1.url, "lp_roundtrip")
    sink.write_lines(encode(points))
    sink.close()

    rows = influxdb_v1.rows("lp_roundtrip", "SELECT * FROM reading ORDER BY time")
    expected_things = [r"a\b", "a", r"d\,e", "e,f g=h", r"x\ny", "küche", "plain"]
    assert [row["thing"] for row in rows] == expected_things
    assert {row["source"] for row in rows} == {"zig bee,2"}
    assert [row["time"] for row in rows] == [T0 + i for i in range(len(things))]
    assert [row["temperature"] for row in rows] == values
    assert [row["water_leak"] for row in rows] == [i % 2 == 0 for i in range(len(things))]
    assert [row["odd key="] for row in rows] == [float(i) for i in range(len(things))]
    field_types = {r["fieldKey"]: r["fieldType"] for r in influxdb_v1.rows("lp_roundtrip", "SHOW FIELD KEYS")}
    assert field_types == {"temperature": "float", "water_leak": "boolean", "odd key=": "float"}
