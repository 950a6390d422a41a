"""The durable spool: line-protocol batches kept on disk while the time-series sink is unreachable.

SQLite in WAL mode with ``synchronous=FULL``: a batch is on disk when ``append`` returns, so a reading
acknowledged to the broker survives a crash or a power cut. Bounded by size (``storage.spool_max_mb``,
counted as the bytes of line protocol held): past the bound the oldest batches are dropped, counted and
reported through ``on_drop`` (the newest batch stays even when it alone is larger than the bound);
once replay has brought the spool back under half its bound, ``on_relief`` is called (the hub clears
its spool alert there).

The same file holds two smaller things that must be durable with the batches:

- the **timestamp journal** (``journal``): for each QoS 1 message stored with its arrival time, a key
  (a hash of topic and payload) and the time it was given, so a message the broker delivers again after
  a crash gets the same time and its point overwrites itself (``hub.storage.recorder.Stamper``);
- **held batches** (``boot`` set): readings that arrived while the hub's own clock was before 2020.
  Their timestamps are monotonic-clock nanoseconds of that boot, not wall time; once the wall clock is
  sane they are rewritten with the offset between the two clocks (``release_held``), or dropped and
  counted when the machine has rebooted since (their arrival time is then unknowable).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

#: rows read per query when collecting replay batches
_PAGE = 256


class Spool:
    def __init__(
        self,
        path: Path,
        max_bytes: int,
        on_drop: Callable[[int], None] | None = None,
        on_relief: Callable[[], None] | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.on_drop = on_drop
        self.on_relief = on_relief
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches"
            " (id INTEGER PRIMARY KEY, points INTEGER NOT NULL, body BLOB NOT NULL)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
        if "boot" not in columns:  # a spool written before held batches existed
            self._db.execute("ALTER TABLE batches ADD COLUMN boot TEXT")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS journal"
            " (seq INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, time_ns INTEGER NOT NULL)"
        )
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(body)), 0),"
            " COALESCE(SUM(CASE WHEN boot IS NULL THEN 0 ELSE points END), 0) FROM batches"
        ).fetchone()
        self.batches, self.points, self.bytes = int(row[0]), int(row[1]), int(row[2])
        #: points in held batches (waiting for a sane clock)
        self.held_points = int(row[3])
        self.dropped_points = 0
        #: True from a drop at the bound until the spool is back under half of it
        self.overflowing = False
        if self.points:
            log.info("spool holds points=%d bytes=%d from an earlier run; replaying", self.points, self.bytes)

    # -- writing --------------------------------------------------------------------------------------
    def append(
        self,
        body: bytes,
        points: int,
        *,
        journal: Sequence[tuple[bytes, int]] = (),
        prune_journal_to: int = 0,
        boot: str | None = None,
    ) -> int:
        """Store one batch durably, with its journal entries, in one transaction (one fsync).

        ``boot`` marks a held batch (monotonic timestamps of that boot). Past the size bound the oldest
        batches are dropped in the same transaction. Returns the journal's highest sequence number.
        """
        dropped = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO batches (points, body, boot) VALUES (?, ?, ?)", (points, body, boot)
                )
                top = self._journal(journal, prune_journal_to)
                self.batches += 1
                self.points += points
                self.bytes += len(body)
                if boot is not None:
                    self.held_points += points
                if self.bytes > self.max_bytes:
                    dropped = self._drop_oldest()
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_and_recount()
                raise
        if dropped:
            self._report_drop(dropped)
        return top

    def journal(self, entries: Sequence[tuple[bytes, int]], prune_to: int = 0) -> int:
        """Journal timestamps (key, time ns) in one transaction (one fsync), pruning entries up to
        ``prune_to``. Returns the journal's highest sequence number."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                top = self._journal(entries, prune_to)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return top

    def _journal(self, entries: Sequence[tuple[bytes, int]], prune_to: int) -> int:
        if prune_to:
            self._db.execute("DELETE FROM journal WHERE seq <= ?", (prune_to,))
        if entries:
            self._db.executemany("INSERT OR REPLACE INTO journal (key, time_ns) VALUES (?, ?)", entries)
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])

    def journal_entries(self) -> tuple[list[tuple[bytes, int]], int]:
        """Every journaled (key, time ns), oldest first, and the highest sequence number."""
        with self._lock:
            rows = self._db.execute("SELECT key, time_ns FROM journal ORDER BY seq").fetchall()
            top = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]
        return [(bytes(key), int(ts)) for key, ts in rows], int(top)

    def journal_seq(self) -> int:
        """The highest journal sequence number written so far."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0])

    def usage(self) -> tuple[int, int, int]:
        """(batches, points, bytes) held, read between appends (the counters move within one)."""
        with self._lock:
            return self.batches, self.points, self.bytes

    def _drop_oldest(self) -> int:
        dropped = 0
        while self.bytes > self.max_bytes and self.batches > 1:
            row = self._db.execute(
                "SELECT id, points, LENGTH(body), boot FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM batches WHERE id = ?", (row[0],))
            self.batches -= 1
            self.points -= row[1]
            self.bytes -= row[2]
            if row[3] is not None:
                self.held_points -= row[1]
            dropped += row[1]
        return dropped

    def _report_drop(self, dropped: int) -> None:
        self.dropped_points += dropped
        first = not self.overflowing
        self.overflowing = True
        (log.error if first else log.warning)(
            "spool full max_bytes=%d dropped_points=%d (raise storage.spool_max_mb or restore the sink)",
            self.max_bytes,
            dropped,
        )
        if self.on_drop is not None:
            self.on_drop(dropped)

    def _rollback_and_recount(self) -> None:
        self._db.execute("ROLLBACK")
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(body)), 0),"
            " COALESCE(SUM(CASE WHEN boot IS NULL THEN 0 ELSE points END), 0) FROM batches"
        ).fetchone()
        self.batches, self.points, self.bytes = int(row[0]), int(row[1]), int(row[2])
        self.held_points = int(row[3])

    # -- replay ---------------------------------------------------------------------------------------
    def oldest(self, max_points: int, after: int = 0) -> tuple[list[int], bytes, int]:
        """(ids, joined body, points) of the oldest ready batches (not held) with ids above ``after``,
        up to about ``max_points``. At least one batch when there is any, however large it is."""
        ids: list[int] = []
        bodies: list[bytes] = []
        total = 0
        while total < max_points:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, points, body FROM batches WHERE boot IS NULL AND id > ? ORDER BY id LIMIT ?",
                    (after, _PAGE),
                ).fetchall()
            for ident, points, body in rows:
                if ids and total + points > max_points:
                    return ids, b"\n".join(bodies), total
                ids.append(ident)
                bodies.append(body)
                total += points
            if len(rows) < _PAGE:
                break
            after = rows[-1][0]
        return ids, b"\n".join(bodies), total

    @property
    def ready_points(self) -> int:
        """Points that can be replayed now (not held for the clock)."""
        return self.points - self.held_points

    def remove(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if not ids:
            return
        relieved = False
        with self._lock:
            marks = ",".join("?" * len(ids))
            row = self._db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(points), 0), COALESCE(SUM(LENGTH(body)), 0),"
                f" COALESCE(SUM(CASE WHEN boot IS NULL THEN 0 ELSE points END), 0) FROM batches "
                f"WHERE id IN ({marks})",
                ids,
            ).fetchone()
            self._db.execute(f"DELETE FROM batches WHERE id IN ({marks})", ids)
            self.batches -= row[0]
            self.points -= row[1]
            self.bytes -= row[2]
            self.held_points -= row[3]
            if self.overflowing and self.bytes <= self.max_bytes // 2:
                self.overflowing = False
                relieved = True
        if relieved:
            log.info("spool back under half its bound bytes=%d max_bytes=%d", self.bytes, self.max_bytes)
            if self.on_relief is not None:
                self.on_relief()

    # -- held batches (the hub's clock was before 2020) -----------------------------------------------
    def release_held(self, boot: str, offset_ns: int) -> tuple[int, int]:
        """Rewrite held batches of ``boot`` to wall time (monotonic ns + ``offset_ns``) and make them
        ready; drop held batches of other boots. Returns (points released, points dropped)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, points, body, boot FROM batches WHERE boot IS NOT NULL ORDER BY id"
            ).fetchall()
            if not rows:
                return 0, 0
            released = dropped = 0
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for ident, points, body, held_boot in rows:
                    if held_boot == boot:
                        new = _shift(bytes(body), offset_ns)
                        self._db.execute(
                            "UPDATE batches SET body = ?, boot = NULL WHERE id = ?", (new, ident)
                        )
                        self.bytes += len(new) - len(body)
                        released += points
                    else:
                        self._db.execute("DELETE FROM batches WHERE id = ?", (ident,))
                        self.batches -= 1
                        self.points -= points
                        self.bytes -= len(body)
                        dropped += points
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback_and_recount()
                raise
            self.held_points = 0
        return released, dropped

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _shift(body: bytes, offset_ns: int) -> bytes:
    """Add ``offset_ns`` to the timestamp (last field) of every line."""
    out = []
    for line in body.split(b"\n"):
        head, _, stamp = line.rpartition(b" ")
        out.append(head + b" " + str(int(stamp) + offset_ns).encode())
    return b"\n".join(out)
