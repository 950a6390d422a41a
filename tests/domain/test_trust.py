"""Trust from verified loan events and vouches: counting, tiers, and the sentence that explains them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.model import Loan, LoanState
from hub.domain.trust import TIER_NAMES, TrustRecord, explain, tier, trust_record

DUE = 1_790_000_000.0
HOUR = 3_600.0


def loan(
    n: int,
    *,
    borrower: str = "b",
    state: LoanState = LoanState.RETURNED,
    returned_at: float | None = DUE - HOUR,
    return_reader: str | None = "reader-shed",
    damage: str | None = None,
) -> Loan:
    return Loan(
        id=f"L{n}",
        thing="drill",
        borrower=borrower,
        lender="o",
        state=state,
        start=DUE - 7 * 24 * HOUR,
        due=DUE,
        out_at=DUE - 7 * 24 * HOUR,
        out_reader="reader-shed",
        returned_at=returned_at,
        return_reader=return_reader,
        damage=damage,
    )


# --- trust_record ------------------------------------------------------------------------------------


def test_scanned_returns_count_on_time_or_late_by_due_date() -> None:
    loans = [
        loan(1, returned_at=DUE - HOUR),
        loan(2, returned_at=DUE),  # returned at the due instant is on time
        loan(3, returned_at=DUE + 1),
    ]
    assert trust_record("b", loans, []) == TrustRecord(on_time=2, late=1)


def test_web_only_returns_neither_raise_nor_lower_trust() -> None:
    loans = [loan(1, return_reader=None), loan(2, return_reader=None, returned_at=DUE + 5 * HOUR)]
    assert trust_record("b", loans, []) == TrustRecord()


def test_loans_still_out_count_nothing_yet() -> None:
    loans = [
        loan(1, state=LoanState.OUT, returned_at=None, return_reader=None),
        loan(2, state=LoanState.OVERDUE, returned_at=None, return_reader=None),
    ]
    assert trust_record("b", loans, []) == TrustRecord()


def test_damage_reports_and_lost_loans_are_counted() -> None:
    loans = [
        loan(1, damage="chuck cracked"),
        loan(2, state=LoanState.LOST, returned_at=None, return_reader=None),
        loan(3, return_reader=None, damage="battery missing"),
    ]
    assert trust_record("b", loans, []) == TrustRecord(on_time=1, damaged=2, lost=1)


def test_only_the_residents_own_loans_count() -> None:
    loans = [loan(1), loan(2, borrower="someone-else", returned_at=DUE + HOUR), loan(3, borrower="o")]
    assert trust_record("b", loans, []) == TrustRecord(on_time=1)


def test_vouches_count_once_per_other_resident_in_first_seen_order() -> None:
    record = trust_record("b", [], ["c", "a", "c", "b", "", "a", "d"])
    assert record.vouches == ("c", "a", "d")


# --- tier --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (TrustRecord(), 0),
        (TrustRecord(on_time=1), 0),
        (TrustRecord(on_time=2), 1),
        (TrustRecord(vouches=("a",)), 1),
        (TrustRecord(vouches=("a", "c", "d", "e", "f", "g")), 1),  # vouches alone never pass "known"
        (TrustRecord(on_time=2, vouches=("a", "c", "d")), 1),  # score 8 but fewer than 3 returns
        (TrustRecord(on_time=3, vouches=("a", "c", "d")), 2),
        (TrustRecord(on_time=8), 2),
        (TrustRecord(on_time=8, late=1), 1),  # one late return costs two on-time ones
        (TrustRecord(on_time=3, late=1), 0),
        (TrustRecord(on_time=20), 3),
        (TrustRecord(on_time=14, vouches=("a", "c", "d")), 3),
        (TrustRecord(on_time=13, vouches=("a", "c", "d", "e", "f")), 2),  # extra vouches add nothing
        (TrustRecord(on_time=20, damaged=1), 2),
        (TrustRecord(on_time=20, lost=1), 2),
        (TrustRecord(on_time=8, lost=1), 0),
    ],
)
def test_tier_thresholds(record: TrustRecord, expected: int) -> None:
    assert tier(record) == expected


records = st.builds(
    TrustRecord,
    on_time=st.integers(0, 40),
    late=st.integers(0, 10),
    damaged=st.integers(0, 5),
    lost=st.integers(0, 3),
    vouches=st.lists(st.text("abcdefgh", min_size=1, max_size=2), unique=True, max_size=6).map(tuple),
)


@given(record=records, what=st.sampled_from(["late", "damaged", "lost"]))
def test_one_more_late_damaged_or_lost_loan_never_raises_the_tier(record: TrustRecord, what: str) -> None:
    worse = replace(record, **{what: getattr(record, what) + 1})
    assert tier(worse) <= tier(record)


@given(record=records)
def test_one_more_on_time_return_never_lowers_the_tier(record: TrustRecord) -> None:
    assert tier(replace(record, on_time=record.on_time + 1)) >= tier(record)


def test_every_tier_has_a_name() -> None:
    assert TIER_NAMES == ("newcomer", "known", "trusted", "pillar")


# --- explain -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "sentence"),
    [
        (TrustRecord(on_time=4, late=1, vouches=("a", "c")), "4 on-time returns, 1 late, vouched by 2"),
        (TrustRecord(), "no verified loans yet"),
        (TrustRecord(on_time=1), "1 on-time return"),
        (TrustRecord(on_time=3, damaged=1, lost=2), "3 on-time returns, 1 damaged, 2 lost"),
        (TrustRecord(late=2), "2 late"),
        (TrustRecord(vouches=("a",)), "no verified loans yet, vouched by 1"),
    ],
)
def test_explain_names_only_the_nonzero_parts(record: TrustRecord, sentence: str) -> None:
    assert explain(record) == sentence


def test_explain_reads_a_record_built_from_loans() -> None:
    loans = [loan(n) for n in range(4)] + [loan(9, returned_at=DUE + HOUR)]
    assert explain(trust_record("b", loans, ["a", "c", "b"])) == "4 on-time returns, 1 late, vouched by 2"
