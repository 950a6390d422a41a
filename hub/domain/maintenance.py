"""Maintenance of shared things, due by date or by use measured from a power plug. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Final

DAY_S: Final[float] = 86400.0
#: A plug silent for longer than this is not assumed to have kept drawing power all along.
MAX_GAP_S: Final[float] = 900.0
#: A plug drawing more than this is running (standby draws less).
RUNNING_W: Final[float] = 5.0


@dataclass(frozen=True, slots=True)
class MaintenancePlan:
    """Service ``thing`` every ``every_days`` and/or every ``every_hours_used`` running hours.

    ``hours_at_last`` is the running-hours counter when it was last serviced at ``last_done``.
    """

    thing: str
    every_days: float | None
    every_hours_used: float | None
    last_done: float
    hours_at_last: float = 0.0


@dataclass(frozen=True, slots=True)
class MaintenanceDue:
    """Why a thing needs service now; ``explain`` says it in words."""

    thing: str
    by_date: bool
    by_usage: bool
    days_since: float
    hours_since: float

    def explain(self, plan: MaintenancePlan) -> str:
        parts = []
        if self.by_date:
            parts.append(f"{self.days_since:.0f} days since the last service (every {plan.every_days:g})")
        if self.by_usage:
            parts.append(f"{self.hours_since:.1f} h of use since then (every {plan.every_hours_used:g} h)")
        return "; ".join(parts)


def due(plan: MaintenancePlan, now: float, hours_used_now: float) -> MaintenanceDue | None:
    """Service due at ``now`` with the running-hours counter at ``hours_used_now``, or None.

    A counter below ``hours_at_last`` was reset (a new plug): the hours since the reset count.
    """
    days_since = max(now - plan.last_done, 0.0) / DAY_S
    hours_since = (
        hours_used_now - plan.hours_at_last if hours_used_now >= plan.hours_at_last else hours_used_now
    )
    by_date = plan.every_days is not None and days_since >= plan.every_days
    by_usage = plan.every_hours_used is not None and hours_since >= plan.every_hours_used
    if not (by_date or by_usage):
        return None
    return MaintenanceDue(plan.thing, by_date, by_usage, days_since, hours_since)


def done(plan: MaintenancePlan, now: float, hours_used_now: float) -> MaintenancePlan:
    """The plan after a service at ``now``: both clocks start again."""
    return replace(plan, last_done=now, hours_at_last=hours_used_now)


def next_due_at(plan: MaintenancePlan) -> float | None:
    """When the plan falls due by date (for a scheduler job); use cannot be foretold."""
    return None if plan.every_days is None else plan.last_done + plan.every_days * DAY_S


def usage_hours(
    power_samples: Sequence[tuple[float, float]],
    threshold_w: float = RUNNING_W,
    *,
    max_gap_s: float = MAX_GAP_S,
) -> float:
    """Hours a plug drew more than ``threshold_w``, from ``(time, watts)`` samples in any order.

    Each sample holds until the next one, for at most ``max_gap_s``; the last sample adds nothing
    (nothing says how long it lasted). Samples with a non-finite time or power are skipped.
    """
    samples = sorted((t, w) for t, w in power_samples if math.isfinite(t) and math.isfinite(w))
    running_s = 0.0
    for (t, watts), (t_next, _) in pairwise(samples):
        if watts > threshold_w:
            running_s += min(t_next - t, max_gap_s)
    return running_s / 3600.0
