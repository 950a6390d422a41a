"""Clock sanity: a Pi without a real-time clock boots in 1970; such times are never written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

#: 2020-01-01T00:00:00Z. Anything earlier comes from a device that has not synced its clock.
EARLIEST: Final[float] = 1577836800.0
#: A device clock this far ahead of ours is wrong, not early.
MAX_AHEAD_S: Final[float] = 300.0


def sane_time(ts: float, now: float) -> bool:
    """True when a device timestamp may be written as the reading's time."""
    return EARLIEST <= ts <= now + MAX_AHEAD_S


def parse_timestamp(raw: object) -> float | None:
    """Epoch seconds from a device's time field: epoch s or ms (number) or ISO 8601 text.

    Returns None when the value is not a timestamp at all. A text time without a zone is taken as UTC.
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        if isinstance(raw, int) and abs(raw) > 2**63:  # no clock counts that far (and float() overflows)
            return None
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            return None
        # Epoch milliseconds: anything past year 33658 in seconds is surely ms.
        return value / 1000.0 if value > 1e12 else value
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None
