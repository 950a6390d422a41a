"""States shared from a resident's Home Assistant, as the link manager hands them to ingest
(``$ha_link/<thing>/state|availability``, hub/ingest/ha_link.py), through the router ``hub decode`` uses."""

from __future__ import annotations

import json

import pytest

from hub.app import build_router
from hub.config import HubConfig
from hub.domain.events import Availability, Ignored, Reading, Rejected
from hub.ingest.ha_link import SOURCE, HaLinkDecoder, availability_topic, state_topic

T = 1_790_000_000.0
THING = "ha_link.Xy3-abc_12d"


def state(value: str, **extra: object) -> bytes:
    body = {
        "entity_id": "sensor.basement_temperature",
        "state": value,
        "unit": "°C",
        "measurement": "temperature",
        "invert": False,
        "time": "2026-09-21T10:00:00.250+00:00",
    }
    return json.dumps({**body, **extra}).encode()


def route(topic: str, payload: bytes, config: HubConfig | None = None) -> list[object]:
    return list(build_router(config or HubConfig()).route(topic, payload, T))


def test_a_state_is_a_reading_at_home_assistants_time() -> None:
    (event,) = route(state_topic(THING), state("71.6", unit="°F"))
    assert event == Reading(THING, SOURCE, {"temperature": 22.0}, 1789984800.25)


def test_a_door_sensor_is_inverted_and_unavailable_is_offline() -> None:
    door = {"entity_id": "binary_sensor.shed_door", "measurement": "contact", "invert": True, "unit": None}
    (event,) = route(state_topic(THING), state("on", **door))
    assert event == Reading(THING, SOURCE, {"contact": False}, 1789984800.25)
    assert route(state_topic(THING), state("unavailable")) == [Availability(THING, SOURCE, online=False)]
    assert route(availability_topic(THING), b"online") == [Availability(THING, SOURCE, online=True)]


def test_unknown_is_no_value_and_a_bad_state_is_a_counted_rejection() -> None:
    assert route(state_topic(THING), state("unknown")) == [Ignored(SOURCE, state_topic(THING))]
    (bad,) = route(state_topic(THING), state("warm"))
    assert isinstance(bad, Rejected) and bad.reason == "bad_value" and bad.source == SOURCE


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (state("1", entity_id="device_tracker.phone"), "personal_data"),
        (state("1", entity_id="person.jenny"), "personal_data"),
        (state("1", measurement="rain"), "unknown_measurement"),
        (state("1", entity_id="not an entity"), "bad_value"),
        (b"[1]", "not_object"),
        (b"\xff", "not_utf8"),
    ],
)
def test_what_the_manager_never_sends_is_rejected(payload: bytes, reason: str) -> None:
    (event,) = route(state_topic(THING), payload)
    assert isinstance(event, Rejected) and event.reason == reason


def test_a_topic_rule_on_everything_cannot_claim_the_links_topics() -> None:
    catch_all = {"topic": "#", "thing": "anything", "fields": [{"name": "temperature"}]}
    config = HubConfig.model_validate({"ingest": {"rules": [catch_all]}})
    (event,) = route(state_topic(THING), state("20.5"), config)
    assert isinstance(event, Reading) and event.source == SOURCE


def test_the_decoder_is_off_with_the_feature_and_subscribes_to_nothing() -> None:
    off = HubConfig.model_validate({"integrations": {"homeassistant_source": {"enabled": False}}})
    assert route(state_topic(THING), state("20.5"), off) == [Ignored("unknown", state_topic(THING))]
    assert HaLinkDecoder().subscriptions() == []
    assert not HaLinkDecoder().matches("ha_link/x/state")  # only the $-topic, which MQTT never delivers
