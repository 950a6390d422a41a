"""ESPHome (MQTT mode): plain-value states, <node>/status, esphome/discover, tag events."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class EsphomeDecoder:
    name = "esphome"

    def __init__(self, discovery_prefix: str = "esphome/discover") -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "EsphomeDecoder", "Sequence"]
