"""The recorder: readings → batches → time-series sink, or the durable spool while the sink is away.

Batches hold at most ``batch_size`` points and wait at most ``flush_interval``. A batch also goes out
early once ``ack_threshold`` messages wait for their acknowledgement, so QoS 1 throughput is not capped
by the broker's in-flight window. Acknowledgements run only after the batch is in the sink or the spool.

While the sink is down, batches go straight to the spool (no write waits for a timeout); a replayer
thread probes the sink with backoff and drains the spool when it is back, alongside live batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from hub.storage.lineprotocol import encode
from hub.storage.sink import LineSink, Point, PointSink, SinkRejected, SinkUnavailable
from hub.storage.spool import Spool
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)

Ack = Callable[[], None]


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
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.telemetry = telemetry
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.ack_threshold = ack_threshold
        self.max_pending = max(max_pending, batch_size)
        self._lines = hasattr(sink, "write_lines")
        if self._lines and spool is None:
            raise ValueError("a remote sink needs a spool")
        self._cond = threading.Condition()
        self._points: list[Point] = []
        self._acks: list[Ack] = []
        self._first_at = 0.0
        self._stopping = False
        self.sink_up = True
        self.last_error: str | None = None
        self._replay_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.flushes = 0
        #: runs before a batch's acknowledgements (the store commits pending scans there)
        self.before_ack: Callable[[], None] | None = None

    # -- ingest side ----------------------------------------------------------------------------------
    def submit(self, points: Sequence[Point], ack: Ack | None = None) -> None:
        """Queue points (and the acknowledgement to send once they are stored). Blocks when full."""
        with self._cond:
            while len(self._points) >= self.max_pending and not self._stopping:
                self._cond.wait(0.5)
            if not self._points and not self._acks:
                self._first_at = time.monotonic()
            self._points.extend(points)
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
    def _take(self) -> tuple[list[Point], list[Ack]] | None:
        with self._cond:
            while True:
                due = self._first_at + self.flush_interval
                ready = (
                    len(self._points) >= self.batch_size
                    or len(self._acks) >= self.ack_threshold
                    or ((self._points or self._acks) and time.monotonic() >= due)
                )
                if ready or self._stopping:
                    break
                self._cond.wait(max(0.005, due - time.monotonic()) if (self._points or self._acks) else 0.5)
            if not self._points and not self._acks:
                return None
            points = self._points[: self.batch_size]
            del self._points[: self.batch_size]
            if self._points:  # more than one batch waiting: acks go with the last one taken
                acks: list[Ack] = []
            else:
                acks, self._acks = self._acks, []
            self._first_at = time.monotonic()
            self._cond.notify_all()
            return points, acks

    def _flush_loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                if self._stopping:
                    return
                continue
            points, acks = taken
            if points and not self._write(points):
                with self._cond:  # nowhere to put them (local disk failure): keep them and retry
                    self._points[:0] = points
                    self._acks[:0] = acks
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

    def _write(self, points: list[Point]) -> bool:
        """True when the points are stored (or rejected for good by the sink)."""
        if not self._lines:
            try:
                self.sink.write_points(points)  # type: ignore[union-attr]
            except Exception as exc:
                self._mark(False, f"embedded store write failed: {exc}")
                return False
            self._mark(True)
            self.telemetry.stored.inc(len(points))
            return True
        body = encode(points)
        if self.sink_up:
            try:
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
        assert self.spool is not None
        try:
            self.spool.append(body, len(points))
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
    def _replay_loop(self) -> None:
        assert self.spool is not None
        delay = 1.0
        while True:
            if self.spool.points == 0:
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
            ids, body, count = self.spool.oldest(self.batch_size)
            try:
                self.sink.write_lines(body)  # type: ignore[union-attr]
            except SinkRejected as exc:
                self.telemetry.drops.labels("sink_rejected").inc(count)
                log.error("sink rejected spooled points=%d error=%s", count, exc)
            except SinkUnavailable as exc:
                self._mark(False, str(exc))
                if self._stopping:
                    return
                continue
            else:
                self.telemetry.replayed.inc(count)
                self.telemetry.stored.inc(count)
            self.spool.remove(ids)
            self._mark(True)
            delay = 1.0
