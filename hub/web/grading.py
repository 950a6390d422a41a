"""Privacy grading on the server: what a viewer may see of the live state, asked of the permission
function for every thing, on every path (page, API, live stream).

The kiosk and anonymous visitors are ``viewer=None``: they see public things only, each with the
readings its owner chose to share, and scans only as the public things they name (never card ids).
A device nobody has claimed yet is private: it is not shown until someone registers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from hub.domain.livestate import LiveState, ScanRecord, ThingState
from hub.domain.model import Action, Relation, Resident, Thing
from hub.domain.permissions import may
from hub.domain.privacy import visible_values

#: how a scan of a card, or of a tag the viewer may not see, is shown
HIDDEN_TAG = "a card or unlisted tag"


class Catalog(Protocol):
    """The registered things and their active relations (hub.storage.catalog.Catalog in the hub)."""

    def thing(self, thing_id: str) -> Thing | None: ...

    def relations(self, thing_id: str) -> list[Relation]: ...

    def thing_by_tag(self, tag: str) -> str | None: ...


class GradedView:
    def __init__(
        self, live: LiveState, catalog: Catalog, clock: Callable[[], float], viewer: Resident | None = None
    ) -> None:
        self.live = live
        self.catalog = catalog
        self.clock = clock
        self.viewer = viewer

    def grade(self, state: ThingState) -> ThingState | None:
        """The thing as the viewer may see it, or None when they may not know it exists."""
        thing = self.catalog.thing(state.id)
        if thing is None:
            return None
        relations = self.catalog.relations(state.id)
        now = self.clock()
        if not may(self.viewer, Action.SEE, thing, relations, now):
            return None
        values = visible_values(self.viewer, thing, relations, now, state.values) or {}
        times = {name: state.times[name] for name in values if name in state.times}
        return replace(state, values=dict(values), times=times)

    def things(self, since: int = 0) -> tuple[int, list[ThingState]]:
        """Things changed after ``since`` as the viewer may see them; retired things are left out of
        lists (their own page still shows them)."""
        version, states = self.live.snapshot(since)
        return version, [
            graded
            for state in states
            if not state.withdrawn
            and (graded := self.grade(state)) is not None
            and not self._retired(state.id)
        ]

    def _retired(self, thing_id: str) -> bool:
        thing = self.catalog.thing(thing_id)
        return thing is not None and thing.retired

    def thing(self, thing_id: str) -> ThingState | None:
        state = self.live.get(thing_id)
        return None if state is None else self.grade(state)

    def scans(self, limit: int) -> list[ScanRecord]:
        """Recent scans, each naming the thing when the viewer may see it, else hiding the tag."""
        shown = []
        for scan in self.live.recent_scans(limit):
            thing_id = self.catalog.thing_by_tag(scan.tag)
            thing = self.catalog.thing(thing_id) if thing_id else None
            visible = thing is not None and may(
                self.viewer, Action.SEE, thing, self.catalog.relations(thing.id), self.clock()
            )
            shown.append(replace(scan, tag=thing.name if visible and thing else HIDDEN_TAG))
        return shown
