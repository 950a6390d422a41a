"""InfluxV1Sink against a real InfluxDB 1.6.7, InfluxV2Sink against a real VictoriaMetrics (/api/v2/write)."""

from __future__ import annotations

import time

import pytest

from hub.storage.influx import InfluxV1Sink, InfluxV2Sink
from hub.storage.lineprotocol import encode
from hub.storage.sink import LineSink, Point, SinkRejected, SinkUnavailable

T0 = 1_700_000_000_000_000_000


def batch(n: int, prefix: str = "thing") -> list[Point]:
    """n points over 50 things and two sources, with values that differ per point."""
    return [
        Point(
            f"{prefix}-{i % 50}",
            "native" if i % 3 else "zigbee2mqtt",
            {
                "temperature": round(15 + i * 0.01, 2),
                "battery": float(100 - i % 100),
                "water_leak": i % 7 == 0,
            },
            T0 + i * 1_000_000,
        )
        for i in range(n)
    ]


def test_sinks_satisfy_the_line_sink_protocol() -> None:
    sinks: list[LineSink] = [
        InfluxV1Sink("http://127.0.0.1:1", "hub"),
        InfluxV2Sink("http://127.0.0.1:1", "o", "b", "t"),
    ]
    assert [s.kind for s in sinks] == ["influxdb-v1", "influxdb-v2"]
    for sink in sinks:
        sink.close()


def test_v1_batch_of_5000_points_reads_back_exactly(influxdb_v1) -> None:
    influxdb_v1.create_database("batch5000")
    points = batch(5000)
    sink = InfluxV1Sink(influxdb_v1.url, "batch5000")
    sink.write_lines(encode(points))
    sink.close()

    (counts,) = influxdb_v1.rows("batch5000", "SELECT count(*) FROM reading")
    assert (counts["count_temperature"], counts["count_battery"], counts["count_water_leak"]) == (
        5000,
        5000,
        5000,
    )
    rows = influxdb_v1.rows(
        "batch5000", "SELECT temperature, battery, water_leak FROM reading GROUP BY thing, source"
    )
    got = {
        (r["time"], r["thing"], r["source"]): (r["temperature"], r["battery"], r["water_leak"]) for r in rows
    }
    want = {
        (p.time_ns, p.thing, p.source): (p.values["temperature"], p.values["battery"], p.values["water_leak"])
        for p in points
    }
    assert got == want
    assert [s["name"] for s in influxdb_v1.query("batch5000", "SHOW MEASUREMENTS")] == ["measurements"]
    assert influxdb_v1.rows("batch5000", "SHOW MEASUREMENTS") == [{"name": "reading"}]
    assert {r["tagKey"] for r in influxdb_v1.rows("batch5000", "SHOW TAG KEYS FROM reading")} == {
        "thing",
        "source",
    }
    field_types = {r["fieldKey"]: r["fieldType"] for r in influxdb_v1.rows("batch5000", "SHOW FIELD KEYS")}
    assert field_types == {"temperature": "float", "battery": "float", "water_leak": "boolean"}


def test_v1_creates_a_missing_database_on_first_write(influxdb_v1) -> None:
    sink = InfluxV1Sink(influxdb_v1.url, "created_by_sink")
    sink.write_lines(encode([Point("t1", "native", {"temperature": 20.5}, T0)]))
    sink.close()
    assert {"name": "created_by_sink"} in influxdb_v1.rows("", "SHOW DATABASES")
    assert influxdb_v1.rows("created_by_sink", "SELECT * FROM reading") == [
        {"time": T0, "thing": "t1", "source": "native", "temperature": 20.5}
    ]


def test_v1_field_type_conflict_is_rejected_with_the_server_text(influxdb_v1) -> None:
    influxdb_v1.create_database("conflict")
    sink = InfluxV1Sink(influxdb_v1.url, "conflict")
    sink.write_lines(encode([Point("t1", "native", {"state": 1.0}, T0)]))
    with pytest.raises(SinkRejected, match=r'field type conflict: input field "state"') as caught:
        sink.write_lines(encode([Point("t1", "native", {"state": True}, T0 + 1)]))
    assert influxdb_v1.url in str(caught.value)
    sink.close()


def test_v1_unparsable_line_is_rejected(influxdb_v1) -> None:
    influxdb_v1.create_database("garbage")
    sink = InfluxV1Sink(influxdb_v1.url, "garbage")
    with pytest.raises(SinkRejected, match="unable to parse 'garbage'"):
        sink.write_lines(b"garbage")
    sink.close()


def test_v1_missing_retention_policy_waits_for_the_operator(influxdb_v1) -> None:
    influxdb_v1.create_database("with_rp")
    sink = InfluxV1Sink(influxdb_v1.url, "with_rp", retention_policy="one_year")
    body = encode([Point("t1", "native", {"temperature": 1.0}, time.time_ns())])
    with pytest.raises(SinkUnavailable, match="retention policy not found: one_year"):
        sink.write_lines(body)
    influxdb_v1.query("with_rp", 'CREATE RETENTION POLICY one_year ON "with_rp" DURATION 52w REPLICATION 1')
    sink.write_lines(body)
    assert len(influxdb_v1.rows("with_rp", 'SELECT * FROM "with_rp"."one_year".reading')) == 1
    sink.close()


def test_v1_stopped_server_is_unavailable_and_the_message_names_the_host(influxdb_v1_factory) -> None:
    server = influxdb_v1_factory()
    server.create_database("hub")
    sink = InfluxV1Sink(server.url, "hub")
    sink.write_lines(encode([Point("t1", "native", {"temperature": 1.0}, T0)]))
    assert sink.ping() is True

    server.stop()
    with pytest.raises(SinkUnavailable) as caught:
        sink.write_lines(encode([Point("t1", "native", {"temperature": 2.0}, T0 + 1)]))
    assert (
        str(caught.value)
        == f"InfluxDB at {server.url} refused the connection; is it running? (timeseries.url)"
    )
    assert sink.ping() is False

    # The same sink (and connection pool) carries on once the server is back.
    server.start()
    sink.write_lines(encode([Point("t1", "native", {"temperature": 3.0}, T0 + 2)]))
    assert [r["temperature"] for r in server.rows("hub", "SELECT temperature FROM reading")] == [1.0, 3.0]
    sink.close()


def test_v1_server_that_does_not_answer_times_out_as_unavailable(influxdb_v1_factory) -> None:
    server = influxdb_v1_factory()
    sink = InfluxV1Sink(server.url, "hub", timeout=0.5)
    server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(SinkUnavailable, match=rf"^InfluxDB at {server.url} did not answer within 0.5 s"):
            sink.write_lines(encode([Point("t1", "native", {"temperature": 1.0}, T0)]))
        assert time.monotonic() - started < 5
    finally:
        server.resume()
    sink.close()


def test_v1_basic_auth_with_a_database_user(influxdb_v1_factory) -> None:
    server = influxdb_v1_factory(auth=True)
    server.create_database("hub")
    server.create_user("recorder", "s3cret", read_write_on="hub")
    body = encode([Point("t1", "native", {"temperature": 1.0}, T0)])

    wrong = InfluxV1Sink(server.url, "hub", username="recorder", password="wrong")
    with pytest.raises(
        SinkUnavailable, match=r"refused the credentials .*check timeseries\.username/password"
    ):
        wrong.write_lines(body)
    wrong.close()

    sink = InfluxV1Sink(server.url, "hub", username="recorder", password="s3cret")
    sink.write_lines(body)
    assert len(server.rows("hub", "SELECT * FROM reading")) == 1
    # Not an admin: a missing database cannot be created, so the batch must wait for the operator.
    elsewhere = InfluxV1Sink(server.url, "other", username="recorder", password="s3cret")
    with pytest.raises(SinkUnavailable, match=r"no database 'other' .*could not create it"):
        elsewhere.write_lines(body)
    sink.close()
    elsewhere.close()


def test_v2_writes_to_victoria_metrics_and_reads_back_via_export(victoria_metrics) -> None:
    points = batch(5000, prefix="v2export")
    sink = InfluxV2Sink(victoria_metrics.url, org="neighborhood", bucket="hub", token="anything")
    assert sink.ping() is True
    sink.write_lines(encode(points))
    sink.close()

    series = victoria_metrics.export('{__name__=~"reading_.*", thing=~"v2export-.*"}')
    got = {}
    for s in series:
        field = s["metric"]["__name__"].removeprefix("reading_")
        for value, ms in zip(s["values"], s["timestamps"], strict=True):
            got[(field, s["metric"]["thing"], s["metric"]["source"], ms)] = value
    want = {}
    for p in points:
        for field, value in p.values.items():
            want[(field, p.thing, p.source, p.time_ns // 1_000_000)] = float(value)
    assert len(got) == 15_000
    assert got == want


def test_v2_stopped_server_is_unavailable_and_the_message_names_the_host(victoria_metrics_factory) -> None:
    server = victoria_metrics_factory()
    sink = InfluxV2Sink(server.url, org="o", bucket="b", token="t", timeout=2)
    server.stop()
    with pytest.raises(SinkUnavailable) as caught:
        sink.write_lines(encode([Point("t1", "native", {"temperature": 1.0}, T0)]))
    assert (
        str(caught.value)
        == f"InfluxDB at {server.url} refused the connection; is it running? (timeseries.url)"
    )
    assert sink.ping() is False

    server.start()
    sink.write_lines(encode([Point("v2restart", "native", {"temperature": 2.0}, T0)]))
    (series,) = server.export('{thing="v2restart"}')
    assert series["values"] == [2.0]
    sink.close()


def test_v2_missing_endpoint_is_unavailable_naming_bucket_settings(influxdb_v1) -> None:
    # InfluxDB 1.6 has no /api/v2/write: a v2 sink pointed at it must wait for the operator, not drop data.
    sink = InfluxV2Sink(influxdb_v1.url, org="o", bucket="b", token="t")
    with pytest.raises(
        SinkUnavailable, match=rf"^InfluxDB at {influxdb_v1.url} has no such target .*timeseries.org/bucket"
    ):
        sink.write_lines(encode([Point("t1", "native", {"temperature": 1.0}, T0)]))
    sink.close()


@pytest.mark.parametrize(
    "url", ["influxdb://127.0.0.1:8086", "127.0.0.1:8086", "http://user:pw@127.0.0.1:8086"]
)
def test_bad_urls_are_refused_up_front(url: str) -> None:
    with pytest.raises(ValueError, match=r"timeseries\.url"):
        InfluxV1Sink(url, "hub")
