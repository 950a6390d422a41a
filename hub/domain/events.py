"""Typed events that decoders produce at the edge; nothing past the edge re-checks them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Value = float | bool


@dataclass(frozen=True, slots=True)
class Reading:
    """Canonical measurements of one thing from one message.

    ``time`` is the device's own timestamp (epoch seconds) when it carried a sane one, else None.
    """

    thing: str
    source: str
    values: dict[str, Value]
    time: float | None = None


@dataclass(frozen=True, slots=True)
class Availability:
    thing: str
    source: str
    online: bool


@dataclass(frozen=True, slots=True)
class Discovery:
    """A device announced itself (name, model, ...); later issues fill the details."""

    thing: str
    source: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scan:
    """A tag presented at a reader. ``tag`` follows DESIGN §5 (uppercase hex or ``W26:<decimal>``)."""

    reader: str
    source: str
    tag: str
    time: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that could not be decoded. ``reason`` is a short stable code; ``detail`` says why."""

    source: str
    topic: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message on a subscribed topic that carries nothing the hub records (commands, metadata)."""

    source: str
    topic: str


Event = Reading | Availability | Discovery | Scan | Rejected | Ignored
