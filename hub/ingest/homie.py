"""Homie 4 and 5: device attributes, node properties with datatype and unit, $state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class HomieDecoder:
    name = "homie"

    def __init__(self, root: str = "homie") -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "HomieDecoder", "Sequence"]
