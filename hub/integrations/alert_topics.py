"""Alerts on MQTT: ``<base>/alerts/<alert id>``, retained JSON while open, an empty retained payload on clear.

The topic's audience is everyone who may subscribe, so the payload carries the body only as far as the
thing's public grade allows (``body_public``, decided by the caller through the permission function) and
residents only by pseudonym.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from hub.integrations.delivery import DeliveryError, Message, Sender

#: ``publish(topic, payload, qos, retain)``, as ``hub.app`` and the MQTT connection offer it
Publish = Callable[[str, str, int, bool], None]
OPEN_STATES = frozenset({"active", "acknowledged", "claimed"})
#: an alert id must be one topic level: no separators or wildcards
_TOPIC_LEVEL = re.compile(r"[^/+#\x00]+")


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """What the alert topic shows of one alert; residents as pseudonyms, the body already graded."""

    id: str
    thing: str
    kind: str
    severity: str
    state: str
    title: str
    body_public: str | None
    opened: float
    updated: float
    acknowledged_by: str | None = None
    claimed_by: str | None = None

    def to_data(self) -> dict[str, Any]:
        """As ``Message.data`` for the dispatcher's mqtt worker."""
        return asdict(self)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AlertSnapshot:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


class AlertTopics:
    """Publishes alerts under ``<base>/alerts/``."""

    def __init__(self, publish: Publish, base: str = "neighborhood", qos: int = 1) -> None:
        self.publish_raw = publish
        self.base = base.rstrip("/")
        self.qos = qos

    def topic(self, alert_id: str) -> str:
        if not _TOPIC_LEVEL.fullmatch(alert_id):
            raise ValueError(f"alert id {alert_id!r} cannot be an MQTT topic level (no '/', '+', '#')")
        return f"{self.base}/alerts/{alert_id}"

    def publish(self, alert: AlertSnapshot) -> None:
        """Retained JSON while the alert is open; the empty retained payload once it is cleared."""
        topic = self.topic(alert.id)
        if alert.state not in OPEN_STATES:
            self.publish_raw(topic, "", self.qos, True)
            return
        payload = {
            "id": alert.id,
            "thing": alert.thing,
            "kind": alert.kind,
            "severity": alert.severity,
            "state": alert.state,
            "title": alert.title,
            "body": alert.body_public,
            "opened": alert.opened,
            "updated": alert.updated,
            "acknowledged_by": alert.acknowledged_by,
            "claimed_by": alert.claimed_by,
        }
        self.publish_raw(
            topic, json.dumps(payload, ensure_ascii=False, separators=(",", ":")), self.qos, True
        )

    def clear(self, alert_id: str) -> None:
        """Remove the alert's retained message (an empty retained payload)."""
        self.publish_raw(self.topic(alert_id), "", self.qos, True)

    def sender(self) -> Sender:
        """A dispatcher sender for ``mqtt`` messages whose ``data`` is ``AlertSnapshot.to_data()``."""

        def send(message: Message) -> None:
            try:
                snapshot = AlertSnapshot.from_data(message.data)
            except TypeError as e:
                raise DeliveryError(f"alert message without a topic payload: {e}", retryable=False) from e
            self.publish(snapshot)

        return send
