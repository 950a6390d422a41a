"""Home Assistant MQTT discovery: configs under the discovery prefix, and the state and availability topics
they name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class HomeAssistantDecoder:
    name = "homeassistant"

    def __init__(self, discovery_prefix: str = "homeassistant", max_topics: int = 10000) -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "HomeAssistantDecoder", "Sequence"]
