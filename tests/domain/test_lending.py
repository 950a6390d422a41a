"""Lending rules: every transition, every refusal reason, notices, the waitlist, and that accepted
windows never overlap whatever the sequence of requests."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import lending
from hub.domain.lending import LendingError, Notice, WaitEntry
from hub.domain.model import LendPolicy, Loan, LoanState, Relation, RelationKind

T0 = 1_750_000_000.0  # 2025-06-15
H = 3600.0
D = 86400.0


def lends(policy: LendPolicy | None = None, **changes: object) -> Relation:
    relation = Relation(
        id="r-lends",
        resident="owner",
        thing="drill",
        kind=RelationKind.LENDS,
        policy=policy if policy is not None else LendPolicy(),
    )
    return replace(relation, **changes)  # type: ignore[arg-type]


def loan(state: LoanState, start: float = T0, days: float = 7, **changes: object) -> Loan:
    value = Loan(
        id="l1",
        thing="drill",
        borrower="bea",
        lender="owner",
        state=state,
        start=start,
        due=start + days * D,
        requested_at=start - D,
    )
    return replace(value, **changes)  # type: ignore[arg-type]


def ask(
    start: float,
    *,
    loans: list[Loan] | None = None,
    relation: Relation | None = None,
    borrower: str = "bea",
    now: float = T0,
    tier: int = 0,
    days: float | None = None,
    loan_id: str = "new",
) -> Loan:
    return lending.request(
        loan_id, "drill", relation or lends(), borrower, start, now, loans or [], tier, days
    )


def refused(reason: str, call: object, *args: object, **kwargs: object) -> LendingError:
    assert callable(call)
    with pytest.raises(LendingError) as caught:
        call(*args, **kwargs)
    assert caught.value.reason == reason, caught.value
    assert reason in lending.REASONS
    return caught.value


# -- request ------------------------------------------------------------------------------------------


def test_request_without_approval_is_reserved_for_the_policy_loan_length() -> None:
    got = ask(T0 + D)
    assert got == Loan(
        id="new",
        thing="drill",
        borrower="bea",
        lender="owner",
        state=LoanState.RESERVED,
        start=T0 + D,
        due=T0 + 8 * D,
        requested_at=T0,
    )


def test_request_needing_approval_waits_as_requested() -> None:
    got = ask(T0 + D, relation=lends(LendPolicy(needs_approval=True)))
    assert got.state is LoanState.REQUESTED


def test_request_may_ask_for_fewer_days_than_the_policy_allows() -> None:
    assert ask(T0, days=0.5).due == T0 + 12 * H


def test_request_starting_a_moment_ago_starts_now() -> None:
    got = ask(T0 - 60)
    assert (got.start, got.due) == (T0, T0 + 7 * D)


@pytest.mark.parametrize(
    ("start", "days"),
    [
        (T0 - lending.START_SKEW_S - 1, None),  # in the past
        (T0, 0.0),
        (T0, -1.0),
        (T0, 7.01),  # longer than the policy's 7 days
        (T0, math.nan),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_request_with_impossible_window_is_bad_window(start: float, days: float | None) -> None:
    refused("bad_window", ask, start, days=days)


@pytest.mark.parametrize(
    "relation",
    [
        lends(kind=RelationKind.OWNS),
        replace(lends(), policy=None),
        lends(thing="bike"),
        lends(revoked_at=T0 - 1),
        lends(valid_from=T0 + 2 * D),  # offered only later than the window starts
        lends(valid_until=T0 + 3 * D),  # offer ends inside the window
        lends(revoked_at=T0 + 3 * D),
    ],
    ids=["owns", "no-policy", "other-thing", "revoked", "not-yet", "ends-inside", "revoked-inside"],
)
def test_request_without_a_lends_offer_covering_the_window_is_not_lendable(relation: Relation) -> None:
    refused("not_lendable", ask, T0, relation=relation)


def test_request_inside_a_time_bounded_offer_is_accepted() -> None:
    got = ask(T0 + D, relation=lends(valid_from=T0, valid_until=T0 + 8 * D))
    assert got.state is LoanState.RESERVED


def test_owner_cannot_borrow_their_own_thing() -> None:
    refused("own_thing", ask, T0, borrower="owner")


@pytest.mark.parametrize(
    ("policy", "borrower", "tier", "allowed"),
    [
        (LendPolicy(who="any"), "bea", 0, True),
        (LendPolicy(who="tier", min_tier=2), "bea", 2, True),
        (LendPolicy(who="tier", min_tier=2), "bea", 1, False),
        (LendPolicy(who="list", approved=("bea", "cem")), "bea", 0, True),
        (LendPolicy(who="list", approved=("cem",)), "bea", 9, False),
        (LendPolicy(who="friends"), "bea", 9, False),  # unknown rule admits nobody
    ],
)
def test_policy_decides_who_may_borrow(policy: LendPolicy, borrower: str, tier: int, allowed: bool) -> None:
    if allowed:
        assert ask(T0, relation=lends(policy), borrower=borrower, tier=tier).borrower == borrower
    else:
        refused("not_eligible", ask, T0, relation=lends(policy), borrower=borrower, tier=tier)


def test_refusal_by_tier_explains_both_tiers() -> None:
    err = refused("not_eligible", ask, T0, relation=lends(LendPolicy(who="tier", min_tier=3)), tier=1)
    assert "3" in err.detail and "1" in err.detail


def test_request_overlapping_a_reservation_is_a_conflict_naming_its_window() -> None:
    booked = loan(LoanState.RESERVED, start=T0 + 2 * D, days=2)
    err = refused("conflict", ask, T0, days=3, loans=[booked])
    assert err.window == (T0 + 2 * D, T0 + 4 * D)
    assert "2025-06-17" in err.detail and "2025-06-19" in err.detail


@pytest.mark.parametrize("state", [LoanState.REQUESTED, LoanState.RESERVED, LoanState.OUT])
def test_every_open_loan_blocks_its_window(state: LoanState) -> None:
    refused("conflict", ask, T0 + D, days=1, loans=[loan(state, start=T0, days=3)])


@pytest.mark.parametrize("state", [LoanState.RETURNED, LoanState.CANCELLED, LoanState.DECLINED])
def test_closed_loans_free_their_window(state: LoanState) -> None:
    assert ask(T0 + D, days=1, loans=[loan(state, start=T0, days=3)]).state is LoanState.RESERVED


def test_loans_of_other_things_do_not_block() -> None:
    assert ask(T0, loans=[loan(LoanState.OUT, thing="bike")]).state is LoanState.RESERVED


def test_back_to_back_windows_fit_without_buffer() -> None:
    before = loan(LoanState.RESERVED, start=T0, days=1)
    after = loan(LoanState.RESERVED, start=T0 + 2 * D, days=1, id="l2")
    got = ask(T0 + D, days=1, loans=[before, after])
    assert (got.start, got.due) == (T0 + D, T0 + 2 * D)


@pytest.mark.parametrize(
    ("start", "fits"),
    [
        (T0 + D + 6 * H, True),  # exactly the buffer after the earlier loan
        (T0 + D + 5 * H, False),  # inside the buffer after it
    ],
)
def test_buffer_keeps_time_after_a_loan(start: float, fits: bool) -> None:
    relation = lends(LendPolicy(buffer_hours=6))
    booked = [loan(LoanState.RESERVED, start=T0, days=1)]
    if fits:
        assert ask(start, days=1, relation=relation, loans=booked).start == start
    else:
        err = refused("conflict", ask, start, days=1, relation=relation, loans=booked)
        assert err.window == (T0 - 6 * H, T0 + D + 6 * H)
        assert "6 h" in err.detail


@pytest.mark.parametrize(("end_gap_h", "fits"), [(6, True), (5, False)])
def test_buffer_keeps_time_before_a_loan(end_gap_h: float, fits: bool) -> None:
    relation = lends(LendPolicy(buffer_hours=6))
    booked = [loan(LoanState.RESERVED, start=T0 + 3 * D, days=1)]
    start = T0 + 2 * D - end_gap_h * H
    if fits:
        assert ask(start, days=1, relation=relation, loans=booked).due == T0 + 3 * D - end_gap_h * H
    else:
        refused("conflict", ask, start, days=1, relation=relation, loans=booked)


@pytest.mark.parametrize(
    "holder",
    [
        loan(LoanState.OVERDUE, start=T0 - 8 * D, days=7),
        loan(LoanState.OUT, start=T0 - 8 * D, days=7),  # past due, not yet marked overdue
        loan(LoanState.LOST, start=T0 - 8 * D, days=7),
    ],
    ids=["overdue", "out-past-due", "lost"],
)
def test_thing_not_back_past_its_due_time_takes_no_booking_at_all(holder: Loan) -> None:
    err = refused("conflict", ask, T0 + 30 * D, days=1, loans=[holder])
    assert err.window is not None and err.window[1] == math.inf
    assert "waitlist" in err.detail


def test_overdue_loan_does_not_block_windows_that_end_before_it_started() -> None:
    holder = loan(LoanState.OVERDUE, start=T0 + 10 * D, days=1)
    assert ask(T0, days=1, loans=[holder]).state is LoanState.RESERVED


def test_loan_on_time_blocks_only_until_its_due_time() -> None:
    holder = loan(LoanState.OUT, start=T0 - D, days=2, out_at=T0 - D)
    refused("conflict", ask, T0, days=1, loans=[holder])
    assert ask(T0 + D, days=1, loans=[holder]).start == T0 + D


# -- approve, decline, cancel, lapse -------------------------------------------------------------------


def test_owner_approval_turns_a_request_into_a_reservation() -> None:
    assert lending.approve(loan(LoanState.REQUESTED), T0).state is LoanState.RESERVED


def test_approval_after_the_window_ended_is_expired() -> None:
    refused("expired", lending.approve, loan(LoanState.REQUESTED, days=1), T0 + D)


@pytest.mark.parametrize("state", [LoanState.REQUESTED, LoanState.RESERVED])
def test_owner_may_decline_a_request_or_withdraw_a_reservation(state: LoanState) -> None:
    assert lending.decline(loan(state), T0).state is LoanState.DECLINED


@pytest.mark.parametrize("state", [LoanState.REQUESTED, LoanState.RESERVED])
def test_borrower_may_cancel_before_collecting(state: LoanState) -> None:
    assert lending.cancel(loan(state), T0).state is LoanState.CANCELLED


@pytest.mark.parametrize(
    ("step", "state"),
    [
        (lending.approve, LoanState.RESERVED),
        (lending.approve, LoanState.OUT),
        (lending.decline, LoanState.OUT),
        (lending.decline, LoanState.CANCELLED),
        (lending.cancel, LoanState.OUT),
        (lending.cancel, LoanState.RETURNED),
    ],
)
def test_lifecycle_steps_from_the_wrong_state_are_bad_state(step: object, state: LoanState) -> None:
    refused("bad_state", step, loan(state), T0)


def test_unclaimed_reservation_lapses_after_the_pickup_grace() -> None:
    reserved = loan(LoanState.RESERVED, start=T0, days=7)
    assert lending.lapse_unclaimed([reserved], T0 + lending.PICKUP_GRACE_S - 1) == []
    assert lending.lapse_unclaimed([reserved], T0 + lending.PICKUP_GRACE_S) == [
        replace(reserved, state=LoanState.CANCELLED)
    ]


def test_short_unclaimed_reservation_lapses_at_its_due_time() -> None:
    reserved = loan(LoanState.RESERVED, start=T0, days=0.25)
    assert [x.state for x in lending.lapse_unclaimed([reserved], T0 + 6 * H)] == [LoanState.CANCELLED]


def test_unanswered_request_lapses_and_loans_out_do_not() -> None:
    requested = loan(LoanState.REQUESTED, id="a")
    out = loan(LoanState.OUT, id="b", out_at=T0)
    assert [x.id for x in lending.lapse_unclaimed([requested, out], T0 + 2 * D)] == ["a"]


# -- check-out ----------------------------------------------------------------------------------------


def test_check_out_at_a_reader_is_out_and_verified() -> None:
    got = lending.check_out(loan(LoanState.RESERVED), T0 + H, "reader-shed")
    assert (got.state, got.out_at, got.out_reader) == (LoanState.OUT, T0 + H, "reader-shed")
    assert (got.start, got.due) == (T0, T0 + 7 * D)


def test_check_out_from_the_web_has_no_reader() -> None:
    assert lending.check_out(loan(LoanState.RESERVED), T0, None).out_reader is None


def test_check_out_is_allowed_an_hour_before_the_window_and_not_earlier() -> None:
    reserved = loan(LoanState.RESERVED)
    assert lending.check_out(reserved, T0 - H, None).state is LoanState.OUT
    refused("too_early", lending.check_out, reserved, T0 - H - 1, None)


def test_check_out_after_the_window_ended_is_expired() -> None:
    refused("expired", lending.check_out, loan(LoanState.RESERVED, days=1), T0 + D, None)


def test_check_out_of_an_unapproved_request_is_not_approved() -> None:
    refused("not_approved", lending.check_out, loan(LoanState.REQUESTED), T0, None)


@pytest.mark.parametrize("state", [LoanState.OUT, LoanState.RETURNED, LoanState.CANCELLED])
def test_check_out_from_other_states_is_bad_state(state: LoanState) -> None:
    refused("bad_state", lending.check_out, loan(state), T0, None)


def test_only_the_borrower_collects_a_reservation() -> None:
    refused("not_borrower", lending.check_out, loan(LoanState.RESERVED), T0, "r1", by="cem")
    assert lending.check_out(loan(LoanState.RESERVED), T0, "r1", by="bea").state is LoanState.OUT


@pytest.mark.parametrize("state", [LoanState.OUT, LoanState.OVERDUE, LoanState.LOST])
def test_check_out_while_an_earlier_borrower_still_holds_it_is_a_conflict(state: LoanState) -> None:
    earlier = loan(state, start=T0 - 3 * D, days=3, id="l0", borrower="cem", out_at=T0 - 3 * D)
    refused("conflict", lending.check_out, loan(LoanState.RESERVED), T0, None, loans=[earlier])


def test_early_check_out_waits_for_another_window_still_running() -> None:
    earlier = loan(LoanState.RESERVED, start=T0 - D, days=1, id="l0", borrower="cem")
    mine = loan(LoanState.RESERVED, start=T0)
    refused("conflict", lending.check_out, mine, T0 - 30 * 60, None, loans=[earlier])
    assert lending.check_out(mine, T0, None, loans=[earlier]).state is LoanState.OUT


# -- walk-up --------------------------------------------------------------------------------------------


def walk(now: float = T0, **kw: object) -> Loan:
    args: dict[str, object] = {
        "loan_id": "w1",
        "thing": "drill",
        "lender_relation": lends(),
        "borrower": "bea",
        "now": now,
        "loans": [],
        "trust_tier": 0,
        "reader": "reader-shed",
    }
    args.update(kw)
    return lending.walk_up(**args)  # type: ignore[arg-type]


def test_walk_up_without_reservation_is_out_at_once() -> None:
    got = walk()
    assert (got.state, got.start, got.due, got.out_at, got.out_reader) == (
        LoanState.OUT,
        T0,
        T0 + 7 * D,
        T0,
        "reader-shed",
    )


def test_walk_up_of_a_thing_needing_approval_is_refused() -> None:
    refused("needs_approval", walk, lender_relation=lends(LendPolicy(needs_approval=True)))


def test_walk_up_clashing_with_a_later_reservation_is_a_conflict() -> None:
    later = loan(LoanState.RESERVED, start=T0 + 3 * D, borrower="cem")
    refused("conflict", walk, loans=[later])


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"borrower": "owner"}, "own_thing"),
        ({"lender_relation": lends(LendPolicy(who="list"))}, "not_eligible"),
        ({"lender_relation": lends(kind=RelationKind.WATCHES)}, "not_lendable"),
    ],
)
def test_walk_up_follows_the_same_rules_as_a_request(kw: dict[str, object], reason: str) -> None:
    refused(reason, walk, **kw)


# -- return, damage, loss, overdue, custody ------------------------------------------------------------


@pytest.mark.parametrize("state", [LoanState.OUT, LoanState.OVERDUE, LoanState.LOST])
def test_check_in_returns_a_thing_that_was_out(state: LoanState) -> None:
    got = lending.check_in(loan(state, out_at=T0), T0 + 2 * D, "reader-shed")
    assert (got.state, got.returned_at, got.return_reader) == (LoanState.RETURNED, T0 + 2 * D, "reader-shed")


@pytest.mark.parametrize("state", [LoanState.RESERVED, LoanState.RETURNED, LoanState.CANCELLED])
def test_check_in_of_a_loan_not_out_is_not_out(state: LoanState) -> None:
    refused("not_out", lending.check_in, loan(state), T0, None)


def test_damage_report_is_recorded_and_later_reports_append() -> None:
    first = lending.report_damage(loan(LoanState.RETURNED), "  chuck wobbles ", T0)
    assert first.damage == "chuck wobbles"
    assert lending.report_damage(first, "case cracked", T0).damage == "chuck wobbles\ncase cracked"


def test_damage_report_without_text_is_refused() -> None:
    refused("empty_report", lending.report_damage, loan(LoanState.OUT), "   ", T0)


def test_damage_report_before_the_thing_was_out_is_bad_state() -> None:
    refused("bad_state", lending.report_damage, loan(LoanState.RESERVED), "scratched", T0)


@pytest.mark.parametrize("state", [LoanState.OUT, LoanState.OVERDUE])
def test_report_lost_of_a_thing_out(state: LoanState) -> None:
    assert lending.report_lost(loan(state), T0).state is LoanState.LOST


@pytest.mark.parametrize("state", [LoanState.RESERVED, LoanState.RETURNED, LoanState.LOST])
def test_report_lost_of_a_loan_not_out_is_not_out(state: LoanState) -> None:
    refused("not_out", lending.report_lost, loan(state), T0)


def test_mark_overdue_changes_only_loans_out_at_or_past_due() -> None:
    loans = [
        loan(LoanState.OUT, id="due-now", days=1),
        loan(LoanState.OUT, id="due-later", days=2),
        loan(LoanState.RESERVED, id="reserved", days=1),
        loan(LoanState.OVERDUE, id="already", days=0.5),
    ]
    got = lending.mark_overdue(loans, T0 + D)
    assert [(x.id, x.state) for x in got] == [("due-now", LoanState.OVERDUE)]


def test_custody_is_the_loan_holding_the_thing_now() -> None:
    out = loan(LoanState.OVERDUE, id="held", out_at=T0)
    others = [
        loan(LoanState.RETURNED, id="old"),
        loan(LoanState.RESERVED, id="next", start=T0 + 9 * D),
        loan(LoanState.OUT, id="bike", thing="bike", out_at=T0),
    ]
    assert lending.custody("drill", [*others, out], T0 + D) == out
    assert lending.custody("drill", others, T0 + D) is None


def test_reservation_to_collect_finds_the_card_holders_current_reservation() -> None:
    mine = loan(LoanState.RESERVED, id="mine", start=T0 + 30 * 60)
    theirs = loan(LoanState.RESERVED, id="theirs", borrower="cem", start=T0)
    later = loan(LoanState.RESERVED, id="later", start=T0 + 20 * D)
    assert lending.reservation_to_collect("drill", "bea", [theirs, later, mine], T0) == mine
    assert lending.reservation_to_collect("drill", "bea", [later], T0) is None
    assert lending.reservation_to_collect("drill", "dan", [theirs, mine], T0) is None


# -- notices ------------------------------------------------------------------------------------------


def out_loan(state: LoanState = LoanState.OUT, **changes: object) -> Loan:
    return loan(state, **{"out_at": T0, **changes})


def test_schedule_gives_reminder_overdue_and_escalation_times() -> None:
    got = lending.schedule([out_loan()], T0, stewards={"drill": ["stu"]})
    assert got == [
        Notice("l1", "due_soon", T0 + 6 * D, ("bea",), "drill"),
        Notice("l1", "overdue", T0 + 7 * D, ("bea", "owner"), "drill"),
        Notice("l1", "escalation", T0 + 10 * D, ("bea", "owner", "stu"), "drill"),
    ]


def test_schedule_keeps_only_the_future_and_honours_custom_offsets() -> None:
    got = lending.schedule([out_loan()], T0 + 7 * D, remind_before_s=H, escalate_after_s=D)
    assert [(n.kind, n.at) for n in got] == [("escalation", T0 + 8 * D)]


def test_schedule_ignores_loans_not_out() -> None:
    loans = [loan(LoanState.RESERVED), loan(LoanState.RETURNED, id="r"), loan(LoanState.LOST, id="x")]
    assert lending.schedule(loans, T0) == []


def test_loan_taken_inside_the_reminder_period_gets_no_reminder() -> None:
    short = loan(LoanState.OUT, days=0.5, out_at=T0)
    assert [n.kind for n in lending.schedule([short], T0)] == ["overdue", "escalation"]


def test_notices_due_are_those_whose_time_has_come_and_not_yet_sent() -> None:
    loans = [out_loan()]
    assert lending.notices_due(loans, T0 + 6 * D - 1) == []
    assert [n.kind for n in lending.notices_due(loans, T0 + 6 * D)] == ["due_soon"]
    assert lending.notices_due(loans, T0 + 6 * D, sent={("l1", "due_soon")}) == []


def test_after_an_outage_the_overdue_notice_replaces_the_stale_reminder() -> None:
    overdue = out_loan(state=LoanState.OVERDUE)
    got = lending.notices_due([overdue], T0 + 11 * D)
    assert [n.kind for n in got] == ["overdue", "escalation"]


def test_escalation_names_each_person_once() -> None:
    got = lending.notices_due(
        [out_loan()], T0 + 10 * D, sent={("l1", "overdue")}, stewards={"drill": ["owner", "stu"]}
    )
    assert got == [Notice("l1", "escalation", T0 + 10 * D, ("bea", "owner", "stu"), "drill")]


def test_returned_loan_has_no_notices_due() -> None:
    assert lending.notices_due([out_loan(state=LoanState.RETURNED)], T0 + 20 * D) == []


@given(st.floats(min_value=T0 - D, max_value=T0 + 15 * D))
def test_schedule_and_notices_due_split_every_notice_between_them(now: float) -> None:
    loans = [out_loan(), out_loan(id="l2", start=T0 + D, out_at=T0 + D, borrower="cem")]
    everything = {(n.loan_id, n.kind) for n in lending.schedule(loans, T0 - 2 * D)}
    later = {(n.loan_id, n.kind) for n in lending.schedule(loans, now)}
    now_due = {(n.loan_id, n.kind) for n in lending.notices_due(loans, now)}
    assert not later & now_due
    stale_reminders = {(x.id, "due_soon") for x in loans if now >= x.due}
    assert later | now_due | stale_reminders == everything


# -- waitlist -----------------------------------------------------------------------------------------


def test_next_in_line_is_whoever_waited_longest_for_that_thing() -> None:
    entries = [
        WaitEntry("drill", "cem", T0 + 5),
        WaitEntry("bike", "ada", T0),
        WaitEntry("drill", "dan", T0 + 1),
    ]
    assert lending.next_in_line(entries, "drill") == WaitEntry("drill", "dan", T0 + 1)
    assert lending.next_in_line(entries, "saw") is None


def test_return_tells_only_the_first_in_line() -> None:
    entries = [WaitEntry("drill", "cem", T0 + 5), WaitEntry("drill", "dan", T0 + 1)]
    assert lending.on_return("drill", entries, T0 + D, loan_id="l1") == [
        Notice("l1", "waitlist_available", T0 + D, ("dan",), "drill")
    ]
    assert lending.on_return("bike", entries, T0 + D) == []


# -- properties ---------------------------------------------------------------------------------------

OPEN = {LoanState.REQUESTED, LoanState.RESERVED, LoanState.OUT, LoanState.OVERDUE}


def assert_separated(loans: list[Loan], buffer_h: float) -> None:
    open_loans = [x for x in loans if x.state in OPEN]
    for i, a in enumerate(open_loans):
        for b in open_loans[i + 1 :]:
            gap = max(b.start - a.due, a.start - b.due)
            assert gap >= buffer_h * H, (a, b)


requests = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=30 * D),  # start offset
        st.floats(min_value=0.01, max_value=3),  # days
        st.sampled_from(["bea", "cem", "dan"]),
    ),
    max_size=25,
)


@settings(max_examples=300)
@given(requests, st.sampled_from([0.0, 1.0, 12.0]), st.booleans())
def test_accepted_requests_never_overlap_and_refusals_are_real_clashes(
    asks: list[tuple[float, float, str]], buffer_h: float, approval: bool
) -> None:
    relation = lends(LendPolicy(loan_days=3, buffer_hours=buffer_h, needs_approval=approval))
    accepted: list[Loan] = []
    for n, (offset, days, who) in enumerate(asks):
        start, end = T0 + offset, T0 + offset + days * D
        clashes = any(start < x.due + buffer_h * H and x.start - buffer_h * H < end for x in accepted)
        try:
            accepted.append(
                ask(start, loans=accepted, relation=relation, borrower=who, days=days, loan_id=f"{n}")
            )
        except LendingError as err:
            assert err.reason == "conflict" and clashes, err
        else:
            assert not clashes
    assert_separated(accepted, buffer_h)


operations = st.lists(
    st.tuples(
        st.sampled_from(["request", "walk_up", "approve", "cancel", "check_out", "check_in", "overdue"]),
        st.floats(min_value=0, max_value=2 * D),  # time passing before the operation
        st.floats(min_value=0, max_value=10 * D),  # start offset for requests
        st.integers(min_value=0, max_value=50),  # which loan the operation picks
    ),
    max_size=40,
)


def apply(op: str, target: Loan, now: float, loans: list[Loan]) -> Loan:
    if op == "approve":
        return lending.approve(target, now)
    if op == "cancel":
        return lending.cancel(target, now)
    if op == "check_out":
        return lending.check_out(target, now, "r", loans=loans)
    return lending.check_in(target, now, "r")


@settings(max_examples=300)
@given(operations, st.sampled_from([0.0, 4.0]), st.booleans())
def test_open_loans_stay_apart_through_any_sequence_of_steps(
    ops: list[tuple[str, float, float, int]], buffer_h: float, approval: bool
) -> None:
    relation = lends(LendPolicy(loan_days=2, buffer_hours=buffer_h, needs_approval=approval))
    loans: list[Loan] = []
    now = T0
    for n, (op, dt, offset, pick) in enumerate(ops):
        now += dt
        try:
            if op == "request":
                loans.append(ask(now + offset, loans=loans, relation=relation, now=now, loan_id=f"{n}"))
            elif op == "walk_up":
                loans.append(walk(now, loans=loans, lender_relation=relation, loan_id=f"{n}"))
            elif op == "overdue":
                changed = {x.id: x for x in lending.mark_overdue(loans, now)}
                loans = [changed.get(x.id, x) for x in loans]
            elif loans:
                i = pick % len(loans)
                loans[i] = apply(op, loans[i], now, loans)
        except LendingError:
            pass
        assert_separated(loans, buffer_h)
        assert sum(x.state in lending.HELD for x in loans) <= 1
