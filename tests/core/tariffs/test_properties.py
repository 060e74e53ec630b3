"""Property tests: real-time deduction equals the bill; additivity; 15-min vs hourly data."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.core.tariffs import (
    AccountTerms,
    Interval,
    RatingAccumulator,
    incremental_charge,
    incremental_charge_from_intervals,
    parse_tariff,
    rate,
)

from .helpers import simple_document

TOU_ENERGY = {
    "periods": [
        {"name": "flat", "price": "0.6508"},
        {"name": "sharp", "price": "1.3015"},
        {"name": "peak", "price": "1.0846"},
        {"name": "valley", "price": "0.2603"},
    ],
    "schedule": [
        {"months": "1-12", "day_types": ["weekday"], "windows": [
            {"start": "00:00", "end": "08:00", "period": "valley"},
            {"start": "08:00", "end": "11:00", "period": "peak"},
            {"start": "18:00", "end": "23:00", "period": "peak"},
        ]},
        {"months": "1-12", "windows": [{"start": "23:00", "end": "07:00", "period": "valley"}]},
    ],
    "critical_peak": [{"months": "6-9", "windows": [{"start": "19:00", "end": "21:00", "period": "sharp"}]}],
}  # fmt: skip
SINGLE_ENERGY = {"periods": [{"name": "flat", "price": "0.5683"}]}
MONTH_TIERS = {
    "cumulation": "month",
    "steps": [
        {"up_to": "40", "increment": "0"},
        {"up_to": "90", "increment": "0.05"},
        {"up_to": None, "increment": "0.3"},
    ],
}
YEAR_TIERS = {**MONTH_TIERS, "cumulation": "year", "year_start_month": 3}

COMPONENTS: dict[str, dict[str, Any]] = {
    "single": {"energy": SINGLE_ENERGY},
    "tou": {"energy": TOU_ENERGY},
    "monthly tiers": {"energy": {**SINGLE_ENERGY, "tiers": MONTH_TIERS}},
    "annual tiers with tou": {"energy": {**TOU_ENERGY, "tiers": YEAR_TIERS}},
    "capacity basic charge": {"energy": SINGLE_ENERGY, "basic": {"method": "capacity", "price": "23.3"}},
    "max demand with overrun": {
        "energy": TOU_ENERGY,
        "basic": {"method": "max_demand", "price": "38", "overrun_threshold": "1.05", "minimum_fraction": "0.4"},
    },
    "contract demand rule": {
        "energy": TOU_ENERGY,
        "basic": {"method": "max_demand", "price": "38", "contract_rule": "cn_two_part"},
    },
    "utility demand": {
        "energy": SINGLE_ENERGY,
        "demand": {
            "periods": [{"name": "off", "tiers": [{"up_to": None, "price": "1.1"}]},
                        {"name": "on", "tiers": [{"up_to": "20", "price": "8.75"}, {"up_to": None, "price": "9.5"}]}],
            "schedule": [{"months": "1-12", "day_types": ["weekday"], "windows": [{"start": "12:00", "end": "18:00", "period": "on"}]}],
            "flat": [{"months": "5-9", "tiers": [{"up_to": None, "price": "6.1"}]}],
        },
    },
    "power factor": {
        "energy": TOU_ENERGY,
        "basic": {"method": "max_demand", "price": "38"},
        "power_factor": {"standard": "0.90"},
    },
    "water": {
        "water": {"price": "3.64", "tiers": {"cumulation": "year", "steps": [
            {"up_to": "30", "price": "3.64"}, {"up_to": "70", "price": "5.64"}, {"up_to": None, "price": "7.64"}]},
            "surcharges": [{"name": "sewage", "price": "1.36"}]},
    },
    "fixed and minimum": {
        "energy": SINGLE_ENERGY,
        "fixed_charges": [{"name": "meter", "amount": "10"}],
        "minimum_charge": "45",
    },
    "custom items": {
        "energy": SINGLE_ENERGY,
        "custom_items": [
            {"name": "rent", "amount": "3100"},
            {"name": "property fee", "amount": "3.5", "basis": "per_area"},
            {"name": "service fee", "amount": "910", "frequency": "quarterly"},
            {"name": "cleaning", "amount": "200", "frequency": "one_time"},
        ],
    },
}  # fmt: skip
ACCOUNT = AccountTerms(
    holidays=frozenset({date(2024, 5, 1), date(2024, 10, 1)}),
    capacity_kva=Decimal(315),
    contract_demand_kw=Decimal(20),
    room_area_m2=Decimal("42.5"),
    move_in=date(2024, 2, 10),
    move_out=date(2024, 11, 20),
    tier_usage_carried_in=Decimal(35),
)


def _raise_prices(value: Any) -> Any:
    """A corrected version: every price and amount 0.1 higher."""
    if isinstance(value, dict):
        return {
            key: str(Decimal(item) + Decimal("0.1"))
            if key in {"price", "amount"}
            else _raise_prices(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_raise_prices(item) for item in value]
    return value


def _tariff(component: str, version_change: datetime | None) -> Any:
    document = simple_document(**COMPONENTS[component])
    if version_change is not None:
        second = _raise_prices(json.loads(json.dumps(document["versions"][0])))
        second["effective_from"] = version_change.isoformat()
        document["versions"].append(second)
    return parse_tariff(document)


quantities = st.decimals(min_value=0, max_value=Decimal("12.5"), places=3)


@st.composite
def usage(draw: st.DrawFn, *, steps: tuple[int, ...] = (15, 60)) -> list[Interval]:
    minutes = draw(st.sampled_from(steps))
    month = draw(st.integers(min_value=2, max_value=11))
    hours_before_month = draw(st.integers(min_value=0, max_value=60))
    start = datetime(2024, month, 1) - timedelta(hours=hours_before_month)
    count = draw(st.integers(min_value=1, max_value=160))
    values = draw(st.lists(quantities, min_size=count, max_size=count))
    reactive = draw(st.lists(quantities, min_size=count, max_size=count))
    step = timedelta(minutes=minutes)
    return [
        Interval(start + i * step, start + (i + 1) * step, value, kvarh=reactive[i])
        for i, value in enumerate(values)
    ]


def _chunks(draw: st.DrawFn, items: list[Interval]) -> list[list[Interval]]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(items)), max_size=12))))
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    component=st.sampled_from(sorted(COMPONENTS)),
    intervals=usage(),
    data=st.data(),
)
def test_sum_of_real_time_deductions_equals_the_bill(
    component: str, intervals: list[Interval], data: st.DataObject
) -> None:
    change_at = data.draw(st.none() | st.sampled_from([iv.start for iv in intervals]))
    tariff = _tariff(component, change_at)
    bill = rate(tariff=tariff, intervals=intervals, account=ACCOUNT)
    state: Any = None
    deducted = Decimal(0)
    by_month: dict[str, Decimal] = {}
    for chunk in _chunks(data.draw, intervals):
        deduction = incremental_charge(
            tariff=tariff, new_intervals=chunk, state=state, account=ACCOUNT
        )
        state = json.loads(json.dumps(deduction.state))  # persisted as plain JSON
        deducted += deduction.amount
        for month, amount in deduction.by_month.items():
            by_month[month] = by_month.get(month, Decimal(0)) + amount
    assert deducted == bill.total
    assert {m: a for m, a in by_month.items() if a} == {
        m: a for m, a in bill.month_totals().items() if a
    }


@settings(max_examples=25, deadline=None)
@given(component=st.sampled_from(sorted(COMPONENTS)), intervals=usage(), data=st.data())
def test_deduction_from_intervals_so_far_matches_stateful_deduction(
    component: str, intervals: list[Interval], data: st.DataObject
) -> None:
    tariff = _tariff(component, None)
    split = data.draw(st.integers(0, len(intervals)))
    earlier, later = intervals[:split], intervals[split:]
    accumulator = RatingAccumulator(tariff=tariff, account=ACCOUNT)
    accumulator.add(earlier)
    stateful = incremental_charge(
        tariff=tariff, new_intervals=later, state=accumulator.to_state(), account=ACCOUNT
    )
    rebuilt = incremental_charge_from_intervals(
        tariff=tariff, intervals_so_far=earlier, new_intervals=later, account=ACCOUNT
    )
    assert stateful.amount == rebuilt.amount
    assert rate(tariff=tariff, intervals=earlier, account=ACCOUNT).total + stateful.amount == (
        rate(tariff=tariff, intervals=intervals, account=ACCOUNT).total
    )


def _unrounded(bill_lines: Any) -> Decimal:
    return sum(
        (line.quantity * line.unit_price * line.proration for line in bill_lines), Decimal(0)
    )


@settings(max_examples=60, deadline=None)
@given(
    component=st.sampled_from(["single", "tou", "monthly tiers", "annual tiers with tou", "water"]),
    intervals=usage(),
    data=st.data(),
)
def test_splitting_a_period_anywhere_gives_the_same_charges(
    component: str, intervals: list[Interval], data: st.DataObject
) -> None:
    """Energy is additive: rate the halves separately, the second carrying the first's tier usage.

    Compared before line rounding (each bill rounds its own lines once).
    """
    tariff = _tariff(component, None)
    split = data.draw(st.integers(0, len(intervals)))
    first, second = intervals[:split], intervals[split:]
    whole = rate(tariff=tariff, intervals=intervals)
    first_bill = rate(tariff=tariff, intervals=first)

    def tier_period(moment: datetime) -> tuple[int, int]:
        if component == "monthly tiers":
            return (moment.year, moment.month)
        if component == "annual tiers with tou":  # tier year starts in March
            return (moment.year if moment.month >= 3 else moment.year - 1, 0)
        return (moment.year, 0)  # water: calendar-year tiers

    carried = Decimal(0)
    if second:
        carried = sum(
            (iv.quantity for iv in first if tier_period(iv.start) == tier_period(second[0].start)),
            Decimal(0),
        )
    second_account = AccountTerms(tier_usage_carried_in=carried)
    second_bill = rate(tariff=tariff, intervals=second, account=second_account)
    assert _unrounded(first_bill.lines) + _unrounded(second_bill.lines) == _unrounded(whole.lines)


@settings(max_examples=40, deadline=None)
@given(component=st.sampled_from(sorted(COMPONENTS)), intervals=usage(steps=(60,)))
def test_splitting_at_a_month_boundary_gives_the_same_total(
    component: str, intervals: list[Interval]
) -> None:
    if "annual" in component or component == "water":
        return  # annual tiers carry usage across months; covered by the property above
    tariff = _tariff(component, None)
    first_month = (intervals[0].start.year, intervals[0].start.month)
    first = [iv for iv in intervals if (iv.start.year, iv.start.month) == first_month]
    second = intervals[len(first) :]
    account = AccountTerms(
        holidays=ACCOUNT.holidays, capacity_kva=ACCOUNT.capacity_kva,
        contract_demand_kw=ACCOUNT.contract_demand_kw, room_area_m2=ACCOUNT.room_area_m2,
        move_in=date(2024, 1, 1),
    )  # fmt: skip
    whole = rate(tariff=tariff, intervals=intervals, account=account).total
    parts = rate(tariff=tariff, intervals=first, account=account).total
    if second:
        parts += rate(tariff=tariff, intervals=second, account=account).total
    assert parts == whole


@settings(max_examples=60, deadline=None)
@given(
    component=st.sampled_from(["single", "tou", "monthly tiers"]),
    start_month=st.integers(1, 12),
    start_hour=st.integers(0, 23 * 5),
    quarters=st.lists(st.lists(quantities, min_size=4, max_size=4), min_size=1, max_size=100),
)
def test_quarter_hourly_and_hourly_data_with_equal_hourly_sums_cost_the_same(
    component: str, start_month: int, start_hour: int, quarters: list[list[Decimal]]
) -> None:
    tariff = _tariff(component, None)
    start = datetime(2024, start_month, 1) + timedelta(hours=start_hour)
    quarter_hourly = [
        Interval(
            start + timedelta(minutes=15 * (4 * h + q)),
            start + timedelta(minutes=15 * (4 * h + q + 1)),
            value,
        )
        for h, hour in enumerate(quarters)
        for q, value in enumerate(hour)
    ]
    hourly = [
        Interval(start + timedelta(hours=h), start + timedelta(hours=h + 1), sum(hour, Decimal(0)))
        for h, hour in enumerate(quarters)
    ]
    fine = rate(tariff=tariff, intervals=quarter_hourly)
    coarse = rate(tariff=tariff, intervals=hourly)
    assert fine.lines == coarse.lines
