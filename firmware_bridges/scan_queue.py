"""The bounded hand-over between the serial reader thread and the MQTT publisher."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scan:
    tag: str
    time: float  # epoch seconds


class ScanQueue:
    """FIFO of scans with a fixed capacity; when full, the oldest scan is dropped and counted."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Scan] = deque()
        self._cond = threading.Condition()
        self._full_logged = False

    def put(self, scan: Scan) -> None:
        with self._cond:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
                if not self._full_logged:  # once per overflow episode, not once per scan
                    log.warning("scan queue full capacity=%d action=drop_oldest", self.capacity)
                    self._full_logged = True
            self._items.append(scan)
            self._cond.notify()

    def peek(self, timeout: float) -> Scan | None:
        """The oldest scan, left in the queue until :meth:`done`; None after ``timeout`` seconds."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items[0] if self._items else None

    def done(self, scan: Scan) -> None:
        """Remove ``scan`` after it was delivered (unless it was dropped meanwhile)."""
        with self._cond:
            if self._items and self._items[0] is scan:
                self._items.popleft()
            if not self._items:
                self._full_logged = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
