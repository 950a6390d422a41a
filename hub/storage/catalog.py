"""A read cache of the directory: things, their active relations and tags, for the hot read paths.

The dashboard and the live stream grade every thing they show through the permission function; doing
that against the database per request would cost a query per thing. The catalog reloads everything in
three queries when it is older than ``ttl`` seconds (or when told the directory changed).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

from hub.domain.model import Relation, Thing
from hub.storage.directory import Directory


class Catalog:
    def __init__(
        self, directory: Directory, *, ttl: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._things: dict[str, Thing] = {}
        self._relations: dict[str, list[Relation]] = {}
        self._tags: dict[str, str] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded_at < self.ttl:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < self.ttl:
                return
            things = {thing.id: thing for thing in self.directory.things()}
            relations: dict[str, list[Relation]] = defaultdict(list)
            for relation in self.directory.all_relations(now=self.clock()):
                relations[relation.thing].append(relation)
            self._things, self._relations = things, dict(relations)
            self._tags = self.directory.thing_tags()
            self._loaded_at = time.monotonic()

    def thing(self, thing_id: str) -> Thing | None:
        self._fresh()
        return self._things.get(thing_id)

    def relations(self, thing_id: str) -> list[Relation]:
        self._fresh()
        return self._relations.get(thing_id, [])

    def thing_by_tag(self, tag: str) -> str | None:
        self._fresh()
        return self._tags.get(tag)
