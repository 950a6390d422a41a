"""Alert topics on a real Mosquitto: retained JSON while open, an empty retained payload once cleared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from local_servers import retained_payload
from paho.mqtt.enums import CallbackAPIVersion

from hub.integrations.alert_topics import AlertSnapshot, AlertTopics

T0 = 1_750_000_000.0


@pytest.fixture
def topics(mosquitto: Any) -> Iterator[AlertTopics]:
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()

    def publish(topic: str, payload: str, qos: int, retain: bool) -> None:
        client.publish(topic, payload, qos, retain).wait_for_publish(5)

    yield AlertTopics(publish, base="neighborhood")
    client.disconnect()
    client.loop_stop()


def flood(state: str = "active", **changes: Any) -> AlertSnapshot:
    fields: dict[str, Any] = {
        "id": "a1",
        "thing": "basement-flood",
        "kind": "boolean",
        "severity": "critical",
        "state": state,
        "title": "Water in the basement",
        "body_public": "leak: yes",
        "opened": T0,
        "updated": T0 + 60,
    }
    fields.update(changes)
    return AlertSnapshot(**fields)


def test_an_active_alert_is_retained_with_every_field(topics: AlertTopics, mosquitto: Any) -> None:
    topics.publish(flood())
    payload = retained_payload(mosquitto, "neighborhood/alerts/a1")
    assert payload is not None
    assert json.loads(payload) == {
        "id": "a1",
        "thing": "basement-flood",
        "kind": "boolean",
        "severity": "critical",
        "state": "active",
        "title": "Water in the basement",
        "body": "leak: yes",
        "opened": T0,
        "updated": T0 + 60,
        "acknowledged_by": None,
        "claimed_by": None,
    }


def test_a_claim_replaces_the_retained_message_with_the_claimers_pseudonym(
    topics: AlertTopics, mosquitto: Any
) -> None:
    topics.publish(flood())
    topics.publish(flood("claimed", claimed_by="ada", updated=T0 + 120))
    payload = retained_payload(mosquitto, "neighborhood/alerts/a1")
    assert payload is not None
    got = json.loads(payload)
    assert (got["state"], got["claimed_by"], got["updated"]) == ("claimed", "ada", T0 + 120)


def test_clearing_leaves_no_retained_message(topics: AlertTopics, mosquitto: Any) -> None:
    topics.publish(flood())
    assert retained_payload(mosquitto, "neighborhood/alerts/a1") is not None
    topics.publish(flood("cleared"))
    assert retained_payload(mosquitto, "neighborhood/alerts/a1") is None


def test_clear_by_id_removes_the_retained_message(topics: AlertTopics, mosquitto: Any) -> None:
    topics.publish(flood(id="a2"))
    topics.clear("a2")
    assert retained_payload(mosquitto, "neighborhood/alerts/a2") is None


def test_a_thing_without_a_public_grade_shows_no_body(topics: AlertTopics, mosquitto: Any) -> None:
    topics.publish(flood(body_public=None))
    payload = retained_payload(mosquitto, "neighborhood/alerts/a1")
    assert payload is not None and json.loads(payload)["body"] is None


def test_an_alert_id_that_is_not_one_topic_level_is_refused() -> None:
    published: list[str] = []
    topics = AlertTopics(lambda t, p, q, r: published.append(t))
    for bad in ("a/b", "a+", "#", ""):
        with pytest.raises(ValueError):
            topics.publish(flood(id=bad))
    assert published == []


def test_snapshot_survives_the_round_trip_through_message_data() -> None:
    snapshot = flood("acknowledged", acknowledged_by="bo")
    assert AlertSnapshot.from_data(snapshot.to_data()) == snapshot
