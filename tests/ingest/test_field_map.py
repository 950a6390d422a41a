"""The config's field map: a field a decoder left unmapped becomes a canonical value for matching things."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixturecases import hub_router, route

from hub.config import ConfigError, parse_config
from hub.domain.events import Reading, Rejected
from hub.ingest.router import Router

FIELD_MAP = [
    # the garden nodes' formatter names its air sensor after the board it sits on, in °F
    {"thing": "ttn.garden-*", "field": "temp_board_f", "to": "temperature", "unit": "°F"},
]


@pytest.fixture(scope="module")
def router() -> Router:
    return hub_router(field_map=FIELD_MAP)


def uplink(device: str, decoded: dict[str, Any]) -> tuple[str, str]:
    return f"v3/garden@ttn/devices/{device}/up", json.dumps({"uplink_message": {"decoded_payload": decoded}})


def test_without_a_field_map_the_field_is_listed_as_unmapped() -> None:
    [event] = route(hub_router(), *uplink("garden-1", {"temp_board_f": 70.7, "battery": 90}))
    assert event == Reading("ttn.garden-1", "ttn", {"battery": 90.0}, None, {"temp_board_f": 70.7})


def test_mapped_with_unit_conversion_for_things_matching_the_glob(router: Router) -> None:
    [event] = route(router, *uplink("garden-1", {"temp_board_f": 70.7, "battery": 90}))
    assert event == Reading("ttn.garden-1", "ttn", {"battery": 90.0, "temperature": 21.5}, None, {})


def test_things_outside_the_glob_keep_the_field_unmapped(router: Router) -> None:
    [event] = route(router, *uplink("kitchen-1", {"temp_board_f": 70.7, "battery": 90}))
    assert event == Reading("ttn.kitchen-1", "ttn", {"battery": 90.0}, None, {"temp_board_f": 70.7})


def test_a_bad_value_is_rejected_without_losing_the_rest(router: Router) -> None:
    events = route(router, *uplink("garden-2", {"temp_board_f": "hot", "battery": 88, "uv_index": 3}))
    reading, rejected = events
    assert reading == Reading("ttn.garden-2", "ttn", {"battery": 88.0}, None, {"uv_index": 3})
    assert isinstance(rejected, Rejected) and rejected.reason == "bad_value"
    assert rejected.detail.startswith("temp_board_f → temperature")


def test_a_mapped_value_out_of_range_is_rejected(router: Router) -> None:
    reading, rejected = route(router, *uplink("garden-3", {"temp_board_f": 900, "battery": 50}))
    assert reading == Reading("ttn.garden-3", "ttn", {"battery": 50.0}, None, {})
    assert isinstance(rejected, Rejected) and rejected.reason == "out_of_range"


def test_a_decoder_value_wins_over_a_mapped_one(router: Router) -> None:
    [event] = route(router, *uplink("garden-4", {"temperature": 19.0, "temp_board_f": 70.7}))
    assert isinstance(event, Reading) and event.values == {"temperature": 19.0}


def test_a_field_map_to_a_name_outside_the_vocabulary_fails_config_validation() -> None:
    text = "ingest:\n  field_map:\n    - field: ANALOG.A0\n      to: moisture\n"
    with pytest.raises(ConfigError, match=r"hub.yaml, line 4, key ingest.field_map.0.to: 'moisture' is not"):
        parse_config(text, "hub.yaml")
