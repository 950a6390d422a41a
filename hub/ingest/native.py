"""The hub's own scheme (DESIGN §5): things' state and availability, readers' scans."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hub.domain.clock import parse_timestamp, sane_time
from hub.domain.events import Availability, Event, Reading, Scan
from hub.domain.vocabulary import BOOLEAN, NUMERIC
from hub.ingest.decoder import PayloadError, Subscription, decode_json_object, decode_text, finite_number

#: Ids of things and readers: what fits in a topic level and a URL path segment without escaping.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_HEX_TAG = re.compile(r"(?:[0-9A-F]{2})+")
_WIEGAND_TAG = re.compile(r"W(26|34|37):[0-9]{1,12}")


def device_time(raw: Any, received: float) -> float | None:
    """The device's timestamp when it is a sane one, else None (arrival time is used)."""
    if raw is None:
        return None
    ts = parse_timestamp(raw)
    if ts is None:
        raise PayloadError("bad_time", f"time: {raw!r:.40} is not epoch seconds, ms or ISO 8601")
    return ts if sane_time(ts, received) else None


def canonical_values(
    obj: dict[str, Any], *, skip: frozenset[str] = frozenset({"time"})
) -> dict[str, float | bool]:
    """Validate a JSON object of canonical measurements (DESIGN §5)."""
    values: dict[str, float | bool] = {}
    for name, raw in obj.items():
        if name in skip:
            continue
        if name in NUMERIC:
            values[name] = finite_number(name, raw)
        elif name in BOOLEAN:
            if not isinstance(raw, bool):
                raise PayloadError("bad_value", f"{name}: expected true or false, got {raw!r:.40}")
            values[name] = raw
        else:
            raise PayloadError(
                "unknown_measurement", f"{name!r:.40} is not a canonical measurement (DESIGN §5 lists them)"
            )
    if not values:
        raise PayloadError("no_values", "the object holds no measurement")
    return values


def normalize_tag(raw: Any) -> str:
    """A tag id as DESIGN §5 spells it: uppercase hex without separators, or ``W26:<decimal>``."""
    if not isinstance(raw, str):
        raise PayloadError("bad_tag", f"tag: expected a string, got {type(raw).__name__}")
    if _WIEGAND_TAG.fullmatch(raw):
        return raw
    tag = raw.strip().upper().replace(":", "").replace(" ", "").replace("-", "")
    if not _HEX_TAG.fullmatch(tag) or len(tag) > 20:
        raise PayloadError("bad_tag", f"tag: {raw!r:.40} is not a hex UID (an even number of hex digits)")
    return tag


class NativeDecoder:
    name = "native"

    def __init__(self, base_topic: str = "neighborhood") -> None:
        self.base = base_topic.rstrip("/")
        self._prefix = self.base + "/"
        self._depth = self.base.count("/") + 1

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription(f"{self.base}/things/+/state"),
            Subscription(f"{self.base}/things/+/availability"),
            Subscription(f"{self.base}/readers/+/scan"),
        ]

    def matches(self, topic: str) -> bool:
        if not topic.startswith(self._prefix):
            return False
        parts = topic.split("/")[self._depth :]
        return len(parts) == 3 and (
            (parts[0] == "things" and parts[2] in ("state", "availability"))
            or (parts[0] == "readers" and parts[2] == "scan")
        )

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        kind, ident, leaf = topic.split("/")[self._depth :]
        if not ID_PATTERN.fullmatch(ident):
            raise PayloadError("bad_id", f"{ident!r:.40} is not a valid id (letters, digits, _ . : -)")
        if leaf == "availability":
            text = decode_text(payload).strip()
            if text not in ("online", "offline"):
                raise PayloadError("bad_value", f"availability: expected online or offline, got {text!r:.40}")
            return [Availability(thing=ident, source=self.name, online=text == "online")]
        obj = decode_json_object(payload)
        if kind == "readers":
            return [
                Scan(
                    reader=ident,
                    source=self.name,
                    tag=normalize_tag(obj.get("tag")),
                    time=device_time(obj.get("time"), received),
                )
            ]
        return [
            Reading(
                thing=ident,
                source=self.name,
                values=canonical_values(obj),
                time=device_time(obj.get("time"), received),
            )
        ]
