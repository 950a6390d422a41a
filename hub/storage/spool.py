"""The durable spool: line-protocol batches kept on disk while the time-series sink is unreachable.

SQLite in WAL mode with ``synchronous=FULL``: a batch is on disk when ``append`` returns, so a reading
acknowledged to the broker survives a crash or a power cut. Bounded by size: past the bound the
oldest batches are dropped and counted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path, max_bytes: int, on_drop: Callable[[int], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.on_drop = on_drop
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches"
            " (id INTEGER PRIMARY KEY, points INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(body)), 0) FROM batches"
        ).fetchone()
        self.batches, self.points, self.bytes = int(row[0]), int(row[1]), int(row[2])
        self.dropped_points = 0
        if self.points:
            log.info("spool holds points=%d bytes=%d from an earlier run; replaying", self.points, self.bytes)

    def append(self, body: bytes, points: int) -> None:
        """Store one batch durably (one commit), dropping the oldest when over the size bound."""
        with self._lock:
            self._db.execute("INSERT INTO batches (points, body) VALUES (?, ?)", (points, body))
            self.batches += 1
            self.points += points
            self.bytes += len(body)
            if self.bytes > self.max_bytes:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        dropped = 0
        while self.bytes > self.max_bytes and self.batches > 1:
            row = self._db.execute(
                "SELECT id, points, LENGTH(body) FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM batches WHERE id = ?", (row[0],))
            self.batches -= 1
            self.points -= row[1]
            self.bytes -= row[2]
            dropped += row[1]
        self.dropped_points += dropped
        log.error(
            "spool full max_bytes=%d dropped_points=%d (raise storage.spool_max_mb or restore the sink)",
            self.max_bytes,
            dropped,
        )
        if self.on_drop is not None:
            self.on_drop(dropped)

    def oldest(self, max_points: int) -> tuple[list[int], bytes, int]:
        """(ids, joined body, points) of the oldest batches, up to about ``max_points``."""
        with self._lock:
            rows = self._db.execute("SELECT id, points, body FROM batches ORDER BY id LIMIT 64").fetchall()
        ids: list[int] = []
        bodies: list[bytes] = []
        total = 0
        for ident, points, body in rows:
            if ids and total + points > max_points:
                break
            ids.append(ident)
            bodies.append(body)
            total += points
        return ids, b"\n".join(bodies), total

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            marks = ",".join("?" * len(ids))
            row = self._db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(body)), 0) FROM batches "
                f"WHERE id IN ({marks})",
                ids,
            ).fetchone()
            self._db.execute(f"DELETE FROM batches WHERE id IN ({marks})", ids)
            self.batches -= row[0]
            self.points -= row[1]
            self.bytes -= row[2]

    def close(self) -> None:
        with self._lock:
            self._db.close()
