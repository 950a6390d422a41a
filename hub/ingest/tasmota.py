"""Tasmota: tele/SENSOR, STATE, LWT, stat/RESULT and POWER, its discovery; PN532, RDM6300, Wiegand tags."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class TasmotaDecoder:
    name = "tasmota"

    def __init__(
        self, full_topic: str = "%prefix%/%topic%/", discovery_prefix: str = "tasmota/discovery"
    ) -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "Sequence", "TasmotaDecoder"]
