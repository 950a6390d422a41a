"""Shelly Gen2/Gen3: events/rpc NotifyStatus and NotifyFullStatus, status/<component>:<id>, online."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class ShellyDecoder:
    name = "shelly"

    def __init__(self) -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "Sequence", "ShellyDecoder"]
