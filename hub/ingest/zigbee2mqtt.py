"""Zigbee2MQTT: device JSON under the base topic, bridge/devices exposes, availability, bridge/state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class Zigbee2MqttDecoder:
    name = "zigbee2mqtt"

    def __init__(self, base_topics: Sequence[str] = ("zigbee2mqtt",)) -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "Sequence", "Zigbee2MqttDecoder"]
