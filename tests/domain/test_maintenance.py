"""Maintenance due by date or by running hours, and running hours from a power plug's readings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.maintenance import MaintenanceDue, MaintenancePlan, done, due, next_due_at, usage_hours

T0 = 1_750_000_000.0
D = 86400.0


def plan(every_days: float | None = 90, every_hours: float | None = 40) -> MaintenancePlan:
    return MaintenancePlan("washer", every_days, every_hours, last_done=T0, hours_at_last=100.0)


def test_nothing_due_before_either_limit() -> None:
    assert due(plan(), T0 + 89 * D, 139.9) is None


def test_due_by_date_after_the_interval() -> None:
    assert due(plan(), T0 + 90 * D, 110.0) == MaintenanceDue("washer", True, False, 90.0, 10.0)


def test_due_by_usage_after_the_running_hours() -> None:
    assert due(plan(), T0 + 10 * D, 140.0) == MaintenanceDue("washer", False, True, 10.0, 40.0)


def test_due_by_both_says_so() -> None:
    got = due(plan(), T0 + 100 * D, 150.0)
    assert got is not None and (got.by_date, got.by_usage) == (True, True)
    assert (
        got.explain(plan())
        == "100 days since the last service (every 90); 50.0 h of use since then (every 40 h)"
    )


@pytest.mark.parametrize(("every_days", "every_hours"), [(None, 40), (90, None), (None, None)])
def test_a_limit_not_set_never_makes_it_due(every_days: float | None, every_hours: float | None) -> None:
    got = due(plan(every_days, every_hours), T0 + 1000 * D, 10_000.0)
    assert (got is not None) == (every_days is not None or every_hours is not None)
    if got is not None:
        assert got.by_date == (every_days is not None)
        assert got.by_usage == (every_hours is not None)


def test_counter_reset_counts_hours_since_the_reset() -> None:
    assert due(plan(None, 40), T0, 39.0) is None
    got = due(plan(None, 40), T0, 41.0)
    assert got is not None and got.hours_since == 41.0


def test_service_restarts_both_clocks() -> None:
    serviced = done(plan(), T0 + 95 * D, 145.0)
    assert (serviced.last_done, serviced.hours_at_last) == (T0 + 95 * D, 145.0)
    assert due(serviced, T0 + 96 * D, 150.0) is None


def test_next_due_date_for_the_scheduler() -> None:
    assert next_due_at(plan()) == T0 + 90 * D
    assert next_due_at(plan(None, 40)) is None


def test_usage_counts_time_above_the_threshold_until_the_next_sample() -> None:
    # A 90-minute wash with readings each minute, standby at 0.8 W before and after.
    samples = [(T0 + 60 * i, 0.8) for i in range(10)]
    samples += [(T0 + 600 + 60 * i, 2100.0 if i < 10 else 180.0) for i in range(90)]
    samples += [(T0 + 600 + 5400 + 60 * i, 0.8) for i in range(10)]
    assert usage_hours(samples) == pytest.approx(1.5)


def test_usage_threshold_is_strictly_above() -> None:
    samples = [(T0, 5.0), (T0 + 600, 5.0), (T0 + 1200, 0.0)]
    assert usage_hours(samples) == 0.0
    assert usage_hours(samples, threshold_w=4.9) == pytest.approx(1200 / 3600)


def test_usage_does_not_assume_a_silent_plug_kept_running() -> None:
    samples = [(T0, 2000.0), (T0 + 8 * 3600, 0.0)]
    assert usage_hours(samples) == pytest.approx(900 / 3600)
    assert usage_hours(samples, max_gap_s=math.inf) == pytest.approx(8.0)


def test_usage_sorts_samples_and_skips_broken_ones() -> None:
    samples = [(T0 + 60, 0.0), (T0, 100.0), (T0 + 30, math.nan), (math.inf, 100.0)]
    assert usage_hours(samples) == pytest.approx(60 / 3600)


def test_usage_of_fewer_than_two_samples_is_zero() -> None:
    assert usage_hours([]) == 0.0
    assert usage_hours([(T0, 2000.0)]) == 0.0


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=3000)),
        max_size=50,
    )
)
def test_usage_never_exceeds_the_span_of_the_samples(samples: list[tuple[float, float]]) -> None:
    hours = usage_hours(samples)
    times = [t for t, _ in samples]
    span_h = (max(times) - min(times)) / 3600 if times else 0.0
    assert 0.0 <= hours <= span_h + 1e-9
