"""The alert engine: every rule kind, hysteresis and minimum durations, debounced availability, re-triggers
that update instead of duplicating, the lifecycle and its refusals, reminders, addressees from relations
(custody, watcher thresholds, quiet hours, permissions) and the messages."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from hub.domain.alert_rules import (
    DEFAULT_RULES,
    BooleanRule,
    LowBattery,
    Offline,
    OverdueLoan,
    RateOfChange,
    RuleError,
    Scope,
    Severity,
    Stale,
    Threshold,
    rule_from_dict,
    rule_to_dict,
)
from hub.domain.alerts import (
    Addressee,
    Alert,
    AlertEngine,
    AlertError,
    AlertState,
    Detail,
    Reason,
    Transition,
    addressees,
    in_quiet_hours,
    reminders_due,
    render,
)
from hub.domain.model import (
    Location,
    Relation,
    RelationKind,
    Resident,
    Share,
    Thing,
    Visibility,
    WatchSettings,
)

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z
MIN = 60.0
H = 3600.0

AIR = Thing("air1", "Air sensor", location=Location(place="park"))
FLOOD = Thing("flood1", "Flood sensor", location=Location(place="basement"))
DRILL = Thing("drill", "Drill", kind="tool")

PM25 = Threshold("pm25", id="pm25-high", above=35.0, clear_below=25.0, for_s=600.0)


def engine(*rules: object, things: tuple[Thing, ...] = (AIR, FLOOD, DRILL)) -> AlertEngine:
    return AlertEngine(rules, things, now=T0)  # type: ignore[arg-type]


def kinds(transitions: list[Transition]) -> list[str]:
    return [t.kind for t in transitions]


# --- thresholds ---------------------------------------------------------------------------------------


def test_threshold_opens_only_after_its_minimum_duration() -> None:
    e = engine(PM25)
    assert e.on_reading("air1", {"pm25": 40.0}, T0) == []
    assert e.on_reading("air1", {"pm25": 41.0}, T0 + 9 * MIN) == []
    [opened] = e.on_reading("air1", {"pm25": 41.0}, T0 + 10 * MIN)
    assert opened.kind == "opened"
    assert opened.alert.value == 41.0 and opened.alert.limit == 35.0
    assert opened.alert.id == f"pm25-high-air1-{int(T0 + 10 * MIN)}"


def test_threshold_duration_restarts_when_the_value_dips_below_the_limit() -> None:
    e = engine(PM25)
    e.on_reading("air1", {"pm25": 40.0}, T0)
    e.on_reading("air1", {"pm25": 30.0}, T0 + 5 * MIN)  # not above 35: the 10 minutes start again
    e.on_reading("air1", {"pm25": 40.0}, T0 + 6 * MIN)
    assert e.on_reading("air1", {"pm25": 40.0}, T0 + 12 * MIN) == []
    assert kinds(e.on_reading("air1", {"pm25": 40.0}, T0 + 16 * MIN)) == ["opened"]


def test_threshold_opens_from_tick_when_no_further_reading_arrives() -> None:
    e = engine(PM25)
    e.on_reading("air1", {"pm25": 44.0}, T0)
    assert e.tick(T0 + 9 * MIN) == []
    [opened] = e.tick(T0 + 10 * MIN)
    assert opened.kind == "opened" and opened.alert.value == 44.0


def test_threshold_hysteresis_keeps_the_alert_between_clear_and_trip_levels() -> None:
    e = engine(replace(PM25, for_s=0.0))
    e.on_reading("air1", {"pm25": 41.0}, T0)
    assert e.on_reading("air1", {"pm25": 30.0}, T0 + MIN) == []  # 25 < 30 <= 35: still open
    assert e.on_reading("air1", {"pm25": 25.0}, T0 + 2 * MIN) == []  # clear needs strictly below 25
    [cleared] = e.on_reading("air1", {"pm25": 24.0}, T0 + 3 * MIN)
    assert cleared.kind == "cleared"
    assert cleared.alert.state is AlertState.CLEARED and cleared.alert.value == 24.0
    assert cleared.alert.peak == 41.0
    assert e.open_alerts() == []


def test_threshold_without_hysteresis_clears_at_the_limit() -> None:
    e = engine(Threshold("temperature", id="hot", above=30.0))
    e.on_reading("air1", {"temperature": 31.0}, T0)
    assert kinds(e.on_reading("air1", {"temperature": 30.0}, T0 + 1)) == ["cleared"]


def test_low_threshold_uses_clear_above() -> None:
    e = engine(Threshold("temperature", id="frost", below=3.0, clear_above=5.0))
    [opened] = e.on_reading("air1", {"temperature": 2.0}, T0)
    assert opened.alert.direction == "below" and opened.alert.limit == 3.0
    assert e.on_reading("air1", {"temperature": 4.0}, T0 + 1) == []
    assert kinds(e.on_reading("air1", {"temperature": 5.5}, T0 + 2)) == ["cleared"]


def test_band_threshold_opens_on_the_side_crossed() -> None:
    e = engine(Threshold("humidity", id="band", below=30.0, above=70.0))
    [opened] = e.on_reading("air1", {"humidity": 20.0}, T0)
    assert opened.alert.direction == "below" and opened.alert.limit == 30.0


def test_retrigger_updates_the_open_alert_instead_of_opening_a_duplicate() -> None:
    e = engine(replace(PM25, for_s=0.0))
    [opened] = e.on_reading("air1", {"pm25": 41.0}, T0)
    assert e.on_reading("air1", {"pm25": 45.0}, T0 + MIN) == []  # still above: no new message
    e.on_reading("air1", {"pm25": 30.0}, T0 + 2 * MIN)  # back in the hysteresis band
    [again] = e.on_reading("air1", {"pm25": 52.0}, T0 + 3 * MIN)
    assert again.kind == "retriggered"
    assert again.alert.id == opened.alert.id
    assert again.alert.triggers == 2 and again.alert.value == 52.0 and again.alert.peak == 52.0
    assert [a.id for a in e.open_alerts()] == [opened.alert.id]


def test_numeric_rules_ignore_booleans_and_boolean_rules_ignore_numbers() -> None:
    e = engine(replace(PM25, for_s=0.0), BooleanRule("water_leak", id="leak"))
    assert e.on_reading("air1", {"pm25": True}, T0) == []
    assert e.on_reading("flood1", {"water_leak": 1.0}, T0) == []


def test_readings_of_unregistered_things_are_ignored() -> None:
    e = engine(replace(PM25, for_s=0.0))
    assert e.on_reading("stranger", {"pm25": 400.0}, T0) == []


def test_scope_limits_rules_to_one_thing_or_one_kind() -> None:
    only_air = Threshold("temperature", id="air-hot", above=30.0, scope=Scope(thing="air1"))
    tools = Threshold("temperature", id="tool-hot", above=60.0, scope=Scope(kind="tool"))
    e = engine(only_air, tools)
    assert [t.alert.rule for t in e.on_reading("air1", {"temperature": 70.0}, T0)] == ["air-hot"]
    assert [t.alert.rule for t in e.on_reading("drill", {"temperature": 70.0}, T0)] == ["tool-hot"]
    assert e.on_reading("flood1", {"temperature": 70.0}, T0) == []


def test_low_battery_clears_only_above_its_clear_level() -> None:
    e = engine(LowBattery(id="battery"))
    assert e.on_reading("flood1", {"battery": 16.0}, T0) == []
    [opened] = e.on_reading("flood1", {"battery": 12.0}, T0 + 1)
    assert opened.alert.measurement == "battery" and opened.alert.limit == 15.0
    assert e.on_reading("flood1", {"battery": 20.0}, T0 + 2) == []
    assert kinds(e.on_reading("flood1", {"battery": 100.0}, T0 + 3)) == ["cleared"]


# --- rate of change, booleans, stale, offline, overdue ------------------------------------------------


def test_rate_of_change_trips_on_a_fast_rise_within_the_window_only() -> None:
    e = engine(RateOfChange("temperature", id="jump", per_s=600.0, max_delta=5.0, direction="rise"))
    e.on_reading("air1", {"temperature": 20.0}, T0)
    assert e.on_reading("air1", {"temperature": 24.0}, T0 + 5 * MIN) == []
    # 20 °C left the window: +5.5 over 20 minutes is slow
    assert e.on_reading("air1", {"temperature": 25.5}, T0 + 20 * MIN) == []
    [opened] = e.on_reading("air1", {"temperature": 31.0}, T0 + 25 * MIN)
    assert opened.alert.direction == "rise" and opened.alert.change == pytest.approx(5.5)
    assert kinds(e.on_reading("air1", {"temperature": 31.0}, T0 + 40 * MIN)) == ["cleared"]


def test_rate_of_change_rise_rule_ignores_a_fall() -> None:
    e = engine(RateOfChange("temperature", id="jump", per_s=600.0, max_delta=5.0, direction="rise"))
    e.on_reading("air1", {"temperature": 30.0}, T0)
    assert e.on_reading("air1", {"temperature": 10.0}, T0 + MIN) == []


def test_rate_of_change_both_ways_reports_a_fall() -> None:
    e = engine(RateOfChange("temperature", id="swing", per_s=600.0, max_delta=5.0))
    e.on_reading("air1", {"temperature": 30.0}, T0)
    [opened] = e.on_reading("air1", {"temperature": 22.0}, T0 + MIN)
    assert opened.alert.direction == "fall" and opened.alert.change == pytest.approx(-8.0)


def test_boolean_rule_opens_once_and_clears_when_dry() -> None:
    e = engine(BooleanRule("water_leak", id="leak", severity=Severity.CRITICAL))
    [opened] = e.on_reading("flood1", {"water_leak": True}, T0)
    assert opened.alert.severity is Severity.CRITICAL
    assert e.on_reading("flood1", {"water_leak": True}, T0 + 10) == []
    [cleared] = e.on_reading("flood1", {"water_leak": False}, T0 + 20)
    assert cleared.kind == "cleared" and cleared.alert.id == opened.alert.id


def test_a_fresh_alert_in_the_same_second_gets_its_own_id() -> None:
    e = engine(BooleanRule("water_leak", id="leak"))
    [first] = e.on_reading("flood1", {"water_leak": True}, T0)
    e.on_reading("flood1", {"water_leak": False}, T0 + 0.3)
    [second] = e.on_reading("flood1", {"water_leak": True}, T0 + 0.6)
    assert first.alert.id != second.alert.id


def test_stale_opens_after_silence_counted_from_registration_and_clears_on_a_reading() -> None:
    e = engine(Stale(id="silent", after_s=30 * MIN, scope=Scope(thing="air1")))
    assert e.tick(T0 + 29 * MIN) == []
    [opened] = e.tick(T0 + 30 * MIN)
    assert opened.alert.kind == "stale" and opened.alert.thing == "air1"
    assert e.tick(T0 + 40 * MIN) == []  # one alert, not one per tick
    [cleared] = e.on_reading("air1", {"humidity": 50.0}, T0 + 41 * MIN)
    assert cleared.kind == "cleared" and cleared.alert.id == opened.alert.id
    assert e.tick(T0 + 70 * MIN) == []
    assert kinds(e.tick(T0 + 71 * MIN)) == ["opened"]


def test_offline_waits_for_its_debounce() -> None:
    e = engine(Offline(id="offline", debounce_s=2 * MIN))
    assert e.on_availability("flood1", False, T0) == []
    assert e.tick(T0 + MIN) == []
    [opened] = e.tick(T0 + 2 * MIN)
    assert opened.alert.kind == "offline"
    assert e.on_availability("flood1", True, T0 + 3 * MIN) == []  # back, but not yet for 2 minutes
    [cleared] = e.tick(T0 + 5 * MIN)
    assert cleared.kind == "cleared"


def test_a_short_offline_blip_raises_nothing() -> None:
    e = engine(Offline(id="offline", debounce_s=2 * MIN))
    e.on_availability("flood1", False, T0)
    e.on_availability("flood1", True, T0 + 5)
    assert e.tick(T0 + 10 * MIN) == []
    assert e.on_availability("flood1", False, T0 + 11 * MIN) == []  # a new episode starts its own wait


def test_ten_flaps_in_a_minute_raise_one_alert_that_clears_once() -> None:
    e = engine(Offline(id="offline", debounce_s=30.0))
    out: list[Transition] = []
    for flap in range(10):
        out += e.on_availability("flood1", False, T0 + flap * 6)
        out += e.on_availability("flood1", True, T0 + flap * 6 + 3)
        out += e.tick(T0 + flap * 6 + 4)
    out += e.tick(T0 + 2 * MIN)
    assert kinds(out).count("opened") == 1
    assert kinds(out).count("cleared") == 1
    assert len({t.alert.id for t in out}) == 1
    assert e.open_alerts() == []


def test_overdue_loan_opens_retriggers_on_escalation_and_clears_on_return() -> None:
    e = engine(OverdueLoan(id="overdue"))
    [opened] = e.overdue("drill", "loan-7", T0)
    assert opened.alert.loan == "loan-7" and opened.alert.custody_aware
    [again] = e.overdue("drill", "loan-7", T0 + 2 * H)
    assert again.kind == "retriggered" and again.alert.triggers == 2
    assert e.loan_returned("drill", "another-loan", T0 + 3 * H) == []
    assert kinds(e.loan_returned("drill", "loan-7", T0 + 3 * H)) == ["cleared"]


# --- lifecycle ----------------------------------------------------------------------------------------


def open_leak() -> tuple[AlertEngine, Alert]:
    e = engine(BooleanRule("water_leak", id="leak", severity=Severity.CRITICAL))
    [opened] = e.on_reading("flood1", {"water_leak": True}, T0)
    return e, opened.alert


def test_acknowledge_then_claim_then_release_then_clear_by_hand() -> None:
    e, alert = open_leak()
    ack = e.acknowledge(alert.id, "ann", T0 + 1)
    assert (ack.kind, ack.alert.state, ack.alert.acknowledged_by, ack.by) == (
        "acknowledged",
        AlertState.ACKNOWLEDGED,
        "ann",
        "ann",
    )
    claim = e.claim(alert.id, "ben", T0 + 2, "I'm going to check the flood sensor")
    assert claim.alert.state is AlertState.CLAIMED and claim.alert.claimed_by == "ben"
    assert claim.alert.acknowledged_by == "ann"  # the first acknowledgement stands
    assert claim.alert.claim_note == "I'm going to check the flood sensor"
    released = e.release(alert.id, "ben", T0 + 3)
    assert released.alert.state is AlertState.ACKNOWLEDGED and released.alert.claimed_by is None
    cleared = e.clear_manually(alert.id, "ann", T0 + 4)
    assert cleared.kind == "cleared" and cleared.alert.cleared_by == "ann"
    assert e.get(alert.id) is None


def test_claim_acknowledges_an_active_alert() -> None:
    e, alert = open_leak()
    claim = e.claim(alert.id, "ben", T0 + 1)
    assert claim.alert.acknowledged_by == "ben" and claim.alert.acknowledged_at == T0 + 1


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([("acknowledge", "ann"), ("acknowledge", "ben")], "bad_state"),
        ([("claim", "ann"), ("acknowledge", "ben")], "bad_state"),
        ([("claim", "ann"), ("claim", "ben")], "already_claimed"),
        ([("claim", "ann"), ("release", "ben")], "not_claimer"),
        ([("release", "ann")], "bad_state"),
        ([("clear_manually", "ann"), ("acknowledge", "ben")], "unknown_alert"),
    ],
)
def test_invalid_lifecycle_steps_are_refused(steps: list[tuple[str, str]], reason: str) -> None:
    e, alert = open_leak()
    *before, (last, who) = steps
    for method, resident in before:
        getattr(e, method)(alert.id, resident, T0 + 1)
    with pytest.raises(AlertError) as refused:
        getattr(e, last)(alert.id, who, T0 + 2)
    assert refused.value.reason == reason


def test_the_claimer_may_claim_again_to_change_the_note() -> None:
    e, alert = open_leak()
    e.claim(alert.id, "ben", T0 + 1, "on my way")
    again = e.claim(alert.id, "ben", T0 + 2, "there in 5 min")
    assert again.alert.claim_note == "there in 5 min" and again.alert.claimed_at == T0 + 1


def test_acknowledged_alert_stays_acknowledged_on_retrigger() -> None:
    e = engine(replace(PM25, for_s=0.0))
    [opened] = e.on_reading("air1", {"pm25": 41.0}, T0)
    e.acknowledge(opened.alert.id, "ann", T0 + 1)
    e.on_reading("air1", {"pm25": 30.0}, T0 + 2)
    [again] = e.on_reading("air1", {"pm25": 50.0}, T0 + 3)
    assert again.alert.state is AlertState.ACKNOWLEDGED and again.alert.triggers == 2


def test_clearing_by_hand_rearms_the_rule_for_a_condition_that_persists() -> None:
    e = engine(PM25)
    e.on_reading("air1", {"pm25": 41.0}, T0)
    [opened] = e.on_reading("air1", {"pm25": 41.0}, T0 + 10 * MIN)
    e.clear_manually(opened.alert.id, "ann", T0 + 11 * MIN)
    assert e.on_reading("air1", {"pm25": 41.0}, T0 + 12 * MIN) == []
    [reopened] = e.on_reading("air1", {"pm25": 41.0}, T0 + 22 * MIN)
    assert reopened.kind == "opened" and reopened.alert.id != opened.alert.id


def test_restored_alerts_are_updated_not_duplicated_after_a_restart() -> None:
    e = engine(replace(PM25, for_s=0.0))
    [opened] = e.on_reading("air1", {"pm25": 41.0}, T0)
    later = engine(replace(PM25, for_s=0.0))
    later.restore([opened.alert])
    assert later.on_reading("air1", {"pm25": 45.0}, T0 + MIN) == []
    assert kinds(later.on_reading("air1", {"pm25": 10.0}, T0 + 2 * MIN)) == ["cleared"]


def test_removing_a_rule_clears_its_open_alerts() -> None:
    e = engine(replace(PM25, for_s=0.0))
    e.on_reading("air1", {"pm25": 41.0}, T0)
    assert kinds(e.set_rules([], T0 + 1)) == ["cleared"]
    assert e.open_alerts() == []


# --- reminders ----------------------------------------------------------------------------------------


def alert_of(severity: Severity, state: AlertState = AlertState.ACTIVE) -> Alert:
    return Alert("a", "r", "air1", "threshold", severity, opened_at=T0, updated_at=T0, state=state)


@pytest.mark.parametrize(
    ("severity", "interval"),
    [
        (Severity.CRITICAL, 15 * MIN),
        (Severity.MAJOR, H),
        (Severity.MINOR, 6 * H),
        (Severity.WARNING, 24 * H),
    ],
)
def test_reminders_follow_the_severity_interval(severity: Severity, interval: float) -> None:
    alert = alert_of(severity)
    assert reminders_due([alert], T0 + interval - 1) == []
    [due] = reminders_due([alert], T0 + interval)
    assert due.kind == "reminder_due" and due.alert.reminders == 1 and due.alert.reminded_at == T0 + interval
    assert reminders_due([due.alert], T0 + 2 * interval - 1) == []
    assert len(reminders_due([due.alert], T0 + 2 * interval)) == 1


def test_info_alerts_are_never_reminded() -> None:
    assert reminders_due([alert_of(Severity.INFO)], T0 + 100 * H) == []


@pytest.mark.parametrize("state", [AlertState.ACKNOWLEDGED, AlertState.CLAIMED, AlertState.CLEARED])
def test_handled_alerts_are_not_reminded(state: AlertState) -> None:
    assert reminders_due([alert_of(Severity.CRITICAL, state)], T0 + 10 * H) == []


def test_after_a_long_outage_one_reminder_is_due_not_one_per_missed_interval() -> None:
    assert len(reminders_due([alert_of(Severity.CRITICAL)], T0 + 10 * H)) == 1


def test_engine_tick_reminds_until_acknowledged() -> None:
    e, alert = open_leak()
    assert kinds(e.tick(T0 + 15 * MIN)) == ["reminder_due"]
    assert e.tick(T0 + 20 * MIN) == []
    e.acknowledge(alert.id, "ann", T0 + 21 * MIN)
    assert e.tick(T0 + 5 * H) == []


def test_severities_are_ordered() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.MINOR < Severity.MAJOR < Severity.CRITICAL
    assert max(Severity) is Severity.CRITICAL
    assert sorted([Severity.MAJOR, Severity.INFO, Severity.CRITICAL]) == [
        Severity.INFO,
        Severity.MAJOR,
        Severity.CRITICAL,
    ]


# --- addressees ---------------------------------------------------------------------------------------

PEOPLE = {
    rid: Resident(rid, rid.capitalize())
    for rid in ("owner", "steward", "lender", "bea", "watcher", "stranger", "fussy", "relaxed")
}


def rel(resident: str, kind: RelationKind, thing: str = "air1", **changes: object) -> Relation:
    return replace(Relation(f"{resident}-{kind}", resident, thing, kind), **changes)  # type: ignore[arg-type]


def opened_alert(rule_kind: str = "threshold", **changes: object) -> Alert:
    alert = Alert(
        "pm25-high-air1-1",
        "pm25-high",
        "air1",
        rule_kind,
        Severity.MINOR,
        opened_at=T0,
        updated_at=T0,
        measurement="pm25",
        value=41.0,
        peak=41.0,
        limit=35.0,
        clear_limit=25.0,
        direction="above",
        window_s=600.0,
    )
    return replace(alert, **changes)  # type: ignore[arg-type]


def who(found: list[Addressee]) -> dict[str, Reason]:
    return {a.resident: a.reason for a in found}


def test_owner_stewards_and_watchers_are_addressed_with_their_reasons() -> None:
    relations = [
        rel("owner", RelationKind.OWNS),
        rel("steward", RelationKind.STEWARDS),
        rel("watcher", RelationKind.WATCHES),
    ]
    found = addressees(opened_alert(), AIR, relations, T0, residents=PEOPLE)
    assert who(found) == {"owner": Reason.OWNER, "steward": Reason.STEWARD, "watcher": Reason.WATCHER}
    assert "stranger" not in who(found)


def test_a_resident_with_two_relations_is_addressed_once_under_the_first_reason() -> None:
    relations = [rel("owner", RelationKind.OWNS), rel("owner", RelationKind.WATCHES)]
    assert [
        (a.resident, a.reason) for a in addressees(opened_alert(), AIR, relations, T0, residents=PEOPLE)
    ] == [("owner", Reason.OWNER)]


def test_borrower_and_lender_hear_of_custody_aware_alerts_only() -> None:
    relations = [
        rel("owner", RelationKind.OWNS, "drill"),
        rel("lender", RelationKind.LENDS, "drill"),
        rel("bea", RelationKind.BORROWS, "drill"),
    ]
    offline = opened_alert("offline", thing="drill", measurement=None, value=None, peak=None)
    aware = addressees(
        replace(offline, custody_aware=True), DRILL, relations, T0, residents=PEOPLE, custody_borrower="bea"
    )
    assert who(aware) == {"owner": Reason.OWNER, "lender": Reason.LENDER, "bea": Reason.BORROWER}
    plain = addressees(offline, DRILL, relations, T0, residents=PEOPLE, custody_borrower="bea")
    assert who(plain) == {"owner": Reason.OWNER}


def test_a_borrower_of_a_private_thing_without_a_running_loan_is_not_told() -> None:
    private = replace(DRILL, visibility=Visibility.PRIVATE)
    relations = [
        rel("owner", RelationKind.OWNS, "drill"),
        rel("bea", RelationKind.BORROWS, "drill", valid_until=T0 - 1),  # the loan ended
    ]
    alert = opened_alert("offline", thing="drill", custody_aware=True)
    found = addressees(alert, private, relations, T0, residents=PEOPLE, custody_borrower="bea")
    assert who(found) == {"owner": Reason.OWNER}


def test_overdue_loan_alerts_never_reach_watchers() -> None:
    relations = [rel("owner", RelationKind.OWNS, "drill"), rel("watcher", RelationKind.WATCHES, "drill")]
    alert = opened_alert("overdue_loan", thing="drill", custody_aware=True, measurement=None)
    found = addressees(alert, DRILL, relations, T0, residents=PEOPLE, custody_borrower="bea")
    assert who(found) == {"owner": Reason.OWNER, "bea": Reason.BORROWER}


def test_watchers_own_thresholds_decide_whether_they_hear_of_it() -> None:
    relations = [
        rel("fussy", RelationKind.WATCHES, watch=WatchSettings(thresholds=(("pm25", None, 20.0),))),
        rel("relaxed", RelationKind.WATCHES, watch=WatchSettings(thresholds=(("pm25", None, 50.0),))),
        rel("watcher", RelationKind.WATCHES, watch=WatchSettings(thresholds=(("noise", None, 10.0),))),
    ]
    at_41 = addressees(opened_alert(), AIR, relations, T0, residents=PEOPLE)
    assert set(who(at_41)) == {"fussy", "watcher"}
    at_55 = addressees(opened_alert(value=55.0, peak=55.0), AIR, relations, T0, residents=PEOPLE)
    assert set(who(at_55)) == {"fussy", "relaxed", "watcher"}


def test_the_done_message_reaches_the_watchers_who_heard_of_the_peak() -> None:
    relations = [
        rel("relaxed", RelationKind.WATCHES, watch=WatchSettings(thresholds=(("pm25", None, 50.0),)))
    ]
    cleared = opened_alert(value=20.0, peak=55.0, state=AlertState.CLEARED, cleared_at=T0 + H)
    assert set(who(addressees(cleared, AIR, relations, T0 + H, residents=PEOPLE))) == {"relaxed"}


def test_quiet_hours_hold_a_watchers_pushes_unless_critical() -> None:
    quiet = WatchSettings(quiet_start=22, quiet_end=7)
    relations = [rel("owner", RelationKind.OWNS), rel("watcher", RelationKind.WATCHES, watch=quiet)]

    def hour(h: int) -> int:
        return h

    night = addressees(opened_alert(), AIR, relations, T0, residents=PEOPLE, local_hour=lambda _: hour(23))
    assert {a.resident: a.quiet for a in night} == {"owner": False, "watcher": True}
    critical = opened_alert(severity=Severity.CRITICAL)
    urgent = addressees(critical, AIR, relations, T0, residents=PEOPLE, local_hour=lambda _: hour(23))
    assert {a.resident: a.quiet for a in urgent} == {"owner": False, "watcher": False}
    day = addressees(opened_alert(), AIR, relations, T0, residents=PEOPLE, local_hour=lambda _: hour(12))
    assert {a.resident: a.quiet for a in day} == {"owner": False, "watcher": False}


@pytest.mark.parametrize(
    ("start", "end", "hour", "quiet"),
    [(22, 7, 23, True), (22, 7, 3, True), (22, 7, 7, False), (22, 7, 21, False), (1, 5, 1, True),
     (1, 5, 5, False), (None, 5, 3, False), (8, 8, 8, False)],
)  # fmt: skip
def test_quiet_hours_span_midnight_and_end_exclusive(
    start: int | None, end: int | None, hour: int, quiet: bool
) -> None:
    assert in_quiet_hours(start, end, hour) is quiet


def test_permission_filters_out_erased_revoked_and_unknown_residents() -> None:
    people = {**PEOPLE, "gone": Resident("gone", "Gone", erased=True)}
    relations = [
        rel("owner", RelationKind.OWNS),
        rel("gone", RelationKind.WATCHES),
        rel("watcher", RelationKind.WATCHES, revoked_at=T0 - 1),
        rel("nobody-knows", RelationKind.WATCHES),
    ]
    assert who(addressees(opened_alert(), AIR, relations, T0, residents=people)) == {"owner": Reason.OWNER}


def test_relations_of_other_things_address_nobody() -> None:
    relations = [rel("owner", RelationKind.OWNS, thing="flood1")]
    assert addressees(opened_alert(), AIR, relations, T0, residents=PEOPLE) == []


@pytest.mark.parametrize(
    ("share", "detail"),
    [(Share.FULL, Detail.FULL), (Share.DERIVED, Detail.DERIVED), (Share.NONE, Detail.NONE)],
)
def test_watchers_detail_follows_the_things_watcher_share(share: Share, detail: Detail) -> None:
    thing = replace(AIR, watcher_share=share)
    relations = [rel("owner", RelationKind.OWNS), rel("watcher", RelationKind.WATCHES)]
    found = {a.resident: a.detail for a in addressees(opened_alert(), thing, relations, T0, residents=PEOPLE)}
    assert found == {"owner": Detail.FULL, "watcher": detail}


# --- messages -----------------------------------------------------------------------------------------


def test_threshold_message_in_plain_words() -> None:
    title, body = render(opened_alert(), Detail.FULL, AIR)
    assert title == "Air sensor, park: PM2.5 high"
    assert body == "PM2.5 at 41 µg/m³ above 35 for 10 min."


def test_flood_message_in_plain_words() -> None:
    _, alert = open_leak()
    title, body = render(alert, Detail.FULL, FLOOD)
    assert title == "Flood sensor, basement: water leak detected"
    assert body == "Water leak detected."


def test_derived_message_carries_no_values() -> None:
    title, body = render(opened_alert(), Detail.DERIVED, AIR)
    assert title == "Air sensor, park: PM2.5 high"
    assert body == "PM2.5 above the alert level for 10 min."
    assert "41" not in body and "35" not in body


def test_bare_message_names_neither_measurement_nor_values() -> None:
    title, body = render(opened_alert(), Detail.NONE, AIR)
    assert title == "Air sensor, park: needs attention"
    assert "PM" not in title + body and "41" not in body


def test_claim_is_shown_in_the_message() -> None:
    claimed = opened_alert(state=AlertState.CLAIMED, claimed_by="ben", claim_note="I'm going to check it")
    _, body = render(claimed, Detail.FULL, AIR, by="ben")
    assert body.endswith("Claimed by ben, who is taking care of it: “I'm going to check it”")


def test_retriggered_alert_says_how_often() -> None:
    _, body = render(opened_alert(triggers=3), Detail.FULL, AIR)
    assert "Triggered 3 times." in body


def test_done_message_when_cleared() -> None:
    cleared = opened_alert(value=22.0, state=AlertState.CLEARED, cleared_at=T0 + 43 * MIN)
    title, body = render(cleared, Detail.FULL, AIR)
    assert title == "Air sensor, park: PM2.5 high – cleared"
    assert body == "PM2.5 back at 22 µg/m³, below 25. Open for 43 min."


def test_done_message_for_a_dry_basement_and_a_hand_cleared_alert() -> None:
    e, _ = open_leak()
    [dry] = e.on_reading("flood1", {"water_leak": False}, T0 + 2 * H)
    assert render(dry.alert, Detail.DERIVED, FLOOD)[1] == "No water leak. Open for 2 h."
    e2, alert2 = open_leak()
    by_hand = e2.clear_manually(alert2.id, "ann", T0 + 90 * MIN)
    assert render(by_hand.alert, Detail.FULL, FLOOD, by="Ann")[1] == (
        "Water leak detected: marked as handled. Open for 1 h 30 min. Cleared by Ann."
    )


@pytest.mark.parametrize(
    ("kind", "changes", "title_end", "body"),
    [
        ("stale", {"measurement": None, "window_s": 1800.0}, "no readings", "No reading for 30 min."),
        ("offline", {"measurement": None, "window_s": 300.0}, "offline", "Offline and not back for 5 min."),
        ("overdue_loan", {"measurement": None}, "loan overdue", "Not returned by its due date."),
        (
            "low_battery",
            {"measurement": "battery", "value": 12.0, "limit": 15.0, "direction": "below", "window_s": 0.0},
            "battery low",
            "Battery at 12 % below 15.",
        ),
        (
            "rate_of_change",
            {"measurement": "temperature", "value": 29.0, "change": 8.0, "direction": "rise"},
            "Temperature rising fast",
            "Temperature rose by 8 °C within 10 min, to 29 °C.",
        ),
    ],
)
def test_each_rule_kind_renders_in_plain_words(
    kind: str, changes: dict[str, object], title_end: str, body: str
) -> None:
    title, text = render(opened_alert(kind, **changes), Detail.FULL, AIR)
    assert title == f"Air sensor, park: {title_end}"
    assert text == body


# --- rules as data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", DEFAULT_RULES, ids=lambda r: r.id)
def test_default_rules_survive_a_round_trip_through_plain_data(rule: object) -> None:
    assert rule_from_dict(rule_to_dict(rule)) == rule  # type: ignore[arg-type]


def test_scoped_rule_survives_a_round_trip() -> None:
    rule = Threshold("noise", id="quiet-street", above=55.0, scope=Scope(kind="sensor"), custody_aware=True)
    assert rule_from_dict(rule_to_dict(rule)) == rule


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "threshold", "id": "x", "measurement": "pm25"}, "needs 'above', 'below'"),
        ({"kind": "threshold", "id": "x", "measurement": "pm2.5", "above": 1}, "not a canonical"),
        (
            {"kind": "threshold", "id": "x", "measurement": "pm25", "above": 35, "clear_below": 40},
            "clear_below",
        ),
        ({"kind": "threshold", "id": "x", "measurement": "pm25", "above": "high"}, "must be a number"),
        ({"kind": "threshold", "id": "a/b", "measurement": "pm25", "above": 1}, "MQTT topic"),
        ({"kind": "boolean", "id": "x", "measurement": "water_leak", "when": "yes"}, "true or false"),
        (
            {"kind": "boolean", "id": "x", "measurement": "water_leak", "colour": "red"},
            "unknown key 'colour'",
        ),
        ({"kind": "sms", "id": "x"}, "kind must be one of"),
        ({"kind": "stale", "id": "x", "after_s": 0}, "positive"),
        ({"kind": "stale", "id": "x", "severity": "urgent"}, "severity must be one of"),
        ({"kind": "low_battery", "id": "x", "below": 30, "clear_above": 20}, "clear_above"),
        (
            {"kind": "rate_of_change", "id": "x", "measurement": "pm25", "per_s": 60, "max_delta": 0},
            "max_delta",
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match="rule") as refused:
        rule_from_dict(data)
    assert message in str(refused.value)


def test_two_rules_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="pm25-high"):
        engine(PM25, replace(PM25, above=50.0))


# --- speed --------------------------------------------------------------------------------------------


def test_evaluation_stays_fast_with_100_rules_and_1000_things() -> None:
    """Each reading touches only its own rules; a Pi-class budget is thousands of readings per second."""
    things = tuple(Thing(f"t{i}", f"Thing {i}", kind="sensor" if i % 2 else "device") for i in range(1000))
    measurements = ("pm25", "pm10", "noise", "co2", "temperature", "humidity", "battery")
    rules: list[object] = []
    for i in range(100):
        m = measurements[i % len(measurements)]
        scope = Scope(thing=f"t{i * 7}") if i % 3 == 0 else Scope(kind="sensor") if i % 3 == 1 else Scope()
        rules.append(Threshold(m, id=f"r{i}", above=1000.0 + i, clear_below=900.0, for_s=60.0, scope=scope))
    e = AlertEngine(rules, things, now=T0)  # type: ignore[arg-type]
    readings = [
        (f"t{i % 1000}", {"pm25": 10.0 + i % 7, "noise": 50.0, "temperature": 20.0, "battery": 80.0})
        for i in range(20_000)
    ]
    start = time.perf_counter()
    for n, (thing, values) in enumerate(readings):
        e.on_reading(thing, values, T0 + n * 0.001)
    rate = len(readings) / (time.perf_counter() - start)
    assert rate > 5_000, f"only {rate:.0f} readings/s"
