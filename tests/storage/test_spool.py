"""The durable spool: survives reopening, hands out the oldest first, and drops (counted) past its bound."""

from __future__ import annotations

from pathlib import Path

from hub.storage.spool import Spool


def test_batches_survive_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1 << 20)
    spool.append(b"reading,thing=a,source=native temperature=1.0 1", 1)
    spool.append(
        b"reading,thing=b,source=native temperature=2.0 2\nreading,thing=b,source=native temperature=3.0 3", 2
    )
    spool.close()

    again = Spool(tmp_path / "spool.sqlite", max_bytes=1 << 20)
    assert (again.batches, again.points) == (2, 3)
    ids, body, points = again.oldest(max_points=5000)
    assert points == 3 and len(ids) == 2
    assert body.splitlines()[0].endswith(b"temperature=1.0 1")
    again.remove(ids)
    assert (again.batches, again.points, again.bytes) == (0, 0, 0)


def test_oldest_respects_the_batch_size(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1 << 20)
    for i in range(5):
        spool.append(b"x" * 10, 3000 + i)
    ids, _body, points = spool.oldest(max_points=5000)
    assert len(ids) == 1 and points == 3000
    spool.remove(ids)
    assert spool.points == 3001 + 3002 + 3003 + 3004


def test_past_its_bound_the_oldest_is_dropped_and_counted(tmp_path: Path) -> None:
    dropped: list[int] = []
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1000, on_drop=dropped.append)
    for i in range(30):
        spool.append(bytes([65 + i % 26]) * 100, 10)
    assert spool.bytes <= 1000
    assert spool.points == spool.batches * 10
    assert spool.dropped_points == 300 - spool.points
    assert sum(dropped) == spool.dropped_points
    _ids, body, _points = spool.oldest(10)
    assert body == bytes([65 + (30 - spool.batches) % 26]) * 100  # the newest batches are the ones kept


def test_a_batch_larger_than_the_bound_is_kept_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_bytes=1000)
    spool.append(b"a" * 400, 4)
    spool.append(b"b" * 1500, 15)  # the newest readings are never the ones dropped
    assert spool.usage() == (1, 15, 1500)
    assert spool.dropped_points == 4
    spool.append(b"c" * 100, 1)
    assert spool.usage() == (1, 1, 100)
