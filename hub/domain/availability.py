"""When a thing counts as offline although nothing said so: it stayed silent longer than its timeout.

A device that publishes its own availability (an MQTT last will, Zigbee2MQTT's availability, Homie's
``$state``) is governed by that alone. Every other thing is online while it keeps talking and offline
once it was silent for longer than its timeout: ten minutes on mains, 25 hours on battery (a battery
sensor may report only a few times a day). The hub checks this with a periodic sweep.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

MAINS_TIMEOUT_S = 600.0
BATTERY_TIMEOUT_S = 25 * 3600.0
#: the sweep runs at most this far apart, and at least four times per (shortest) timeout
SWEEP_EVERY_S = 30.0
#: and never more often than this (a test's timeout of a second still gets a few sweeps per second)
SWEEP_AT_LEAST_S = 0.05


@dataclass(frozen=True, slots=True)
class SilenceTimeouts:
    """Seconds of silence after which a thing that never reports its availability counts as offline."""

    mains_s: float = MAINS_TIMEOUT_S
    battery_s: float = BATTERY_TIMEOUT_S

    def for_power(self, battery: bool) -> float:
        return self.battery_s if battery else self.mains_s

    def sweep_every(self) -> float:
        """How often the sweep must run so that no thing stays online much past its timeout."""
        shortest = min(self.mains_s, self.battery_s)
        return max(SWEEP_AT_LEAST_S, min(SWEEP_EVERY_S, shortest / 4))


def on_battery(power: str | None, values: Container[str]) -> bool:
    """Battery-powered: its announcement said so, or its readings carry a ``battery`` level."""
    return power == "battery" or "battery" in values


def silent_too_long(
    *,
    online: bool | None,
    reports_availability: bool,
    last_seen: float,
    battery: bool,
    now: float,
    watching_since: float,
    timeouts: SilenceTimeouts,
) -> bool:
    """Whether the sweep should mark this thing offline now.

    Only a thing believed online goes offline (unknown stays unknown, offline stays offline), and never
    one that reports its own availability. Silence is counted from ``watching_since`` at the earliest
    (when the hub started): a hub that was down for an hour does not call every thing offline at once
    before the things had a chance to speak.
    """
    if online is not True or reports_availability:
        return False
    silent_since = max(last_seen, watching_since)
    return now - silent_since >= timeouts.for_power(battery)
