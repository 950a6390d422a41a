"""The embedded time-series sink on a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.storage.embedded import EmbeddedSink, EmbeddedSinkError
from hub.storage.sink import Point

S = 1_000_000_000  # ns per second
T0 = 1_750_000_000 * S


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[EmbeddedSink]:
    s = EmbeddedSink(tmp_path / "data")
    yield s
    s.close()


def test_points_written_are_read_back_in_time_order(sink: EmbeddedSink) -> None:
    sink.write_points(
        [
            Point("air-1", "native", {"temperature": 21.5, "pm25": 7.0}, T0 + 2 * S),
            Point("air-1", "native", {"temperature": 21.0}, T0),
            Point("air-2", "tasmota", {"temperature": 30.0}, T0 + S),
        ]
    )

    assert sink.history("air-1", "temperature", T0) == [(T0, 21.0), (T0 + 2 * S, 21.5)]
    assert sink.history("air-1", "pm25", T0) == [(T0 + 2 * S, 7.0)]
    assert sink.history("air-1", "temperature", T0 + S, T0 + 2 * S) == []  # until is exclusive
    assert sink.count() == 4
    assert sink.count("air-1") == 3
    assert sink.count("nobody") == 0


def test_the_data_survives_reopening_the_file(tmp_path: Path) -> None:
    first = EmbeddedSink(tmp_path)
    first.write_points([Point("t", "native", {"noise": 55.0}, T0)])
    first.close()

    again = EmbeddedSink(tmp_path / "timeseries.sqlite")
    assert again.history("t", "noise", 0) == [(T0, 55.0)]
    again.close()


def test_booleans_come_back_as_booleans(sink: EmbeddedSink) -> None:
    sink.write_points(
        [
            Point("basement", "native", {"water_leak": False, "humidity": 1.0}, T0),
            Point("basement", "native", {"water_leak": True, "humidity": 0.0}, T0 + S),
        ]
    )

    leak = sink.history("basement", "water_leak", T0)
    humidity = sink.history("basement", "humidity", T0)

    assert leak == [(T0, False), (T0 + S, True)]
    assert [type(v) for _, v in leak] == [bool, bool]
    assert [type(v) for _, v in humidity] == [float, float]


def test_replaying_a_point_overwrites_it(sink: EmbeddedSink) -> None:
    sink.write_points([Point("t", "native", {"temperature": 20.0, "contact": True}, T0)])
    sink.write_points([Point("t", "native", {"temperature": 20.0, "contact": True}, T0)])
    sink.write_points([Point("t", "native", {"temperature": 25.0}, T0)])

    assert sink.count() == 2
    assert sink.history("t", "temperature", T0) == [(T0, 25.0)]
    assert sink.history("t", "contact", T0) == [(T0, True)]


def test_non_finite_values_are_skipped_not_fatal(sink: EmbeddedSink) -> None:
    sink.write_points([Point("t", "native", {"temperature": float("nan"), "humidity": 40.0}, T0)])

    assert sink.count() == 1
    assert sink.skipped == 1


def test_history_is_downsampled_into_time_buckets(sink: EmbeddedSink) -> None:
    # one reading a minute for a day; value = minute of the day
    day = [Point("t", "native", {"temperature": float(m)}, T0 + m * 60 * S) for m in range(1440)]
    sink.write_points(day)

    chart = sink.history("t", "temperature", T0, T0 + 86_400 * S, max_points=24)

    assert len(chart) == 24
    # each bucket is one hour: it starts on the hour and averages minutes 60h .. 60h+59
    assert chart[0] == (T0, 29.5)
    assert chart[5] == (T0 + 5 * 3600 * S, 5 * 60 + 29.5)
    assert chart[23] == (T0 + 23 * 3600 * S, 23 * 60 + 29.5)


def test_history_without_an_end_buckets_up_to_the_last_point(sink: EmbeddedSink) -> None:
    sink.write_points([Point("t", "native", {"power": float(i)}, T0 + i * S) for i in range(1000)])

    chart = sink.history("t", "power", T0, max_points=10)

    assert len(chart) == 10
    assert chart[0] == (T0, 49.5)
    assert chart[-1][1] == 949.5  # the last bucket holds the last hundred points
    assert T0 + 899 * S < chart[-1][0] <= T0 + 900 * S


def test_downsampled_booleans_keep_the_last_value_of_each_bucket(sink: EmbeddedSink) -> None:
    # door opens at second 0 of each 10 s bucket and closes at second 9
    points = [Point("door", "native", {"contact": s % 10 == 9}, T0 + s * S) for s in range(100)]
    points[-1] = Point("door", "native", {"contact": False}, T0 + 99 * S)  # the last bucket ends open
    sink.write_points(points)

    chart = sink.history("door", "contact", T0, T0 + 100 * S, max_points=10)

    assert chart == [(T0 + b * 10 * S, b != 9) for b in range(10)]


def test_prune_drops_only_points_older_than_the_retention(tmp_path: Path) -> None:
    sink = EmbeddedSink(tmp_path, retention_days=2)
    day = 86_400 * S
    sink.write_points(
        [Point("t", "native", {"temperature": float(d), "smoke": False}, T0 - d * day) for d in range(5)]
    )

    dropped = sink.prune(now_ns=T0)

    assert dropped == 2 * 2  # days 3 and 4 ago, two values each; exactly 2 days old is kept
    assert [t for t, _ in sink.history("t", "temperature", 0)] == [T0 - 2 * day, T0 - day, T0]
    assert sink.prune(now_ns=T0) == 0
    assert sink.prune(now_ns=T0 + 1) == 2
    sink.close()


def test_the_file_is_in_wal_mode(sink: EmbeddedSink) -> None:
    sink.write_points([Point("t", "native", {"temperature": 1.0}, T0)])

    with sqlite3.connect(sink.file) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_reads_from_another_thread_while_writing(sink: EmbeddedSink) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                sink.history("t", "temperature", 0)
                sink.count()
        except BaseException as e:
            errors.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    for batch in range(50):
        sink.write_points(
            [Point("t", "native", {"temperature": 1.0}, T0 + (batch * 100 + i) * S) for i in range(100)]
        )
    stop.set()
    reader.join()

    assert errors == []
    assert sink.count() == 5000


def test_an_unusable_path_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")

    with pytest.raises(EmbeddedSinkError, match=r"file/ts/timeseries\.sqlite.*storage\.path"):
        EmbeddedSink(tmp_path / "file" / "ts")


def test_the_writer_prunes_on_schedule_and_the_file_stops_growing(tmp_path: Path) -> None:
    """Twenty simulated days at a steady rate with two days of retention: the writer prunes once an hour
    of its clock, the stored values stay at two days' worth, and the file (with its log) stops growing."""
    clock = [T0 / S]
    sink = EmbeddedSink(tmp_path, retention_days=2, clock=lambda: clock[0], prune_every=3600)
    per_batch, step_s = 50, 600  # 50 things every 10 minutes
    sizes, counts = {}, {}
    for batch in range(20 * 144):
        clock[0] += step_s
        at = int(clock[0] * S)
        sink.write_points([Point(f"t{i}", "native", {"temperature": 20.0 + i}, at) for i in range(per_batch)])
        day = batch // 144
        if batch % 144 == 143:
            files = [sink.file, sink.file.with_name(sink.file.name + "-wal")]
            sizes[day] = sum(f.stat().st_size for f in files if f.exists())
            counts[day] = sink.count()
    print(f"values per day-end: {counts}\nbytes per day-end: {sizes}")
    two_days = 2 * 144 * per_batch
    for day in range(3, 20):
        assert two_days <= counts[day] <= two_days + 7 * per_batch  # at most an hour's extra
    assert sizes[19] <= sizes[5] * 1.1, "the file kept growing past the retention"
    assert sink.history("t0", "temperature", 0)[0][0] >= int((clock[0] - 2 * 86400 - 3600) * S)
    sink.close()
