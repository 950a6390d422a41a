"""Moves the in-memory state into the relational store: changed things each second, scans at once.

Scans are committed before the acknowledgement of the message that carried them (the recorder calls
``commit_scans`` before it acknowledges a batch), so a scan the broker counts as delivered is on disk.
Announcements (and their withdrawal) and unmapped fields ride along with the changed things: a retained
inventory of thousands of devices replayed at start-up becomes a few batched transactions, never a
write per message on the ingest thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hub.domain.livestate import Changes, LiveState, ScanRecord
from hub.storage.store import Store
from hub.telemetry import Telemetry

log = logging.getLogger(__name__)


class StoreWriter:
    def __init__(
        self,
        store: Store,
        live: LiveState,
        telemetry: Telemetry,
        *,
        interval: float = 1.0,
        max_pending_scans: int = 10000,
    ) -> None:
        self.store = store
        self.live = live
        self.telemetry = telemetry
        self.interval = interval
        self.max_pending_scans = max_pending_scans
        self._scans: list[ScanRecord] = []
        self._lock = threading.Lock()  # one writer at a time: SQLite has one write lock anyway
        self._scan_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.healthy = True
        self.last_error: str | None = None
        #: called (on the writer's thread) after announcements or retirements were stored, so read
        #: caches of the registry can reload
        self.on_registry_change: Callable[[], None] | None = None

    def add_scan(self, scan: ScanRecord) -> None:
        with self._scan_lock:
            if len(self._scans) >= self.max_pending_scans:
                self.telemetry.drops.labels("scans").inc()
                return
            self._scans.append(scan)

    def commit_scans(self) -> None:
        """Write pending scans now (called before acknowledging the messages that carried them)."""
        if self._scans:
            self.flush(things=False)

    def flush(self, things: bool = True) -> None:
        with self._lock:
            with self._scan_lock:
                scans, self._scans = self._scans, []
            changes = self.live.take_changes() if things else Changes([], [], {})
            if not scans and not changes:
                return
            try:
                self.store.apply(
                    changes.things, scans, announced=changes.announced, unmapped=changes.unmapped
                )
            except Exception as exc:
                self.healthy = False
                self.last_error = str(exc)
                log.error(
                    "store write failed things=%d announced=%d scans=%d error=%s",
                    len(changes.things),
                    len(changes.announced),
                    len(scans),
                    exc,
                )
                with self._scan_lock:  # keep the scans for the next try; things are marked again
                    self._scans[:0] = scans
                self.live.mark_changes(changes)
                return
            self.healthy = True
            self.last_error = None
        if changes.announced and self.on_registry_change is not None:
            try:
                self.on_registry_change()
            except Exception:  # a cache that fails to reload must not stop the writer
                log.exception("registry change hook failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.flush()
