"""Disclosures the audit log records for the people they concern: a resident who opens a thing's page, or
asks the API for it, and does not own it, is written as ``thing.view`` (actor: the viewer) so its owner
can read "who saw what about my things". At most once per viewer and thing per hour, so a kiosk-like
reload loop does not flood the log; the throttle lives in memory (a restart may write one more line).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hub.domain.model import AuditEntry, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import active_relations
from hub.web.context import People

THING_VIEW = "thing.view"


class ViewLog:
    """Writes ``thing.view`` entries through the directory, throttled per (viewer, thing)."""

    def __init__(
        self, clock: Callable[[], float], *, every_s: float = 3600.0, max_keys: int = 10_000
    ) -> None:
        self.clock = clock
        self.every_s = every_s
        self.max_keys = max_keys
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def viewed(
        self, directory: People, viewer: Resident, thing: Thing, relations: Sequence[Relation], via: str
    ) -> bool:
        """Record that ``viewer`` saw ``thing`` (through ``via``: page or api); False when not written
        (the viewer owns it, or saw it within the hour)."""
        now = self.clock()
        owners = {r.resident for r in active_relations(thing, relations, now) if r.kind is RelationKind.OWNS}
        if viewer.id in owners:
            return False
        key = (viewer.id, thing.id)
        with self._lock:
            last = self._last.get(key)
            if last is not None and 0 <= now - last < self.every_s:
                return False
            self._last.pop(key, None)
            self._last[key] = now
            while len(self._last) > self.max_keys:
                self._last.popitem(last=False)
        directory.append_audit(AuditEntry(now, viewer.id, THING_VIEW, thing=thing.id, detail={"via": via}))
        return True
