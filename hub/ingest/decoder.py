"""The interface every ecosystem decoder implements, and the payload checks they share."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from hub.domain.events import Event, Ignored, Reading, Rejected, Value
from hub.domain.units import UnitError, to_canonical


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter a decoder needs.

    ``replay``: the decoder's knowledge lives in retained messages under this filter (discovery configs,
    device inventories), so the hub asks for them again on every connection, even when the broker kept
    its session; otherwise a restarted hub would not know the devices it had learned.
    """

    topic: str
    replay: bool = False


class Decoder(Protocol):
    """Turns the payload of one topic family into events, or into a rejection with a reason.

    A decoder is pure and synchronous: no I/O, no clocks beyond the ``received`` time it is given.
    It may raise; the router turns an unexpected exception into a counted ``decoder_error`` rejection.
    """

    #: Ecosystem name, written as the ``source`` tag of every point (``native``, ``tasmota``, ...).
    name: str

    def subscriptions(self) -> list[Subscription]:
        """MQTT topic filters this decoder needs."""
        ...

    def matches(self, topic: str) -> bool:
        """True when this decoder owns the topic (checked in registration order)."""
        ...

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]: ...


class PayloadError(ValueError):
    """A payload that breaks its ecosystem's format; ``reason`` is the counted code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

    def rejection(self, source: str, topic: str) -> Rejected:
        return Rejected(source=source, topic=topic, reason=self.reason, detail=self.detail)


def _reject_constant(name: str) -> Any:
    raise PayloadError("bad_number", f"{name} is not a number JSON allows")


def decode_text(payload: bytes) -> str:
    """UTF-8 text of a payload, or a ``not_utf8`` rejection. Trailing NULs (C firmwares) are dropped."""
    try:
        return payload.decode("utf-8").rstrip("\x00")
    except UnicodeDecodeError as exc:
        raise PayloadError("not_utf8", f"payload is not UTF-8 (byte {exc.start})") from None


#: one decoder for every message (``json.loads`` with an option builds a new one per call)
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(payload: bytes) -> Any:
    """Parse strict JSON: NaN and Infinity are refused, as the JSON standard says."""
    text = decode_text(payload)
    try:
        return _JSON.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError("not_json", f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:  # "[[[[...": the parser's stack, not the hub, gives out
        raise PayloadError("not_json", "payload is JSON nested deeper than the parser follows") from None


def decode_json_object(payload: bytes) -> dict[str, Any]:
    value = decode_json(payload)
    if not isinstance(value, dict):
        raise PayloadError("not_object", f"payload is JSON {type(value).__name__}, expected an object")
    return value


def finite_number(name: str, value: Any) -> float:
    """A JSON number as float; bools, strings and non-finite values are refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(
            "bad_value", f"{name}: expected a number, got {type(value).__name__} {value!r:.40}"
        )
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise PayloadError("bad_value", f"{name}: {value!r:.40} is too large a number") from None
    if not math.isfinite(number):
        raise PayloadError("bad_value", f"{name}: {value!r} is not a finite number")
    return number


_SLUG_BAD = re.compile(r"[^A-Za-z0-9_.:-]+")


def thing_id(source: str, raw: str) -> str:
    """The hub's id of a foreign device: ``<source>.<its own id>``, made safe for topics and URLs.

    Characters outside ``[A-Za-z0-9_.:-]`` become ``_`` (Zigbee2MQTT names may hold spaces and ``/``);
    an id longer than 64 characters keeps its start and gets a short hash of the whole, so it stays
    stable and unique.
    """
    slug = _SLUG_BAD.sub("_", raw.strip()).strip("_.:-") or "unnamed"
    ident = f"{source}.{slug}"
    if len(ident) > 64:
        digest = hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        ident = f"{ident[:55]}~{digest}".replace("~", "-")
    return ident


def canonical(name: str, raw: Any, unit: str | None = None) -> Value | None:
    """One device value as canonical measurement ``name`` (see :func:`hub.domain.units.to_canonical`)."""
    try:
        return to_canonical(name, raw, unit)
    except UnitError as exc:
        raise PayloadError(exc.reason, f"{name}: {exc.detail}") from None


#: At most this many unmapped fields are kept per message (a runaway payload cannot bloat the registry).
MAX_UNMAPPED = 64


class Values:
    """Collects one message's canonical values; a bad field becomes a rejection, not a lost message.

    ``add`` converts and range-checks; a problem with one field is recorded as a ``Rejected`` event
    with its reason (``bad_value``, ``bad_unit``, ``out_of_range``) while the other fields still land.
    ``unmapped`` keeps fields that name no canonical measurement.
    """

    __slots__ = ("problems", "source", "topic", "unmapped", "values")

    def __init__(self, source: str, topic: str) -> None:
        self.source = source
        self.topic = topic
        self.values: dict[str, Value] = {}
        self.unmapped: dict[str, Any] = {}
        self.problems: list[Rejected] = []

    def add(self, name: str, raw: Any, unit: str | None = None) -> None:
        if name in self.values:  # the same quantity under two keys (illuminance / illuminance_lux)
            return
        try:
            value = to_canonical(name, raw, unit)
        except UnitError as exc:
            self.problems.append(Rejected(self.source, self.topic, exc.reason, f"{name}: {exc.detail}"))
            return
        if value is not None:
            self.values[name] = value

    def skip(self, path: str, raw: Any) -> None:
        """A field that maps to nothing; only scalars are kept."""
        if len(self.unmapped) < MAX_UNMAPPED and (raw is None or isinstance(raw, str | int | float | bool)):
            self.unmapped[path] = raw

    def events(self, thing: str, time: float | None = None) -> list[Event]:
        """The reading (when anything was read) followed by the field problems."""
        out: list[Event] = []
        if self.values or self.unmapped:
            out.append(Reading(thing, self.source, self.values, time, self.unmapped))
        out.extend(self.problems)
        if not out:
            out.append(Ignored(self.source, self.topic))
        return out
