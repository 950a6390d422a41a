"""How things, values and times read on the dashboard. One place, used by the page and the live stream."""

from __future__ import annotations

import time
from typing import Any

from hub.domain.events import Value
from hub.domain.livestate import ScanRecord, ThingState
from hub.domain.vocabulary import BOOLEAN, NUMERIC, unit_of
from hub.telemetry import Telemetry

#: Words for booleans as (true, false); a true value in ALARMS is highlighted.
BOOLEAN_WORDS: dict[str, tuple[str, str]] = {
    "water_leak": ("leak", "dry"),
    "contact": ("closed", "open"),
    "occupancy": ("occupied", "clear"),
    "smoke": ("smoke", "clear"),
    "tamper": ("tampered", "intact"),
    "state": ("on", "off"),
}
ALARMS: frozenset[str] = frozenset({"water_leak", "smoke", "tamper"})

LABELS: dict[str, str] = {
    "pm1": "PM1",
    "pm25": "PM2.5",
    "pm10": "PM10",
    "co2": "CO₂",
    "voc": "VOC",
    "rssi": "RSSI",
    "snr": "SNR",
    "linkquality": "Link quality",
    "water_leak": "Water leak",
}

# Numeric measurements first in the vocabulary's order, then booleans, then anything else.
_ORDER: dict[str, int] = {name: i for i, name in enumerate([*NUMERIC, *sorted(BOOLEAN)])}


def label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def value_text(name: str, value: Value) -> str:
    """A value as a person reads it: "21.5 °C", "leak", "on"."""
    if isinstance(value, bool):
        yes, no = BOOLEAN_WORDS.get(name, ("yes", "no"))
        return yes if value else no
    number = f"{value:.2f}".rstrip("0").rstrip(".")
    unit = unit_of(name)
    return f"{number} {unit}" if unit else number


def age_text(seconds: float) -> str:
    """ "4 s ago", "3 min ago", "2 h ago", "5 d ago" (live.js mirrors this)."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    if s < 172800:
        return f"{s // 3600} h ago"
    return f"{s // 86400} d ago"


def clock_text(ts: float, now: float) -> str:
    """Local wall time; with the date when it is not today."""
    t, today = time.localtime(ts), time.localtime(now)
    same_day = (t.tm_year, t.tm_yday) == (today.tm_year, today.tm_yday)
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M", t)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def online_word(online: bool | None) -> str:
    if online is None:
        return "unknown"
    return "online" if online else "offline"


def thing_view(state: ThingState, now: float) -> dict[str, Any]:
    """A thing as the page template and live.js both consume it (JSON-safe)."""
    names = sorted(state.values, key=lambda n: (_ORDER.get(n, len(_ORDER)), n))
    return {
        "id": state.id,
        "source": state.source,
        "status": online_word(state.online),
        "last_seen": state.last_seen,
        "last_seen_iso": iso(state.last_seen),
        "last_seen_text": age_text(now - state.last_seen),
        "values": [
            {
                "name": name,
                "label": label(name),
                "text": value_text(name, state.values[name]),
                "alarm": name in ALARMS and state.values[name] is True,
                "time": state.times.get(name, state.last_seen),
            }
            for name in names
        ],
    }


def scan_view(scan: ScanRecord, now: float) -> dict[str, Any]:
    return {
        "reader": scan.reader,
        "tag": scan.tag,
        "time": scan.time,
        "time_iso": iso(scan.time),
        "time_text": clock_text(scan.time, now),
    }


def status_view(telemetry: Telemetry) -> dict[str, int]:
    """The dashboard's status line: totals since the hub started."""
    return {
        "messages": int(telemetry.value("hub_messages_received_total")),
        "stored": int(telemetry.value("hub_points_stored_total")),
        "rejected": _sum(telemetry.rejections),
        "dropped": _sum(telemetry.drops),
    }


def _sum(counter: Any) -> int:
    # Labelled counters: add up every label set's total.
    return int(sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total")))
