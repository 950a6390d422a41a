"""The Things Stack v3 uplinks: decoded_payload, RSSI and SNR from rx_metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class TtnDecoder:
    name = "ttn"

    def __init__(self, prefix: str = "v3") -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "Sequence", "TtnDecoder"]
