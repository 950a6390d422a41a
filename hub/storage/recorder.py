"""The recorder: readings → batches → time-series sink, or the durable spool while the sink is away.

Batches hold at most ``batch_size`` points and wait at most ``flush_interval``. A batch also goes out
early once ``ack_threshold`` messages wait for their acknowledgement, so QoS 1 throughput is not capped
by the broker's in-flight window. Acknowledgements run only after the batch is in the sink or the spool.

While the sink is down, batches go straight to the spool (no write waits for a timeout); a replayer
thread probes the sink with backoff and drains the spool when it is back. Replay sends several spooled
batches per request (``replay_points``) on its own thread, so live batches keep going to the sink
between replay requests instead of waiting behind the backlog.

Timestamps are deterministic, so nothing stored twice becomes two points (``Stamper``):

- a reading with a sane device time keeps it;
- a QoS 1 reading without one gets its arrival time, and the key of its message (topic and payload) is
  journaled with that time, in the transaction that spools the batch or just before the batch goes to
  the sink, once per batch. A message the broker delivers again (it was stored but the acknowledgement
  was lost to a crash or a dropped connection) gets the journaled time back, so its point overwrites
  itself in InfluxDB instead of becoming a second one;
- a reading that arrives while the hub's own clock is before 2020 (a Pi without a real-time clock, NTP
  not yet synced) is never written with that time: it is held in the spool stamped with the monotonic
  clock, and once the wall clock is sane it is given its true arrival time, wall now minus the
  monotonic time elapsed since it arrived (``Spool.release_held``). Held readings whose monotonic
  clock is gone (the machine rebooted before its clock was set) cannot be dated: they are dropped and
  counted (``hub_drops{queue="clock_unknown"}``), never guessed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client import Counter

from hub.domain.clock import EARLIEST
from hub.storage.lineprotocol import encode
from hub.storage.sink import LineSink, Point, PointSink, SinkRejected, SinkUnavailable
from hub.storage.spool import Spool
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)

Ack = Callable[[], None]
#: (message key, time ns) of a reading stamped with its arrival time
JournalEntry = tuple[bytes, int]

#: seconds a journaled arrival time is kept for a redelivery of its message
JOURNAL_WINDOW_S = 300.0
#: journal entries kept in memory at most (at 200 msg/s, the window holds 60,000)
JOURNAL_MAX = 200_000
#: spooled points per replay request (several spooled batches joined)
REPLAY_POINTS = 20_000


def boot_id() -> str:
    """This boot's id (the monotonic clock's epoch); a fresh id per process where the OS has none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return f"process-{uuid.uuid4().hex}"


def message_key(topic: str, payload: bytes) -> bytes:
    return hashlib.blake2b(topic.encode("utf-8", "surrogatepass") + b"\0" + payload, digest_size=16).digest()


class Stamper:
    """Arrival timestamps that survive redelivery, and clock sanity (see the module docstring).

    Trade-off: two identical payloads on one topic are one key. A message flagged as a redelivery
    (MQTT DUP), or any message during the window after a restart (entries of the previous run, whose
    acknowledgement state is unknown), whose key is journaled gets the journaled time: two identical
    readings within that window become one point (same values, one time). Outside it, identical payloads
    are distinct points as usual.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        window_s: float = JOURNAL_WINDOW_S,
        max_entries: int = JOURNAL_MAX,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.clock = clock
        self.monotonic_ns = monotonic_ns
        self.window_ns = int(window_s * 1e9)
        self.max_entries = max_entries
        self.on_overflow = on_overflow
        self._lock = threading.Lock()
        self._times: dict[bytes, int] = {}
        #: (monotonic deadline ns, key, time ns) in journaling order
        self._expiry: deque[tuple[int, bytes, int]] = deque()
        #: keys loaded from an earlier run: reused even without DUP until this deadline
        self._carried: set[bytes] = set()
        self._carried_until = 0
        #: highest journal sequence that may be pruned from disk
        self.prunable_seq = 0
        self._carried_seq = 0
        #: journal sequence seen at each write, to learn which disk rows expired: (deadline ns, seq)
        self._seqs: deque[tuple[int, int]] = deque()
        self.reused = 0

    def load(self, entries: Sequence[JournalEntry], top_seq: int) -> None:
        """Entries journaled by an earlier run: any message with one of these keys arriving within the
        window is taken as a redelivery."""
        now = self.monotonic_ns()
        with self._lock:
            for key, ts in entries[-self.max_entries :]:
                self._times[key] = ts
                self._carried.add(key)
            self._carried_until = now + self.window_ns
            self._carried_seq = top_seq
        if entries:
            log.info(
                "timestamp journal loaded entries=%d (redelivered messages keep their time)", len(entries)
            )

    @property
    def clock_sane(self) -> bool:
        return self.clock() >= EARLIEST

    def arrival(
        self, topic: str, payload: bytes, received: float, *, qos: int, dup: bool = False
    ) -> tuple[int, JournalEntry | None, bool]:
        """(time ns, journal entry or None, held) for a reading of this message without device time.

        ``held``: the clock was before 2020 at arrival; the time is then monotonic ns of this boot.
        """
        if received < EARLIEST:
            now = self.clock()
            elapsed = max(0.0, now - received) if now < EARLIEST else 0.0
            return self.monotonic_ns() - int(elapsed * 1e9), None, True
        stamp = int(received * 1e9)
        if qos == 0:
            return stamp, None, False  # never redelivered
        key = message_key(topic, payload)
        with self._lock:
            self._expire()
            known = self._times.get(key)
            if known is not None and (dup or key in self._carried):
                self.reused += 1
                stamp = known
            elif len(self._times) >= self.max_entries and key not in self._times:
                if self.on_overflow is not None:
                    self.on_overflow()
                return stamp, None, False
            self._carried.discard(key)
            self._times[key] = stamp
            self._expiry.append((self.monotonic_ns() + self.window_ns, key, stamp))
        return stamp, (key, stamp), False

    def written(self, top_seq: int) -> None:
        """The journal on disk reached ``top_seq``: rows up to it expire after the window."""
        with self._lock:
            self._seqs.append((self.monotonic_ns() + self.window_ns, top_seq))

    def _expire(self) -> None:
        now = self.monotonic_ns()
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            _, key, stamp = expiry.popleft()
            if self._times.get(key) == stamp and key not in self._carried:
                del self._times[key]
        if self._carried and now >= self._carried_until:
            for key in self._carried:
                self._times.pop(key, None)
            self._carried = set()
            self.prunable_seq = max(self.prunable_seq, self._carried_seq)
        seqs = self._seqs
        while seqs and seqs[0][0] <= now:
            self.prunable_seq = max(self.prunable_seq, seqs.popleft()[1])

    def prune_to(self) -> int:
        """Journal rows up to this sequence may be deleted from disk."""
        with self._lock:
            self._expire()
            return self.prunable_seq

    def __len__(self) -> int:
        return len(self._times)


def _counter(telemetry: Telemetry, name: str, doc: str) -> Counter:
    existing = telemetry.registry._names_to_collectors.get(name + "_total")  # one hub, one registry
    if isinstance(existing, Counter):
        return existing
    return Counter(name, doc, registry=telemetry.registry)


class Recorder:
    def __init__(
        self,
        sink: LineSink | PointSink,
        telemetry: Telemetry,
        *,
        spool: Spool | None = None,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        ack_threshold: int = 500,
        max_pending: int = 20000,
        replay_points: int = REPLAY_POINTS,
        stamper: Stamper | None = None,
        boot: str | None = None,
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.telemetry = telemetry
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.ack_threshold = ack_threshold
        self.max_pending = max(max_pending, batch_size)
        self.replay_points = max(replay_points, 1)
        self._lines = hasattr(sink, "write_lines")
        if self._lines and spool is None:
            raise ValueError("a remote sink needs a spool")
        self.stamper = stamper if stamper is not None else Stamper()
        self.boot = boot or boot_id()
        self._cond = threading.Condition()
        self._points: list[Point] = []
        self._acks: list[Ack] = []
        self._journal: list[JournalEntry] = []
        self._held: list[Point] = []
        self._first_at = 0.0
        self._stopping = False
        self.sink_up = True
        self.last_error: str | None = None
        self._replay_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.flushes = 0
        #: runs before a batch's acknowledgements (the store commits pending scans there)
        self.before_ack: Callable[[], None] | None = None
        self.held_total = _counter(
            telemetry,
            "hub_points_held_for_clock",
            "Readings that arrived while the hub's clock was before 2020, held until it is set",
        )
        self.restamped_total = _counter(
            telemetry, "hub_points_restamped", "Held readings given their arrival time once the clock was set"
        )
        if spool is not None:
            entries, top = spool.journal_entries()
            self.stamper.load(entries, top)

    # -- ingest side ----------------------------------------------------------------------------------
    def submit(
        self,
        points: Sequence[Point],
        ack: Ack | None = None,
        *,
        journal: Sequence[JournalEntry] = (),
        held: Sequence[Point] = (),
    ) -> None:
        """Queue points (and the acknowledgement to send once they are stored). Blocks when full.

        ``journal``: arrival times to journal before the points are stored; ``held``: points stamped
        with the monotonic clock while the wall clock was before 2020 (see the module docstring)."""
        with self._cond:
            while len(self._points) >= self.max_pending and not self._stopping:
                self._cond.wait(0.5)
            if not self._points and not self._acks and not self._held:
                self._first_at = time.monotonic()
                # the flusher idles in 0.5 s waits while empty: tell it a batch is due flush_interval from now
                self._cond.notify_all()
            self._points.extend(points)
            self._journal.extend(journal)
            self._held.extend(held)
            if ack is not None:
                self._acks.append(ack)
            if len(self._points) >= self.batch_size or len(self._acks) >= self.ack_threshold:
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        return len(self._points)

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._threads = [threading.Thread(target=self._flush_loop, name="recorder", daemon=True)]
        if self._lines:
            self._threads.append(threading.Thread(target=self._replay_loop, name="replayer", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is pending (to the sink or the spool), then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._replay_wake.set()
        for thread in self._threads:
            thread.join(timeout)

    # -- flushing -------------------------------------------------------------------------------------
    def _take(self) -> tuple[list[Point], list[Ack], list[JournalEntry], list[Point]] | None:
        with self._cond:
            while True:
                waiting = bool(self._points or self._acks or self._held)
                due = self._first_at + self.flush_interval
                ready = (
                    len(self._points) >= self.batch_size
                    or len(self._acks) >= self.ack_threshold
                    or (waiting and time.monotonic() >= due)
                )
                if ready or self._stopping:
                    break
                self._cond.wait(max(0.005, due - time.monotonic()) if waiting else 0.5)
            if not self._points and not self._acks and not self._held:
                return None
            points = self._points[: self.batch_size]
            del self._points[: self.batch_size]
            journal, self._journal = self._journal, []  # journaled no later than their points
            held, self._held = self._held, []
            if self._points:  # more than one batch waiting: acks go with the last one taken
                acks: list[Ack] = []
            else:
                acks, self._acks = self._acks, []
            self._first_at = time.monotonic()
            self._cond.notify_all()
            return points, acks, journal, held

    def _flush_loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                if self._stopping:
                    return
                continue
            points, acks, journal, held = taken
            stored = (not held or self._hold(held)) and (
                not (points or journal) or self._write(points, journal)
            )
            if not stored:
                with self._cond:  # nowhere to put them (local disk failure): keep them and retry
                    self._points[:0] = points
                    self._acks[:0] = acks
                    self._journal[:0] = journal
                time.sleep(1.0)
                continue
            self.flushes += 1
            if acks and self.before_ack is not None:
                self.before_ack()
            for ack in acks:
                try:
                    ack()
                except Exception:  # an ack on a dead connection: the broker redelivers
                    log.debug("ack failed", exc_info=True)

    def _hold(self, held: list[Point]) -> bool:
        """Spool readings stamped while the clock was before 2020 (monotonic times of this boot)."""
        self.held_total.inc(len(held))
        if self.spool is None:  # the embedded store has no spool to hold them in
            self.telemetry.drops.labels("clock_unknown").inc(len(held))
            log.error(
                "the hub's clock is before 2020; readings without a device time dropped count=%d "
                "(set the clock or enable NTP)",
                len(held),
            )
            return True
        try:
            self.spool.append(encode(held), len(held), boot=self.boot)
        except Exception as exc:
            log.error("spool write failed points=%d error=%s", len(held), exc)
            with self._cond:
                self._held[:0] = held
            return False
        log.warning(
            "the hub's clock is before 2020; holding readings without a device time until it is set count=%d",
            len(held),
        )
        self._replay_wake.set()
        return True

    def _write(self, points: list[Point], journal: list[JournalEntry]) -> bool:
        """True when the points are stored (or rejected for good by the sink)."""
        prune = self.stamper.prune_to()
        if not self._lines:
            try:
                self.sink.write_points(points)  # type: ignore[union-attr]
            except Exception as exc:
                self._mark(False, f"embedded store write failed: {exc}")
                return False
            self._mark(True)
            self.telemetry.stored.inc(len(points))
            return True
        assert self.spool is not None
        body = encode(points)
        if self.sink_up:
            try:
                if journal:  # before the points can be in the sink: one transaction for the batch
                    self.stamper.written(self.spool.journal(journal, prune))
                if points:
                    self.sink.write_lines(body)  # type: ignore[union-attr]
                    self.telemetry.stored.inc(len(points))
                return True
            except SinkRejected as exc:
                self.telemetry.drops.labels("sink_rejected").inc(len(points))
                log.error("sink rejected a batch points=%d error=%s", len(points), exc)
                return True
            except SinkUnavailable as exc:
                self.telemetry.sink_errors.labels("unavailable").inc()
                self._mark(False, str(exc))
            except Exception as exc:
                log.error("timestamp journal write failed error=%s", exc)
                return False
        if not points:
            return True
        try:
            self.stamper.written(
                self.spool.append(body, len(points), journal=journal, prune_journal_to=prune)
            )
        except Exception as exc:
            log.error("spool write failed points=%d error=%s", len(points), exc)
            return False
        self.telemetry.spooled.inc(len(points))
        self._replay_wake.set()
        return True

    def mark_unavailable(self, error: str) -> None:
        """Send batches to the spool until the replayer finds the sink again."""
        self._mark(False, error)

    def _mark(self, up: bool, error: str | None = None) -> None:
        if up != self.sink_up:
            if up:
                log.info("time-series sink %s is back; replaying the spool", self.sink.kind)
            else:
                log.error("time-series sink %s unavailable, spooling: %s", self.sink.kind, error)
        self.sink_up = up
        self.last_error = error

    # -- replay ---------------------------------------------------------------------------------------
    def _release_held(self) -> None:
        """The clock is sane: give held readings of this boot their wall time, drop older boots'."""
        assert self.spool is not None
        offset_ns = int(self.stamper.clock() * 1e9) - self.stamper.monotonic_ns()
        released, dropped = self.spool.release_held(self.boot, offset_ns)
        if released:
            self.restamped_total.inc(released)
            log.info("the clock is set; held readings stamped with their arrival time count=%d", released)
        if dropped:
            self.telemetry.drops.labels("clock_unknown").inc(dropped)
            log.error(
                "held readings from an earlier boot dropped count=%d: their arrival time is unknowable "
                "(the clock was never set before that reboot; enable NTP or add a real-time clock)",
                dropped,
            )

    def _replay_loop(self) -> None:
        assert self.spool is not None
        spool = self.spool
        delay = 1.0
        while True:
            if spool.held_points and self.stamper.clock_sane:
                try:
                    self._release_held()
                except Exception:
                    log.exception("releasing held readings failed")
            if spool.ready_points == 0:
                if self._stopping:
                    return
                self._replay_wake.wait(1.0)
                self._replay_wake.clear()
                continue
            if not self.sink_up and not self.sink.ping():  # type: ignore[union-attr]
                if self._stopping:
                    return
                self._replay_wake.wait(delay)
                self._replay_wake.clear()
                delay = min(delay * 2, 30.0)
                continue
            if self._replay_run(spool) and self._stopping:
                return
            delay = 1.0

    def _replay_run(self, spool: Spool) -> bool:
        """Replay chunks back to back, reading the next chunk from SQLite while the current one is
        being written. True when the sink failed (the loop probes it again)."""
        ids, body, count = spool.oldest(self.replay_points)
        with ThreadPoolExecutor(1, thread_name_prefix="spool-read") as reader:
            while ids:
                ahead = reader.submit(spool.oldest, self.replay_points, ids[-1])
                try:
                    self.sink.write_lines(body)  # type: ignore[union-attr]
                except SinkRejected as exc:
                    self.telemetry.drops.labels("sink_rejected").inc(count)
                    log.error("sink rejected spooled points=%d error=%s", count, exc)
                except SinkUnavailable as exc:
                    self._mark(False, str(exc))
                    ahead.cancel()
                    return True
                else:
                    self.telemetry.replayed.inc(count)
                    self.telemetry.stored.inc(count)
                spool.remove(ids)
                self._mark(True)
                ids, body, count = ahead.result()
        return False
