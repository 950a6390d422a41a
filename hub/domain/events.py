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
    #: Fields of the payload that map to no canonical measurement, by their path in the payload
    #: (``ENERGY.ApparentPower``), with the raw scalar value. Kept out of the time series, counted,
    #: listed on the thing, and mapped when the config's ``ingest.field_map`` names them.
    unmapped: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Availability:
    thing: str
    source: str
    online: bool


@dataclass(frozen=True, slots=True)
class Discovery:
    """A device announced itself, or (``retired``) withdrew its announcement.

    ``measurements`` are the canonical names it will report. ``power`` is ``"mains"`` or ``"battery"``
    when the announcement says so (it picks the availability timeout). ``topics`` are MQTT topic filters
    the announcing decoder needs from now on (a Home Assistant entity's state and availability topics);
    the hub subscribes to them. ``attributes`` keeps what else the device said, JSON-serialisable.
    """

    thing: str
    source: str
    name: str | None = None
    model: str | None = None
    manufacturer: str | None = None
    sw_version: str | None = None
    measurements: tuple[str, ...] = ()
    power: str | None = None
    retired: bool = False
    topics: tuple[str, ...] = ()
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
