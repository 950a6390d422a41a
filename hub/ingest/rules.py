"""Topic rules from the config: a topic pattern with named levels, JSON paths to canonical names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hub.domain.events import Event
from hub.ingest.decoder import Subscription


class TopicRulesDecoder:
    name = "rules"

    def __init__(self, rules: Sequence[Any] = ()) -> None:
        pass

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        return False

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        return []


__all__ = ["Any", "Sequence", "TopicRulesDecoder"]
