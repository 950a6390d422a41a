"""What every thing looks like right now: latest values, availability, last seen, what it announced
about itself and the payload fields no measurement took. Held in memory.

Written by the ingest worker, read by the dashboard and the store flusher. Each change bumps a
version number, so readers ask "what changed since version N?" instead of holding callbacks. The store
flusher takes three kinds of change apart (values and availability, announcements, unmapped fields), so
a burst of readings never rewrites what a device announced and a retained inventory replayed at start-up
is written once per thing, in batches.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.domain.availability import SilenceTimeouts, on_battery, silent_too_long
from hub.domain.events import Availability, Discovery, Reading, Scan, Value

#: unmapped fields remembered per thing; a new one beyond this replaces the one seen longest ago
MAX_UNMAPPED_FIELDS = 64
#: an unmapped text value is kept to this many characters
MAX_UNMAPPED_TEXT = 200
#: unmapped fields already known are written to the store at most this often per thing (seconds)
UNMAPPED_SAVE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Announcement:
    """What a device said about itself (a Discovery event), as the registry keeps it."""

    source: str
    name: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    sw_version: str | None = None
    power: str | None = None
    measurements: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: when it was last announced; not part of equality, so a replayed retained config changes nothing
    at: float = field(default=0.0, compare=False)

    @classmethod
    def of(cls, event: Discovery, at: float) -> Announcement:
        return cls(
            event.source,
            event.name,
            event.model,
            event.manufacturer,
            event.sw_version,
            event.power,
            tuple(event.measurements),
            dict(event.attributes),
            at,
        )


@dataclass(slots=True)
class UnmappedField:
    """A payload field no canonical measurement took: its last raw value and when it was last seen."""

    raw: Any
    last_seen: float


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
    #: the device's own announcement (immutable: shared, not copied, by readers)
    announced: Announcement | None = None
    #: the device withdrew its announcement: the thing is retired until it announces itself again
    withdrawn: bool = False
    #: it publishes its own availability (last will, ...): that governs, not the silence timeout
    reports_availability: bool = False

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
            self.announced,
            self.withdrawn,
            self.reports_availability,
        )

    @property
    def on_battery(self) -> bool:
        return on_battery(self.announced.power if self.announced else None, self.values)


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since the store flusher last looked: things (values, availability, last seen),
    announcements (or their withdrawal), and unmapped fields by thing."""

    things: list[ThingState]
    announced: list[ThingState]
    unmapped: dict[str, dict[str, UnmappedField]]

    def __bool__(self) -> bool:
        return bool(self.things or self.announced or self.unmapped)


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
        self._announced: set[str] = set()
        self._unmapped: dict[str, dict[str, UnmappedField]] = {}
        self._unmapped_dirty: set[str] = set()
        self._unmapped_marked: dict[str, float] = {}
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
        if at > state.last_seen:
            state.last_seen = at
        self._dirty.add(thing)
        return state

    def apply_reading(self, reading: Reading, at: float) -> bool:
        """Record a reading's values (and its unmapped fields).

        Returns True when the reading brought back a thing the silence timeout had marked offline: the
        caller routes that like an ``online`` availability message. False otherwise, and when the thing
        table is full.
        """
        with self._lock:
            state = self._touch(reading.thing, reading.source, at)
            if state is None:
                return False
            t = reading.time if reading.time is not None else at
            values, times = state.values, state.times
            for name, value in reading.values.items():
                if t >= times.get(name, 0.0):
                    values[name] = value
                    times[name] = t
            if reading.unmapped:
                self._note_unmapped(state.id, reading.unmapped, at)
            if state.online is None:
                state.online = True
            elif state.online is False and not state.reports_availability:
                state.online = True
                return True
            return False

    def apply_availability(self, event: Availability, at: float, *, reported: bool = True) -> bool:
        """Record an availability change. ``reported``: the device said it (from then on its word
        governs, and it counts as seen); False: the hub concluded it (the silence sweep), which neither
        moves last seen nor creates a thing."""
        with self._lock:
            if reported:
                state = self._touch(event.thing, event.source, at)
                if state is None:
                    return False
                state.reports_availability = True
            else:
                state = self._things.get(event.thing)
                if state is None:
                    return False
                self._version += 1
                state.version = self._version
                self._dirty.add(state.id)
            state.online = event.online
            return True

    def apply_discovery(self, event: Discovery, at: float) -> bool:
        """Record an announcement (registering a thing not heard before) or its withdrawal (retiring).

        Returns True when something changed that the registry must store; an announcement identical to
        the one kept (a retained config replayed at start-up) changes nothing. A withdrawal of a thing
        never heard of registers nothing.
        """
        with self._lock:
            state = self._things.get(event.thing)
            if event.retired:
                if state is None or state.withdrawn:
                    return False
                state.withdrawn = True
            else:
                announcement = Announcement.of(event, at)
                if state is not None and state.announced == announcement and not state.withdrawn:
                    return False
                if state is None:
                    # first heard of through its announcement: it exists from now on, seen now
                    state = self._touch(event.thing, event.source, at)
                    if state is None:
                        return False
                state.announced = announcement
                state.withdrawn = False
            self._version += 1
            state.version = self._version
            self._announced.add(state.id)
            return True

    def silent(self, now: float, timeouts: SilenceTimeouts, watching_since: float) -> list[Availability]:
        """``offline`` for every thing silent past its timeout that does not report its availability
        (see ``hub.domain.availability``); retired things are left alone. Changes nothing: the caller
        routes each like an availability message."""
        with self._lock:
            return [
                Availability(s.id, s.source, online=False)
                for s in self._things.values()
                if not s.withdrawn
                and silent_too_long(
                    online=s.online,
                    reports_availability=s.reports_availability,
                    last_seen=s.last_seen,
                    battery=s.on_battery,
                    now=now,
                    watching_since=watching_since,
                    timeouts=timeouts,
                )
            ]

    def record_scan(self, scan: Scan, at: float) -> ScanRecord:
        record = ScanRecord(scan.reader, scan.source, scan.tag, scan.time if scan.time is not None else at)
        with self._lock:
            self._scans.append(record)
            del self._scans[:-200]  # the dashboard shows recent scans; the store keeps them all
            self._version += 1
        return record

    def load(
        self,
        states: list[ThingState],
        unmapped: Mapping[str, Mapping[str, UnmappedField]] | None = None,
    ) -> None:
        """Prime from the store at start-up (not marked dirty)."""
        with self._lock:
            for state in states:
                self._version += 1
                state.version = self._version
                self._things[state.id] = state
            for thing, fields in (unmapped or {}).items():
                if thing in self._things:
                    kept = sorted(fields.items(), key=lambda kv: kv[1].last_seen)[-MAX_UNMAPPED_FIELDS:]
                    self._unmapped[thing] = {path: UnmappedField(f.raw, f.last_seen) for path, f in kept}

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

    def take_changes(self) -> Changes:
        """Everything the store has not seen yet, taken at once (a thing registered by its announcement
        is among ``things`` in the same take, so its row exists before its announcement is written)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            announced, self._announced = self._announced, set()
            unmapped_ids, self._unmapped_dirty = self._unmapped_dirty, set()
            things = self._things
            return Changes(
                [s.copy() for i in dirty if (s := things.get(i)) is not None],
                [s.copy() for i in announced if (s := things.get(i)) is not None],
                {
                    i: {path: UnmappedField(f.raw, f.last_seen) for path, f in self._unmapped[i].items()}
                    for i in unmapped_ids
                    if i in self._unmapped
                },
            )

    def mark_changes(self, changes: Changes) -> None:
        """Mark what a failed store write held for the next flush again."""
        with self._lock:
            self._dirty.update(s.id for s in changes.things if s.id in self._things)
            self._announced.update(s.id for s in changes.announced if s.id in self._things)
            self._unmapped_dirty.update(i for i in changes.unmapped if i in self._unmapped)

    # -- unmapped fields -----------------------------------------------------------------------------
    def _note_unmapped(self, thing: str, fields: Mapping[str, Any], at: float) -> None:
        known = self._unmapped.get(thing)
        if known is None:
            known = self._unmapped[thing] = {}
        fresh = False
        for path, raw in fields.items():
            if isinstance(raw, str) and len(raw) > MAX_UNMAPPED_TEXT:
                raw = raw[:MAX_UNMAPPED_TEXT]
            found = known.get(path)
            if found is not None:
                found.raw = raw
                found.last_seen = at
                continue
            if len(known) >= MAX_UNMAPPED_FIELDS:
                del known[min(known, key=lambda p: known[p].last_seen)]
            known[path] = UnmappedField(raw, at)
            fresh = True
        if fresh or at - self._unmapped_marked.get(thing, float("-inf")) >= UNMAPPED_SAVE_EVERY_S:
            self._unmapped_marked[thing] = at
            self._unmapped_dirty.add(thing)

    def unmapped(self, thing: str) -> list[tuple[str, UnmappedField]]:
        """A thing's unmapped fields (copies), by field path."""
        with self._lock:
            known = self._unmapped.get(thing, {})
            copies = [(path, UnmappedField(f.raw, f.last_seen)) for path, f in known.items()]
        return sorted(copies, key=lambda item: item[0])

    def __len__(self) -> int:
        return len(self._things)
