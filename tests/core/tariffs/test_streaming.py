"""The fast accumulator deducts exactly what the Decimal engine deducts, reading by reading."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.core.tariffs import (
    AccountTerms,
    Interval,
    RatingAccumulator,
    RatingError,
    incremental_charge,
    rate,
)
from meterpay.core.tariffs.streaming import FastAccumulator, fast_incremental_charge

from .helpers import single_price
from .test_properties import ACCOUNT, COMPONENTS, _chunks, _tariff, usage

ACCOUNTS = {
    "default": AccountTerms(),
    "prorated": ACCOUNT,
    "scaled tiers": AccountTerms(
        tier_threshold_scale=Decimal("1.25"), tier_usage_carried_in=Decimal("12.5")
    ),
}


def _engine_deductions(tariff: Any, intervals: list[Interval], account: AccountTerms) -> list[Any]:
    accumulator = RatingAccumulator(tariff=tariff, account=account)
    amounts = []
    for interval in intervals:
        month = f"{interval.start.year:04d}-{interval.start.month:02d}"
        before = accumulator.month_total(month)
        accumulator.add([interval])
        amounts.append(accumulator.month_total(month) - before)
    return amounts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    component=st.sampled_from(sorted(COMPONENTS)),
    account=st.sampled_from(sorted(ACCOUNTS)),
    intervals=usage(),
    data=st.data(),
)
def test_each_fast_deduction_equals_the_engine_deduction(
    component: str, account: str, intervals: list[Interval], data: st.DataObject
) -> None:
    terms = ACCOUNTS[account]
    change_at = data.draw(st.none() | st.sampled_from([iv.start for iv in intervals]))
    tariff = _tariff(component, change_at)
    fast = FastAccumulator(tariff=tariff, account=terms)
    try:
        expected = _engine_deductions(tariff, intervals, terms)
    except RatingError as error:  # e.g. a capacity charge without the account's capacity
        with pytest.raises(RatingError, match=str(error)[:30]):
            for interval in intervals:
                fast.deduct(interval)
        return
    got = [fast.deduct(interval) for interval in intervals]
    assert got == expected
    bill = rate(tariff=tariff, intervals=intervals, account=terms)
    assert sum(got, Decimal(0)) == bill.total
    assert fast.month_total() == bill.month_totals().get(fast.month or "", Decimal(0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(component=st.sampled_from(sorted(COMPONENTS)), intervals=usage(), data=st.data())
def test_sum_of_fast_deductions_with_json_state_equals_the_bill(
    component: str, intervals: list[Interval], data: st.DataObject
) -> None:
    """Chunks of readings, the state persisted as JSON between them; engine and fast mixed."""
    change_at = data.draw(st.none() | st.sampled_from([iv.start for iv in intervals]))
    tariff = _tariff(component, change_at)
    bill = rate(tariff=tariff, intervals=intervals, account=ACCOUNT)
    state: Any = None
    deducted = Decimal(0)
    by_month: dict[str, Decimal] = {}
    for chunk in _chunks(data.draw, intervals):
        charge = incremental_charge if data.draw(st.booleans()) else fast_incremental_charge
        deduction = charge(tariff=tariff, new_intervals=chunk, state=state, account=ACCOUNT)
        expected = incremental_charge(
            tariff=tariff, new_intervals=chunk, state=state, account=ACCOUNT
        )
        assert deduction.amount == expected.amount
        assert dict(deduction.by_month) == dict(expected.by_month)
        state = json.loads(json.dumps(deduction.state))
        deducted += deduction.amount
        for month, amount in deduction.by_month.items():
            by_month[month] = by_month.get(month, Decimal(0)) + amount
    assert deducted == bill.total
    assert {m: a for m, a in by_month.items() if a} == {
        m: a for m, a in bill.month_totals().items() if a
    }


def test_state_is_the_engine_format_for_the_latest_month_only() -> None:
    tariff = _tariff("annual tiers with tou", None)
    start = datetime(2024, 3, 31, 22)
    intervals = [
        Interval(start + timedelta(hours=h), start + timedelta(hours=h + 1), Decimal("30.5"))
        for h in range(4)
    ]
    deduction = fast_incremental_charge(tariff=tariff, new_intervals=intervals)
    assert list(deduction.state["months"]) == ["2024-04"]
    assert deduction.state["tier_usage"] == {"Y2024-03": "122.0"}
    assert deduction.state["first_month"] == "2024-03"
    engine = RatingAccumulator(tariff=tariff)
    engine.add(intervals)
    assert deduction.state["months"]["2024-04"] == engine.to_state()["months"]["2024-04"]


def test_more_decimals_in_a_later_reading_rescales_exactly() -> None:
    tariff = _tariff("monthly tiers", None)
    start = datetime(2024, 5, 1)
    quantities = ["1.5", "38.25", "0.123456", "50", "0.0000001"]
    intervals = [
        Interval(start + timedelta(hours=h), start + timedelta(hours=h + 1), Decimal(q))
        for h, q in enumerate(quantities)
    ]
    fast = FastAccumulator(tariff=tariff)
    assert [fast.deduct(iv) for iv in intervals] == _engine_deductions(
        tariff, intervals, AccountTerms()
    )


def test_out_of_order_reading_is_refused() -> None:
    tariff = single_price()
    fast = FastAccumulator(tariff=tariff)
    fast.deduct(Interval(datetime(2024, 5, 1, 1), datetime(2024, 5, 1, 2), Decimal(1)))
    with pytest.raises(RatingError, match="overlaps or precedes"):
        fast.deduct(Interval(datetime(2024, 5, 1, 0), datetime(2024, 5, 1, 1), Decimal(1)))
