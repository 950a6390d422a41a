"""States of entities residents share from their own Home Assistant, routed as topics
``$ha_link/<thing>/…``.

These messages never come over MQTT: the link manager (hub/integrations/ha_source.py) receives a shared
entity's state changes from the resident's Home Assistant and hands each to the hub's ingest queue as

* ``$ha_link/<thing>/state``: ``{"entity_id": "sensor.basement_temperature", "state": "21.5", "unit":
  "°C", "measurement": "temperature", "invert": false, "time": "2025-04-20T10:00:00.123+00:00"}`` — the
  entity's state, its unit, the canonical measurement chosen when it was shared (see
  hub/domain/ha_entities.py; ``invert`` for a door's on = open) and Home Assistant's ``last_updated``;
  a state of ``unavailable`` is the thing going offline;
* ``$ha_link/<thing>/availability``: ``online`` / ``offline`` (the Home Assistant is reachable or not).

So ``hub decode`` replays them like any other message. The ``$`` keeps MQTT out: no wildcard subscription
(a topic rule's ``#``) ever receives a topic starting with ``$``, so a device on the broker cannot pose as
a resident's Home Assistant; the decoder comes right after the hub's own, before topic rules.

The source is ``ha_link``, not ``homeassistant``: that name is taken by entities announced over MQTT
discovery (hub/ingest/homeassistant.py), which are neither owned by anyone nor limited to what a resident
chose to share.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.domain.events import Availability, Event, Ignored, Reading
from hub.domain.ha_entities import ENTITY_ID, UNAVAILABLE, entity_value, personal_reason
from hub.domain.units import UnitError
from hub.domain.vocabulary import MEASUREMENTS
from hub.ingest.decoder import PayloadError, Subscription, decode_json_object, decode_text
from hub.ingest.native import ID_PATTERN, device_time

SOURCE = "ha_link"
TOPIC_PREFIX = "$ha_link/"


def state_topic(thing: str) -> str:
    return f"{TOPIC_PREFIX}{thing}/state"


def availability_topic(thing: str) -> str:
    return f"{TOPIC_PREFIX}{thing}/availability"


class HaLinkDecoder:
    """Decodes the link manager's messages; subscribes to nothing (they arrive through ``Hub.push``)."""

    name = SOURCE

    def subscriptions(self) -> list[Subscription]:
        return []

    def matches(self, topic: str) -> bool:
        if not topic.startswith(TOPIC_PREFIX):
            return False
        parts = topic.split("/")
        return len(parts) == 3 and parts[2] in ("state", "availability")

    def decode(self, topic: str, payload: bytes, received: float) -> Iterable[Event]:
        _, thing, leaf = topic.split("/")
        if not ID_PATTERN.fullmatch(thing):
            raise PayloadError("bad_id", f"{thing!r:.40} is not a valid id (letters, digits, _ . : -)")
        if leaf == "availability":
            text = decode_text(payload).strip()
            if text not in ("online", "offline"):
                raise PayloadError("bad_value", f"availability: expected online or offline, got {text!r:.40}")
            return [Availability(thing, SOURCE, online=text == "online")]
        obj = decode_json_object(payload)
        entity = obj.get("entity_id")
        if not isinstance(entity, str) or not ENTITY_ID.fullmatch(entity):
            raise PayloadError("bad_value", f"entity_id: {entity!r:.60} is not a Home Assistant entity id")
        if personal_reason(entity, {}) is not None:  # the manager never sends one; a replay might
            raise PayloadError("personal_data", f"{entity} is personal data and never recorded")
        measurement = obj.get("measurement")
        if not isinstance(measurement, str) or measurement not in MEASUREMENTS:
            raise PayloadError("unknown_measurement", f"measurement: {measurement!r:.40} is not canonical")
        state = obj.get("state")
        if not isinstance(state, str):
            raise PayloadError("bad_value", f"state: expected Home Assistant's text, got {state!r:.40}")
        if state == UNAVAILABLE:
            return [Availability(thing, SOURCE, online=False)]
        unit = obj.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise PayloadError("bad_unit", f"unit: expected text, got {unit!r:.40}")
        try:
            value = entity_value(measurement, state, unit, invert=obj.get("invert") is True)
        except UnitError as exc:
            raise PayloadError(exc.reason, f"{entity} ({measurement}): {exc.detail}") from None
        if value is None:  # "unknown": Home Assistant has no value right now
            return [Ignored(SOURCE, topic)]
        return [Reading(thing, SOURCE, {measurement: value}, device_time(obj.get("time"), received))]
