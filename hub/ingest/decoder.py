"""The interface every ecosystem decoder implements, and the payload checks they share."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any, Protocol

from hub.domain.events import Event, Rejected


class Decoder(Protocol):
    """Turns the payload of one topic family into events, or into a rejection with a reason.

    A decoder is pure and synchronous: no I/O, no clocks beyond the ``received`` time it is given.
    It may raise; the router turns an unexpected exception into a counted ``decoder_error`` rejection.
    """

    #: Ecosystem name, written as the ``source`` tag of every point (``native``, ``tasmota``, ...).
    name: str

    def subscriptions(self) -> list[str]:
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


def decode_json(payload: bytes) -> Any:
    """Parse strict JSON: NaN and Infinity are refused, as the JSON standard says."""
    text = decode_text(payload)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PayloadError("not_json", f"payload is not JSON: {exc.msg} at char {exc.pos}") from None


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
    number = float(value)
    if not math.isfinite(number):
        raise PayloadError("bad_value", f"{name}: {value!r} is not a finite number")
    return number
