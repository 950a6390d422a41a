"""What every thing looks like right now: latest values, availability, last seen. Held in memory.

Written by the ingest worker, read by the dashboard and the store flusher. Each change bumps a
version number, so readers ask "what changed since version N?" instead of holding callbacks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.domain.events import Availability, Reading, Scan, Value


@dataclass(slots=True)
class ThingState:
    id: str
    source: str
    first_seen: float
    last_seen: float
    online: bool | None = None
    values: dict[str, Value] = field(default_factory=dict)
    #: time of each value (device time or arrival), epoch seconds
    times: dict[str, float] = field(default_factory=dict)
    version: int = 0

    def copy(self) -> ThingState:
        """A copy whose value maps the ingest worker will not change underneath the reader."""
        return ThingState(
            self.id,
            self.source,
            self.first_seen,
            self.last_seen,
            self.online,
            dict(self.values),
            dict(self.times),
            self.version,
        )


@dataclass(frozen=True, slots=True)
class ScanRecord:
    reader: str
    source: str
    tag: str
    time: float


class LiveState:
    """Thread-safe latest state of all things, with a change version for incremental readers."""

    def __init__(self, max_things: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._things: dict[str, ThingState] = {}
        self._version = 0
        self._dirty: set[str] = set()
        self._scans: list[ScanRecord] = []
        self.max_things = max_things
        self.refused_things = 0

    @property
    def version(self) -> int:
        return self._version

    def _touch(self, thing: str, source: str, at: float) -> ThingState | None:
        state = self._things.get(thing)
        if state is None:
            if len(self._things) >= self.max_things:
                self.refused_things += 1
                return None
            state = self._things[thing] = ThingState(thing, source, first_seen=at, last_seen=at)
        self._version += 1
        state.version = self._version
        state.last_seen = max(state.last_seen, at)
        self._dirty.add(thing)
        return state

    def apply_reading(self, reading: Reading, at: float) -> bool:
        """Record a reading's values; returns False when the thing table is full."""
        with self._lock:
            state = self._touch(reading.thing, reading.source, at)
            if state is None:
                return False
            t = reading.time if reading.time is not None else at
            for name, value in reading.values.items():
                if t >= state.times.get(name, 0.0):
                    state.values[name] = value
                    state.times[name] = t
            if state.online is None:
                state.online = True
            return True

    def apply_availability(self, event: Availability, at: float) -> bool:
        with self._lock:
            state = self._touch(event.thing, event.source, at)
            if state is None:
                return False
            state.online = event.online
            return True

    def record_scan(self, scan: Scan, at: float) -> ScanRecord:
        record = ScanRecord(scan.reader, scan.source, scan.tag, scan.time if scan.time is not None else at)
        with self._lock:
            self._scans.append(record)
            del self._scans[:-200]  # the dashboard shows recent scans; the store keeps them all
            self._version += 1
        return record

    def load(self, states: list[ThingState]) -> None:
        """Prime from the store at start-up (not marked dirty)."""
        with self._lock:
            for state in states:
                self._version += 1
                state.version = self._version
                self._things[state.id] = state

    def snapshot(self, since: int = 0) -> tuple[int, list[ThingState]]:
        """(current version, copies of things changed after ``since``), sorted by id."""
        with self._lock:
            changed = [s.copy() for s in self._things.values() if s.version > since]
            version = self._version
        changed.sort(key=lambda s: s.id)
        return version, changed

    def get(self, thing: str) -> ThingState | None:
        with self._lock:
            s = self._things.get(thing)
            if s is None:
                return None
            return s.copy()

    def recent_scans(self, limit: int = 20) -> list[ScanRecord]:
        with self._lock:
            return list(reversed(self._scans[-limit:]))

    def take_dirty(self) -> list[ThingState]:
        """Copies of things changed since the last call, for the store flusher."""
        with self._lock:
            ids, self._dirty = self._dirty, set()
            return [s.copy() for i in ids if (s := self._things.get(i)) is not None]

    def mark_dirty(self, ids: Iterable[str]) -> None:
        """Mark things for the next store flush again (after a failed write)."""
        with self._lock:
            self._dirty.update(i for i in ids if i in self._things)

    def __len__(self) -> int:
        return len(self._things)
