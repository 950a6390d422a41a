"""The embedded time-series sink: readings in a SQLite file of its own, for `hub demo` and installs
without InfluxDB.

One narrow row per value, keyed on (thing, measurement, time_ns), so replaying a point overwrites it.
The stdlib ``sqlite3`` module rather than SQLAlchemy: this is the hot write path and needs no dialects.
Two connections: the recorder thread writes (and prunes) on one, readers (the web thread) query on the
other; each has its own lock, so a chart query never holds up a write and WAL keeps them apart.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from hub.storage.sink import Point

log = logging.getLogger(__name__)

FILE_NAME = "timeseries.sqlite"
_FILE_SUFFIXES = {".sqlite", ".sqlite3", ".db"}
_NS_PER_DAY = 86_400 * 1_000_000_000
BUSY_TIMEOUT_MS = 10_000
#: how often the writer drops what is past the retention (at most; checked when a batch is written)
PRUNE_EVERY_S = 3600.0
#: the write-ahead log is cut back to this size after a checkpoint, so it cannot grow for good either
WAL_LIMIT_BYTES = 16 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    thing TEXT NOT NULL,
    measurement TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    value REAL NOT NULL,          -- numbers as they are, booleans as 0.0 / 1.0
    is_bool INTEGER NOT NULL,     -- 1 when value is a boolean
    PRIMARY KEY (thing, measurement, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_time ON points (time_ns);
"""

_INSERT = "INSERT OR REPLACE INTO points (thing, measurement, time_ns, value, is_bool) VALUES (?, ?, ?, ?, ?)"


class EmbeddedSinkError(Exception):
    """The embedded sink's file cannot be created or opened; the message names it."""


class EmbeddedSink:
    """A PointSink in ``<path>/timeseries.sqlite`` (or ``path`` itself when it ends in .sqlite/.db).

    Values older than ``retention_days`` are dropped by the writer at most every ``prune_every``
    seconds of ``clock``; SQLite reuses the freed pages, so at a steady rate the file stops growing.
    """

    kind = "embedded"

    def __init__(
        self,
        path: Path,
        retention_days: float = 7.0,
        *,
        clock: Callable[[], float] = time.time,
        prune_every: float = PRUNE_EVERY_S,
    ) -> None:
        path = Path(path)
        self.file = path if path.suffix in _FILE_SUFFIXES else path / FILE_NAME
        self.retention_days = retention_days
        self.clock = clock
        self.prune_every = prune_every
        #: when the writer last pruned; the first prune comes one period after opening
        self._pruned_at = clock()
        #: values not written because they were NaN or infinite
        self.skipped = 0
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._writer.executescript(_SCHEMA)
            self._reader = self._connect()
        except (OSError, sqlite3.Error) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise EmbeddedSinkError(
                f"cannot open the embedded time-series file {self.file}: {reason} (storage.path)"
            ) from e
        self._reader.execute("PRAGMA query_only=ON")

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode with explicit BEGIN/COMMIT; each connection is used under its own lock
        conn = sqlite3.connect(
            self.file, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        return conn

    # -- PointSink -------------------------------------------------------------------------------

    def write_points(self, points: Sequence[Point]) -> None:
        """Write all points in one transaction; a point already stored at the same time is replaced."""
        skipped_before = self.skipped
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, self._rows(points))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if self.skipped != skipped_before:
            log.warning("embedded sink skipped non-finite values count=%d", self.skipped - skipped_before)
        now = self.clock()
        if now - self._pruned_at >= self.prune_every:
            # on the writer's thread, between batches: the retention is kept without a thread of its own
            self._pruned_at = now
            self.prune(int(now * 1e9))

    def _rows(self, points: Sequence[Point]) -> Iterator[tuple[str, str, int, float, int]]:
        for p in points:
            for name, v in p.values.items():
                if v is True or v is False:
                    yield p.thing, name, p.time_ns, float(v), 1
                elif math.isfinite(v):
                    yield p.thing, name, p.time_ns, v, 0
                else:
                    # SQLite stores NaN as NULL: one bad value must not fail the whole batch
                    self.skipped += 1

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._writer.close()

    # -- queries ---------------------------------------------------------------------------------

    def history(
        self,
        thing: str,
        measurement: str,
        since_ns: int,
        until_ns: int | None = None,
        max_points: int = 1000,
    ) -> list[tuple[int, float | bool]]:
        """(time_ns, value) of one measurement in [since_ns, until_ns), oldest first.

        With more than ``max_points`` points, the range is cut into ``max_points`` equal time buckets:
        each non-empty bucket gives one point at the bucket's start, the average for numbers, the last
        value for booleans.
        """
        if max_points < 1:
            raise ValueError("max_points must be at least 1")
        key = (thing, measurement, since_ns, until_ns if until_ns is not None else 2**63 - 1)
        where = "WHERE thing = ? AND measurement = ? AND time_ns >= ? AND time_ns < ?"
        with self._read_lock:
            conn = self._reader
            conn.execute("BEGIN")  # one snapshot for both queries
            try:
                n, last = conn.execute(f"SELECT count(*), max(time_ns) FROM points {where}", key).fetchone()
                if n <= max_points:
                    rows = conn.execute(
                        f"SELECT time_ns, value, is_bool FROM points {where} ORDER BY time_ns", key
                    ).fetchall()
                    return [(t, bool(v) if b else v) for t, v, b in rows]
                end = until_ns if until_ns is not None else last + 1
                width = -(-(end - since_ns) // max_points)  # ceiling: max_points buckets cover the range
                # with a lone max() SQLite takes the bare columns (value, is_bool) from the max row
                buckets = conn.execute(
                    f"SELECT (time_ns - ?) / ? AS bucket, max(time_ns), value, is_bool, avg(value) "
                    f"FROM points {where} GROUP BY bucket ORDER BY bucket",
                    (since_ns, width, *key),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
        return [
            (since_ns + b * width, bool(last_value) if is_bool else mean)
            for b, _, last_value, is_bool, mean in buckets
        ]

    def count(self, thing: str | None = None) -> int:
        """Stored values, of one thing or of all."""
        with self._read_lock:
            if thing is None:
                row = self._reader.execute("SELECT count(*) FROM points").fetchone()
            else:
                row = self._reader.execute("SELECT count(*) FROM points WHERE thing = ?", (thing,)).fetchone()
        return int(row[0])

    def prune(self, now_ns: int) -> int:
        """Drop values older than the retention period; returns how many were dropped."""
        cutoff = now_ns - int(self.retention_days * _NS_PER_DAY)
        with self._write_lock:
            dropped = self._writer.execute("DELETE FROM points WHERE time_ns < ?", (cutoff,)).rowcount
        if dropped:
            log.info("embedded sink pruned values=%d older_than_ns=%d", dropped, cutoff)
        return int(dropped)

    def __repr__(self) -> str:
        return f"EmbeddedSink({str(self.file)!r})"
