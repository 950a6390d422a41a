"""InfluxV1History against a real InfluxDB 1.6.7: what the sink wrote comes back bucketed for charts."""

from __future__ import annotations

import pytest

from hub.storage.embedded import EmbeddedSink
from hub.storage.history import HistoryUnavailable, InfluxV1History, history_for
from hub.storage.influx import InfluxV1Sink, InfluxV2Sink
from hub.storage.lineprotocol import encode
from hub.storage.sink import Point

S = 1_000_000_000
T0 = 1_700_000_000 * S  # not a whole hour: buckets must start at the range's start, not the epoch's hours


def write_day(url: str, database: str) -> None:
    """24 h of a flood sensor every 10 minutes: temperature 10.0, 10.1, …; a leak in the last hour."""
    points = [
        Point(
            "street-flood",
            "native",
            {"temperature": round(10 + i * 0.1, 1), "water_leak": i >= 138},
            T0 + i * 600 * S,
        )
        for i in range(144)
    ]
    points.append(Point("other-sensor", "native", {"temperature": 99.0}, T0))
    sink = InfluxV1Sink(url, database)
    try:
        sink.write_lines(encode(points))
    finally:
        sink.close()


def test_history_returns_every_point_when_buckets_are_finer_than_the_data(influxdb_v1) -> None:
    write_day(influxdb_v1.url, "hist_all")
    reader = InfluxV1History(influxdb_v1.url, "hist_all")
    try:
        points = reader.history("street-flood", "temperature", T0, T0 + 86_400 * S, max_points=144)
    finally:
        reader.close()
    assert len(points) == 144
    assert points[0] == (T0, 10.0)
    assert points[-1][0] == T0 + 143 * 600 * S
    assert points[-1][1] == pytest.approx(24.3)


def test_history_averages_numbers_per_bucket_and_keeps_other_things_out(influxdb_v1) -> None:
    write_day(influxdb_v1.url, "hist_mean")
    reader = InfluxV1History(influxdb_v1.url, "hist_mean")
    try:
        # 24 buckets of one hour: six points each, mean of 10.0..10.5 is 10.25
        points = reader.history("street-flood", "temperature", T0, T0 + 86_400 * S, max_points=24)
    finally:
        reader.close()
    assert len(points) == 24
    assert [t for t, _ in points] == [T0 + h * 3600 * S for h in range(24)]
    assert points[0][1] == pytest.approx(10.25)
    assert all(v < 99 for _, v in points), "another thing's value leaked into the series"


def test_history_of_a_boolean_is_the_last_value_per_bucket(influxdb_v1) -> None:
    write_day(influxdb_v1.url, "hist_bool")
    reader = InfluxV1History(influxdb_v1.url, "hist_bool")
    try:
        points = reader.history("street-flood", "water_leak", T0, T0 + 86_400 * S, max_points=24)
    finally:
        reader.close()
    assert [v for _, v in points] == [False] * 23 + [True]
    assert all(isinstance(v, bool) for _, v in points)


def test_history_of_an_unknown_thing_or_database_is_empty(influxdb_v1) -> None:
    write_day(influxdb_v1.url, "hist_empty")
    reader = InfluxV1History(influxdb_v1.url, "hist_empty")
    missing = InfluxV1History(influxdb_v1.url, "no_such_database")
    try:
        assert reader.history("nobody's-thing", "temperature", T0, T0 + 86_400 * S) == []
        assert missing.history("street-flood", "temperature", T0, T0 + 86_400 * S) == []
    finally:
        reader.close()
        missing.close()


def test_a_quote_in_the_thing_id_cannot_widen_the_query(influxdb_v1) -> None:
    write_day(influxdb_v1.url, "hist_quote")
    reader = InfluxV1History(influxdb_v1.url, "hist_quote")
    try:
        points = reader.history("x' OR thing = 'other-sensor", "temperature", T0, T0 + 86_400 * S)
    finally:
        reader.close()
    assert points == []


def test_an_unreachable_server_is_reported_with_the_key_to_check() -> None:
    reader = InfluxV1History("http://127.0.0.1:1", "hub", timeout=2)
    try:
        with pytest.raises(HistoryUnavailable, match=r"timeseries\.url"):
            reader.history("street-flood", "temperature", T0, T0 + 3600 * S)
    finally:
        reader.close()


def test_history_for_pairs_each_sink_with_its_reader(tmp_path) -> None:
    embedded = EmbeddedSink(tmp_path)
    v1 = InfluxV1Sink("http://127.0.0.1:1", "hub")
    v2 = InfluxV2Sink("http://127.0.0.1:1", "o", "b", "t")
    try:
        assert history_for(embedded) is embedded
        reader = history_for(v1)
        assert isinstance(reader, InfluxV1History) and reader.database == "hub"
        assert history_for(v2) is None
    finally:
        embedded.close()
        v1.close()
        v2.close()
