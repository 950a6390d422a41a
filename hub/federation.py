"""Federation: the little this neighborhood shares with neighboring ones, through a Mosquitto bridge.

What crosses is what an anonymous visitor of the kiosk may already see, and less:

- only things their owner made ``public`` (the visibility level that lets anonymous visitors see them:
  making a thing public is the owner's consent), and of them only the values
  ``privacy.visible_values`` grants an anonymous viewer (all of them, the derived yes/no state, or none);
- coarsened in time: per thing and period (``federation.interval_s``, an hour by default) the mean,
  minimum, maximum and count of each number, and for a yes/no state whether it was ever true;
- coarsened in space: the centre of a ``federation.grid_m`` cell (1 km by default); a named place,
  the owner and every other relation never cross;
- open alerts of those things as kind and severity only.

Everything is published, retained, under ``<base>/federation/out/``; the bridge in
``config/mosquitto/federation-bridge.conf`` forwards that subtree, and nothing else, to the federation's
broker. The values are sampled from the live state once a second (a thing's value is folded in once per
new reading time), so nothing is added to the ingest path.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hub.alerting import AlertService
from hub.config import FederationConfig
from hub.domain.events import Value
from hub.domain.livestate import LiveState
from hub.domain.model import Location, Visibility
from hub.domain.privacy import coarse_location, visible_values
from hub.storage.catalog import Catalog

log = logging.getLogger(__name__)

#: seconds between samples of the live state
SAMPLE_EVERY_S = 1.0


@dataclass(slots=True)
class _Span:
    """One measurement's values within the period."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    ever: bool = False  # booleans: true at least once
    boolean: bool = False

    def add(self, value: Value) -> None:
        self.count += 1
        if isinstance(value, bool):
            self.boolean = True
            self.ever = self.ever or value
            return
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


@dataclass(slots=True)
class _Period:
    start: float
    spans: dict[str, dict[str, _Span]] = field(default_factory=dict)  # thing → measurement → span


class Federation:
    """Publishes the consented, coarsened subtree ``<base>/federation/out/`` (module docstring)."""

    def __init__(
        self,
        live: LiveState,
        catalog: Catalog,
        alerting: AlertService,
        publish: Callable[[str, str, int, bool], None],
        base_topic: str,
        config: FederationConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.live = live
        self.catalog = catalog
        self.alerting = alerting
        self.publish = publish
        self.prefix = f"{base_topic}/federation/out"
        self.interval = config.interval_s
        self.grid_m = config.grid_m
        self.clock = clock
        self._version = 0
        self._folded: dict[tuple[str, str], float] = {}  # (thing, measurement) → newest time folded in
        self._period = _Period(self._period_start(clock()))
        self._alerts: dict[str, str] = {}  # thing → the alert payload last published
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _period_start(self, now: float) -> float:
        return math.floor(now / self.interval) * self.interval

    # -- life -----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._version, _ = self.live.snapshot(self.live.version)  # values from before the start are old
        self._thread = threading.Thread(target=self._run, name="federation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            try:
                self.step(self.clock())
            except Exception:  # sharing must never stop the hub, nor stop trying
                log.exception("federation step failed")

    # -- one step -------------------------------------------------------------------------------------
    def step(self, now: float) -> None:
        """Fold new values in, publish the period that ended, and the alerts that changed."""
        if now >= self._period.start + self.interval:
            self._publish_period(self._period)
            self._period = _Period(self._period_start(now))
        self._sample(now)
        self._publish_alerts(now)

    def _shared(self, thing_id: str, now: float, values: dict[str, Value]) -> dict[str, Value] | None:
        thing = self.catalog.thing(thing_id)
        if thing is None or thing.retired or thing.visibility is not Visibility.PUBLIC:
            return None
        return visible_values(None, thing, self.catalog.relations(thing_id), now, values)

    def _sample(self, now: float) -> None:
        self._version, changed = self.live.snapshot(self._version)
        for state in changed:
            shared = self._shared(state.id, now, state.values)
            if not shared:
                continue
            spans = self._period.spans.setdefault(state.id, {})
            for name, value in shared.items():
                at = state.times.get(name, state.last_seen)
                key = (state.id, name)
                if at <= self._folded.get(key, -math.inf):
                    continue  # this value was folded in already
                if len(self._folded) >= 500_000 and key not in self._folded:
                    self._folded.clear()  # bounded; at worst a value is folded in twice
                self._folded[key] = at
                spans.setdefault(name, _Span()).add(value)

    def _publish_period(self, period: _Period) -> None:
        for thing_id, spans in sorted(period.spans.items()):
            thing = self.catalog.thing(thing_id)
            if thing is None or thing.visibility is not Visibility.PUBLIC:
                continue  # made private during the period: nothing of it crosses
            values = {
                name: {
                    "mean": round(span.total / span.count, 3),
                    "min": span.low,
                    "max": span.high,
                    "count": span.count,
                }
                for name, span in sorted(spans.items())
                if not span.boolean and span.count
            }
            states = {name: span.ever for name, span in sorted(spans.items()) if span.boolean}
            summary: dict[str, object] = {
                "thing": thing.id,
                "name": thing.name,
                "kind": thing.kind,
                "period_start": period.start,
                "period_s": self.interval,
                "values": values,
                "states": states,
            }
            cell = self._cell(thing.location)
            if cell is not None:
                summary["cell"] = cell
            self.publish(f"{self.prefix}/things/{thing.id}/summary", json.dumps(summary), 1, True)
        log.debug("federation period published start=%s things=%d", period.start, len(period.spans))

    def _cell(self, location: Location | None) -> dict[str, float] | None:
        """The centre of the thing's ``grid_m`` cell; a named place never crosses."""
        if location is None or location.lat is None or location.lon is None:
            return None
        coarse = coarse_location(Location(lat=location.lat, lon=location.lon), self.grid_m)
        if coarse is None or coarse.lat is None or coarse.lon is None:
            return None
        return {"lat": coarse.lat, "lon": coarse.lon, "grid_m": self.grid_m}

    def _publish_alerts(self, now: float) -> None:
        by_thing: dict[str, list[dict[str, str]]] = {}
        for alert in self.alerting.open_alerts():
            thing = self.catalog.thing(alert.thing)
            if thing is None or thing.visibility is not Visibility.PUBLIC:
                continue
            by_thing.setdefault(alert.thing, []).append(
                {"kind": alert.kind, "severity": alert.severity.value}
            )
        for thing_id in sorted(set(by_thing) | set(self._alerts)):
            alerts = sorted(by_thing.get(thing_id, []), key=lambda a: (a["kind"], a["severity"]))
            payload = json.dumps({"thing": thing_id, "alerts": alerts}) if alerts else ""
            if self._alerts.get(thing_id, "") == payload:
                continue
            # an empty retained payload removes the retained alert of a thing that has none open
            self.publish(f"{self.prefix}/alerts/{thing_id}", payload, 1, True)
            if payload:
                self._alerts[thing_id] = payload
            else:
                self._alerts.pop(thing_id, None)
