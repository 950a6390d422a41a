"""Topic rules from the config: named levels, JSON paths, units, and errors that name the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixturecases import NOW, Case, cases, route
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.app import build_router
from hub.config import ConfigError, HubConfig, TopicRule, load_config, parse_config
from hub.domain.events import Availability, Discovery, Ignored, Reading, Rejected, Scan
from hub.ingest.decoder import Subscription
from hub.ingest.router import Router
from hub.ingest.rules import TopicRulesDecoder, parse_path

EDGE = {c.topic: c for c in cases("malformed_edge.json")}

CONFIG = """\
ingest:
  rules:
    - topic: kitchen/temperature
      thing: kitchen
      fields:
        - name: temperature
    - topic: "telldus/{id}/temperature/state"
      thing: "telldus-{id}"
      source: telldus
      fields:
        - path: temperature
          name: temperature
    - topic: "sensors/{room}/{sensor}/json"
      thing: "{room}-{sensor}"
      fields:
        - path: env.temp
          name: temperature
          unit: °F
        - path: env.hum
          name: humidity
        - path: '"PM2.5"'
          name: pm25
        - path: "probes[1].value"
          name: voltage
          unit: mV
      time_path: ts
    - topic: "attic/+/{what}/#"
      thing: "attic {what}"
      fields:
        - path: $
          name: water_leak
"""


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    """Built from a YAML file exactly as ``hub run --config`` builds it."""
    path = tmp_path_factory.mktemp("config") / "hub.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return build_router(load_config(path))


def rules(*specs: dict[str, Any]) -> Router:
    config = HubConfig.model_validate({"ingest": {"rules": list(specs)}})
    return build_router(config)


# -- the malformed_edge fixtures the rules read ---------------------------------------------------------


@pytest.mark.parametrize("case", [EDGE["kitchen/temperature"]], ids=lambda c: c.id)
def test_plain_nan_is_no_value_not_an_error(router: Router, case: Case) -> None:
    assert route(router, case.topic or "", case.payload_bytes()) == [Ignored("rules", "kitchen/temperature")]
    assert route(router, "kitchen/temperature", "21.5") == [
        Reading("kitchen", "rules", {"temperature": 21.5})
    ]


@pytest.mark.parametrize("case", [EDGE["telldus/199/temperature/state"]], ids=lambda c: c.id)
def test_numeric_string_in_json_is_read_by_path(router: Router, case: Case) -> None:
    events = route(router, case.topic or "", case.payload_bytes())
    assert events == [Reading("telldus-199", "telldus", {"temperature": 15.5})]


def test_unit_inside_a_plain_value(router: Router) -> None:
    assert route(router, "kitchen/temperature", "20.6 ℃") == [
        Reading("kitchen", "rules", {"temperature": 20.6})
    ]


# -- paths, units, time ---------------------------------------------------------------------------------


def test_paths_captures_units_and_device_time(router: Router) -> None:
    payload = (
        '{"env": {"temp": 70.7, "hum": "45"}, "PM2.5": 6, "probes": [{"value": 1}, {"value": 3175}],'
        ' "ts": "2026-09-21T13:50:00Z"}'
    )
    [event] = route(router, "sensors/attic/s1/json", payload)
    assert event == Reading(
        "attic-s1",
        "rules",
        {"temperature": 21.5, "humidity": 45.0, "pm25": 6.0, "voltage": 3.175},
        time=1_789_998_600.0,  # 2026-09-21T13:50:00Z
    )


def test_a_missing_path_leaves_that_field_out(router: Router) -> None:
    [event] = route(router, "sensors/hall/s2/json", '{"env": {"hum": 51}}')
    assert event == Reading("hall-s2", "rules", {"humidity": 51.0})


def test_no_path_found_is_rejected_as_no_values(router: Router) -> None:
    [event] = route(router, "sensors/hall/s2/json", '{"temp": 20}')
    assert isinstance(event, Rejected) and (event.source, event.reason) == ("rules", "no_values")
    assert "env.temp" in event.detail


def test_a_bad_value_is_rejected_and_the_rest_lands(router: Router) -> None:
    events = route(router, "sensors/hall/s2/json", '{"env": {"temp": "warm", "hum": 140}, "PM2.5": 3}')
    assert events[0] == Reading("hall-s2", "rules", {"pm25": 3.0})
    assert [e.reason for e in events[1:] if isinstance(e, Rejected)] == ["bad_value", "out_of_range"]


def test_a_time_that_is_not_one_keeps_the_values(router: Router) -> None:
    events = route(router, "sensors/hall/s2/json", '{"env": {"hum": 40}, "ts": "teatime"}')
    assert events[0] == Reading("hall-s2", "rules", {"humidity": 40.0}, time=None)
    assert isinstance(events[1], Rejected) and events[1].reason == "bad_time"


def test_path_rules_need_json(router: Router) -> None:
    [event] = route(router, "sensors/hall/s2/json", "21.5 degrees")
    assert isinstance(event, Rejected) and event.reason == "not_json"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", None),
        ("", None),
        ("temp", ("temp",)),
        ("env.temp", ("env", "temp")),
        ("$.env.temp", ("env", "temp")),
        ("sensors[0].value", ("sensors", 0, "value")),
        ("sensors[-1]", ("sensors", -1)),
        ('"PM2.5"', ("PM2.5",)),
        ("'PM2.5'", ("PM2.5",)),
        ('SDS0X1."PM2.5"', ("SDS0X1", "PM2.5")),
        ('data["switch:0"].apower', ("data", "switch:0", "apower")),
        ("matrix[1][2]", ("matrix", 1, 2)),
        ('"unterminated', ("unterminated",)),
    ],
)
def test_path_syntax(path: str, expected: tuple[Any, ...] | None) -> None:
    assert parse_path(path) == expected


def test_an_unquoted_key_with_a_dot_is_found_as_written() -> None:
    router = rules({"topic": "air/{id}", "thing": "air-{id}", "fields": [{"path": "PM2.5", "name": "pm25"}]})
    assert route(router, "air/1", '{"PM2.5": 7}') == [Reading("air-1", "rules", {"pm25": 7.0})]


# -- topics, things, sources ----------------------------------------------------------------------------


def test_plus_matches_without_capture_and_hash_takes_the_rest(router: Router) -> None:
    assert route(router, "attic/a/leak/b/c", "ON") == [
        Reading("rules.attic_leak", "rules", {"water_leak": True})
    ]
    assert route(router, "attic/a/leak", "off") == [
        Reading("rules.attic_leak", "rules", {"water_leak": False})
    ]


def test_a_template_result_that_is_not_a_valid_id_is_sanitised_under_the_source() -> None:
    router = rules(
        {"topic": "home/{room}/t", "thing": "{room}", "source": "home", "fields": [{"name": "temperature"}]}
    )
    assert route(router, "home/living room/t", "20") == [
        Reading("home.living_room", "home", {"temperature": 20.0})
    ]
    assert route(router, "home/den/t", "20") == [Reading("den", "home", {"temperature": 20.0})]


def test_first_matching_rule_wins() -> None:
    router = rules(
        {"topic": "x/special", "thing": "special", "fields": [{"name": "humidity"}]},
        {"topic": "x/{name}", "thing": "x-{name}", "fields": [{"name": "temperature"}]},
    )
    assert route(router, "x/special", "50") == [Reading("special", "rules", {"humidity": 50.0})]
    assert route(router, "x/other", "20") == [Reading("x-other", "rules", {"temperature": 20.0})]


def test_rules_come_before_the_ecosystems() -> None:
    router = rules(
        {"topic": "tele/{dev}/SENSOR", "thing": "{dev}", "fields": [{"path": "T", "name": "temperature"}]}
    )
    assert route(router, "tele/porch/SENSOR", '{"T": 12}') == [
        Reading("porch", "rules", {"temperature": 12.0})
    ]


def test_subscriptions_replace_captures_with_plus(router: Router) -> None:
    decoder = next(d for d in router.decoders if isinstance(d, TopicRulesDecoder))
    assert decoder.subscriptions() == [
        Subscription("kitchen/temperature"),
        Subscription("telldus/+/temperature/state"),
        Subscription("sensors/+/+/json"),
        Subscription("attic/+/+/#"),
    ]


def test_topics_no_rule_describes_are_not_owned(router: Router) -> None:
    decoder = next(d for d in router.decoders if isinstance(d, TopicRulesDecoder))
    for topic in (
        "kitchen",
        "kitchen/temperature/x",
        "sensors/a/b/xml",
        "telldus//temperature/state",
        "attic",
    ):
        assert not decoder.matches(topic), topic


# -- config validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "thing", "message"),
    [
        ("a/#/b", "t", "# may only be the last level"),
        ("a/{x}/{x}", "t-{x}", "captures {x} twice"),
        ("a/b{x}", "t", "level 'b{x}' must be text, {name}"),
        ("a/+x", "t", "level '+x' must be text"),
        ("a/{x y}", "t", "level '{x y}' must be text"),
        ("a/{x}", "t-{y}", "thing 't-{y}' uses {y}, which topic 'a/{x}' does not capture"),
        ("a/{x}", "t-{x", "braces only as {name}"),
    ],
)
def test_an_invalid_rule_fails_config_validation_naming_its_index(
    topic: str, thing: str, message: str
) -> None:
    text = (
        "ingest:\n  rules:\n    - topic: ok/{a}\n      thing: '{a}'\n      fields: [{name: temperature}]\n"
        f"    - topic: '{topic}'\n      thing: '{thing}'\n      fields: [{{name: temperature}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "hub.yaml")
    assert "ingest.rules.1" in str(info.value) and message in str(info.value)
    assert "ingest.rules.0" not in str(info.value)


def test_the_example_config_rule_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "hub.example.yaml"
    config = parse_config(example.read_text(encoding="utf-8"), str(example))
    assert [rule.topic for rule in config.ingest.rules] == ["sensors/{room}/{sensor}/json"]
    assert TopicRulesDecoder(config.ingest.rules).subscriptions() == [Subscription("sensors/+/+/json")]


def test_a_rule_built_without_the_config_is_still_checked() -> None:
    rule = TopicRule.model_construct(topic="a/{x}", thing="{y}", source="rules", fields=[], time_path=None)
    with pytest.raises(ValueError, match="not captured"):
        TopicRulesDecoder([rule])


# -- properties -----------------------------------------------------------------------------------------

KNOWN = (Reading, Availability, Discovery, Scan, Rejected, Ignored)
_level = st.text(st.characters(exclude_characters="/#+", exclude_categories=("Cs",)), max_size=10)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    topic=st.sampled_from(
        ["kitchen/temperature", "telldus/{}/temperature/state", "sensors/{}/{}/json", "attic/{}/{}"]
    )
    .flatmap(lambda t: st.tuples(st.just(t), _level, _level))
    .map(lambda t: t[0].format(t[1], t[2])),
    payload=st.binary(max_size=200)
    | st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=8) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["env", "temp", "hum"]), inner)
        ),
        max_leaves=12,
    ).map(lambda doc: repr(doc).replace("'", '"').encode()),
)
def test_any_payload_on_any_rule_topic_never_raises(router: Router, topic: str, payload: bytes) -> None:
    events = router.route(topic, payload, NOW)
    assert events and all(isinstance(e, KNOWN) for e in events)
    assert not [e for e in events if isinstance(e, Rejected) and e.reason == "decoder_error"]
