"""Availability by silence: the pure timeout rule, and how the live state applies it."""

from __future__ import annotations

import pytest

from hub.domain.availability import SilenceTimeouts, on_battery, silent_too_long
from hub.domain.events import Availability, Discovery, Reading
from hub.domain.livestate import MAX_UNMAPPED_FIELDS, LiveState

T0 = 1_790_000_000.0
TIMEOUTS = SilenceTimeouts(mains_s=600.0, battery_s=25 * 3600.0)


def silent(
    *,
    online: bool | None = True,
    reports: bool = False,
    last_seen: float = T0,
    battery: bool = False,
    now: float,
    since: float = T0 - 86400 * 10,
) -> bool:
    return silent_too_long(
        online=online,
        reports_availability=reports,
        last_seen=last_seen,
        battery=battery,
        now=now,
        watching_since=since,
        timeouts=TIMEOUTS,
    )


# -- the rule -----------------------------------------------------------------------------------------


def test_defaults_are_ten_minutes_on_mains_and_25_hours_on_battery() -> None:
    assert SilenceTimeouts().for_power(battery=False) == 600.0
    assert SilenceTimeouts().for_power(battery=True) == 90_000.0


def test_mains_thing_goes_offline_after_ten_silent_minutes_not_before() -> None:
    assert not silent(now=T0 + 599)
    assert silent(now=T0 + 600)


def test_battery_thing_may_stay_silent_a_day() -> None:
    assert not silent(battery=True, now=T0 + 24 * 3600)
    assert silent(battery=True, now=T0 + 25 * 3600)


def test_a_thing_that_reports_its_own_availability_never_times_out() -> None:
    assert not silent(reports=True, now=T0 + 10 * 86400)


@pytest.mark.parametrize("online", [None, False])
def test_only_a_thing_believed_online_goes_offline(online: bool | None) -> None:
    assert not silent(online=online, now=T0 + 10 * 86400)


def test_silence_counts_from_hub_start_at_the_earliest() -> None:
    # the hub was down for an hour: things get their full timeout after it is back
    started = T0 + 3600
    assert not silent(now=started + 599, since=started)
    assert silent(now=started + 600, since=started)


def test_battery_when_announced_or_when_readings_carry_a_battery_level() -> None:
    assert on_battery("battery", {})
    assert on_battery(None, {"battery": 80.0, "temperature": 20.0})
    assert on_battery("mains", {"battery": 80.0})  # a battery level speaks for itself
    assert not on_battery("mains", {"temperature": 20.0})
    assert not on_battery(None, {})


@pytest.mark.parametrize(
    ("mains", "battery", "every"),
    [(600.0, 90_000.0, 30.0), (1.0, 90_000.0, 0.25), (0.01, 0.01, 0.05), (100.0, 40.0, 10.0)],
)
def test_sweep_runs_every_30_s_or_four_times_per_shortest_timeout(
    mains: float, battery: float, every: float
) -> None:
    assert SilenceTimeouts(mains, battery).sweep_every() == pytest.approx(every)


# -- the live state -----------------------------------------------------------------------------------


def test_sweep_finds_silent_mains_things_and_leaves_the_rest() -> None:
    live = LiveState()
    live.apply_reading(Reading("quiet-plug", "tasmota", {"power": 3.0}), at=T0)
    live.apply_reading(Reading("busy-plug", "tasmota", {"power": 5.0}), at=T0 + 500)
    live.apply_reading(Reading("door", "zigbee2mqtt", {"contact": True, "battery": 90.0}), at=T0)
    live.apply_reading(Reading("lwt-plug", "tasmota", {"power": 1.0}), at=T0)
    live.apply_availability(Availability("lwt-plug", "tasmota", online=True), at=T0)
    found = live.silent(T0 + 700, TIMEOUTS, watching_since=T0 - 1000)
    assert found == [Availability("quiet-plug", "tasmota", online=False)]


def test_sweep_treats_an_announced_battery_device_as_battery() -> None:
    live = LiveState()
    live.apply_discovery(Discovery("flood", "homeassistant", power="battery"), at=T0)
    live.apply_reading(Reading("flood", "homeassistant", {"water_leak": False}), at=T0)
    assert live.silent(T0 + 3600, TIMEOUTS, watching_since=T0 - 1000) == []
    assert live.silent(T0 + 25 * 3600, TIMEOUTS, watching_since=T0 - 1000) == [
        Availability("flood", "homeassistant", online=False)
    ]


def test_offline_by_silence_keeps_last_seen_and_does_not_count_as_reporting() -> None:
    live = LiveState()
    live.apply_reading(Reading("plug", "tasmota", {"power": 3.0}), at=T0)
    (event,) = live.silent(T0 + 700, TIMEOUTS, watching_since=T0)
    assert live.apply_availability(event, T0 + 700, reported=False)
    state = live.get("plug")
    assert state is not None
    assert (state.online, state.last_seen, state.reports_availability) == (False, T0, False)
    # offline already: the next sweep does not say it again
    assert live.silent(T0 + 800, TIMEOUTS, watching_since=T0) == []


def test_a_reading_brings_a_silent_thing_back_online_and_says_so_once() -> None:
    live = LiveState()
    assert live.apply_reading(Reading("plug", "tasmota", {"power": 3.0}), at=T0) is False
    (event,) = live.silent(T0 + 700, TIMEOUTS, watching_since=T0)
    live.apply_availability(event, T0 + 700, reported=False)
    assert live.apply_reading(Reading("plug", "tasmota", {"power": 4.0}), at=T0 + 900) is True
    assert live.apply_reading(Reading("plug", "tasmota", {"power": 5.0}), at=T0 + 901) is False
    state = live.get("plug")
    assert state is not None and state.online is True


def test_a_reading_does_not_override_a_devices_own_offline() -> None:
    live = LiveState()
    live.apply_availability(Availability("plug", "tasmota", online=False), at=T0)
    assert live.apply_reading(Reading("plug", "tasmota", {"power": 4.0}), at=T0 + 1) is False
    state = live.get("plug")
    assert state is not None and state.online is False


def test_silence_sweep_of_an_unknown_thing_registers_nothing() -> None:
    live = LiveState()
    assert not live.apply_availability(Availability("ghost", "native", online=False), T0, reported=False)
    assert live.get("ghost") is None


def test_a_retired_thing_is_not_swept() -> None:
    live = LiveState()
    live.apply_reading(Reading("plug", "tasmota", {"power": 3.0}), at=T0)
    live.apply_discovery(Discovery("plug", "tasmota", retired=True), at=T0 + 1)
    assert live.silent(T0 + 10_000, TIMEOUTS, watching_since=T0) == []


# -- announcements and unmapped fields in the live state -------------------------------------------


def test_announcement_registers_a_thing_and_a_replay_changes_nothing() -> None:
    live = LiveState()
    event = Discovery("homeassistant.ws1", "homeassistant", name="Garden", model="WS-1", power="mains")
    assert live.apply_discovery(event, at=T0)
    first = live.take_changes()
    assert [s.id for s in first.things] == ["homeassistant.ws1"]  # the row, then its announcement
    assert [s.id for s in first.announced] == ["homeassistant.ws1"]
    assert not live.apply_discovery(event, at=T0 + 60)  # the retained config, replayed
    assert not live.take_changes()
    state = live.get("homeassistant.ws1")
    assert state is not None and state.announced is not None
    assert (state.announced.model, state.announced.at, state.online) == ("WS-1", T0, None)


def test_withdrawal_retires_and_a_new_announcement_brings_back() -> None:
    live = LiveState()
    live.apply_discovery(Discovery("t", "homeassistant", name="A"), at=T0)
    assert live.apply_discovery(Discovery("t", "homeassistant", retired=True), at=T0 + 1)
    assert not live.apply_discovery(Discovery("t", "homeassistant", retired=True), at=T0 + 2)
    state = live.get("t")
    assert state is not None and state.withdrawn
    assert live.apply_discovery(Discovery("t", "homeassistant", name="A"), at=T0 + 3)
    state = live.get("t")
    assert state is not None and not state.withdrawn


def test_withdrawal_of_a_thing_never_heard_of_registers_nothing() -> None:
    live = LiveState()
    assert not live.apply_discovery(Discovery("ghost", "homeassistant", retired=True), at=T0)
    assert live.get("ghost") is None and not live.take_changes()


def test_unmapped_fields_keep_last_value_and_time_bounded_per_thing() -> None:
    live = LiveState()
    live.apply_reading(Reading("plug", "tasmota", {"power": 3.0}, unmapped={"ENERGY.Factor": 0.5}), T0)
    live.apply_reading(Reading("plug", "tasmota", {}, unmapped={"ENERGY.Factor": 0.7}), T0 + 5)
    assert [(p, f.raw, f.last_seen) for p, f in live.unmapped("plug")] == [("ENERGY.Factor", 0.7, T0 + 5)]
    many = {f"x{i:03d}": i for i in range(MAX_UNMAPPED_FIELDS + 10)}
    live.apply_reading(Reading("plug", "tasmota", {}, unmapped=many), T0 + 10)
    fields = dict(live.unmapped("plug"))
    assert len(fields) == MAX_UNMAPPED_FIELDS
    assert "x073" in fields  # the newest stay, the one seen longest ago went first
    assert "ENERGY.Factor" not in fields


def test_unmapped_fields_are_saved_when_new_and_then_at_most_once_a_minute() -> None:
    live = LiveState()
    live.apply_reading(Reading("plug", "tasmota", {"power": 1.0}, unmapped={"a": 1}), T0)
    assert set(live.take_changes().unmapped) == {"plug"}
    live.apply_reading(Reading("plug", "tasmota", {"power": 1.0}, unmapped={"a": 2}), T0 + 10)
    assert live.take_changes().unmapped == {}
    live.apply_reading(Reading("plug", "tasmota", {"power": 1.0}, unmapped={"b": 2}), T0 + 11)
    assert set(live.take_changes().unmapped["plug"]) == {"a", "b"}  # a new field: at once
    live.apply_reading(Reading("plug", "tasmota", {"power": 1.0}, unmapped={"a": 3}), T0 + 80)
    assert live.take_changes().unmapped["plug"]["a"].raw == 3
