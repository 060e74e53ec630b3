"""The vectorised batch path gives the Decimal engine's bill, line by line."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.core.tariffs import AccountTerms, Interval, RatingError, parse_tariff, rate
from meterpay.core.tariffs.fast import HAVE_NUMPY, IntervalArrays, rate_arrays, rate_fast, supports

from .helpers import fixture_tariff, simple_document
from .test_properties import ACCOUNT, COMPONENTS, _tariff, usage

pytestmark = pytest.mark.skipif(not HAVE_NUMPY, reason="NumPy is not installed")

ACCOUNTS = {
    "default": AccountTerms(),
    "prorated": ACCOUNT,
    "scaled tiers": AccountTerms(
        holidays=frozenset({date(2024, 5, 1)}),
        tier_threshold_scale=Decimal("1.25"),
        tier_usage_carried_in=Decimal("12.5"),
        contract_demand_kw=Decimal(20),
        capacity_kva=Decimal(100),
    ),
    "explicit thresholds": AccountTerms(
        tier_thresholds=(Decimal("10.5"), Decimal("20")), tier_usage_carried_in=Decimal(3)
    ),
}

# Random TOU schedules on the hour grid, with seasons, day types and critical peaks.
PERIOD_NAMES = ["flat", "peak", "valley", "sharp"]
prices = st.decimals(min_value=0, max_value=Decimal("3"), places=4).map(str)


@st.composite
def windows(draw: st.DrawFn, min_size: int = 0) -> list[dict[str, str]]:
    result = []
    for _ in range(draw(st.integers(min_size, 3))):
        start = draw(st.integers(0, 23))
        end = (start + draw(st.integers(1, 23))) % 24 or 24  # may wrap midnight
        result.append(
            {
                "start": f"{start:02d}:00",
                "end": f"{end:02d}:00",
                "period": draw(st.sampled_from(PERIOD_NAMES)),
            }
        )
    return result


@st.composite
def rules(draw: st.DrawFn, critical: bool = False) -> dict[str, Any]:
    first = draw(st.integers(1, 12))
    last = draw(st.integers(1, 12))
    rule: dict[str, Any] = {"months": f"{first}-{last}", "windows": draw(windows(int(critical)))}
    day_types = draw(st.sets(st.sampled_from(["weekday", "weekend", "holiday"]), min_size=1))
    rule["day_types"] = sorted(day_types)
    if not critical and draw(st.booleans()):
        rule["default_period"] = draw(st.sampled_from(PERIOD_NAMES))
    return rule


@st.composite
def random_energy(draw: st.DrawFn) -> dict[str, Any]:
    energy: dict[str, Any] = {
        "periods": [{"name": name, "price": draw(prices)} for name in PERIOD_NAMES],
        "schedule": draw(st.lists(rules(), max_size=3)),
        "critical_peak": draw(st.lists(rules(critical=True), max_size=1)),
        "default_period": draw(st.sampled_from(PERIOD_NAMES)),
    }
    if draw(st.booleans()):
        count = draw(st.integers(1, 3))
        bounds = sorted(draw(st.sets(st.integers(1, 400), min_size=count, max_size=count)))
        steps: list[dict[str, Any]] = [
            {"up_to": str(Decimal(b) / 4), "increment": draw(prices)} for b in bounds
        ]
        steps.append({"up_to": None, "increment": draw(prices)})
        energy["tiers"] = {
            "cumulation": draw(st.sampled_from(["month", "year"])),
            "year_start_month": draw(st.integers(1, 12)),
            "steps": steps,
        }
    return energy


def _assert_same_bill(tariff: Any, intervals: list[Interval], account: AccountTerms) -> None:
    """Equal lines (Decimal equality), and equal strings for everything but the quantity.

    A quantity's string may differ in trailing zeros: the engine's Decimal sums keep the
    exponents of the operands ("40" for a tier filled up to a threshold of 40 kWh), the fast
    path gives the data's number of decimals ("40.000").
    """
    try:
        expected = rate(tariff=tariff, intervals=intervals, account=account)
    except RatingError as error:
        with pytest.raises(RatingError, match=str(error)[:25]):
            rate_fast(tariff=tariff, intervals=intervals, account=account)
        return
    arrays = IntervalArrays.from_intervals(intervals)
    assert arrays is not None
    fast = rate_arrays(tariff=tariff, arrays=arrays, account=account)
    assert fast is not None
    assert fast.lines == expected.lines
    for got, want in zip(fast.lines, expected.lines, strict=True):
        assert {**got.to_dict(), "quantity": None} == {**want.to_dict(), "quantity": None}
        assert got.quantity == want.quantity
    assert fast.total == expected.total


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    component=st.sampled_from(sorted(COMPONENTS)),
    account=st.sampled_from(sorted(ACCOUNTS)),
    intervals=usage(),
    data=st.data(),
)
def test_fast_bill_equals_the_engine_bill_for_every_component(
    component: str, account: str, intervals: list[Interval], data: st.DataObject
) -> None:
    change_at = data.draw(st.none() | st.sampled_from([iv.start for iv in intervals]))
    tariff = _tariff(component, change_at)
    terms = ACCOUNTS[account]
    if terms.tier_thresholds is not None and "tiers" not in component and component != "water":
        terms = AccountTerms()
    _assert_same_bill(tariff, intervals, terms)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    energy=random_energy(),
    second=st.none() | random_energy(),
    account=st.sampled_from(["default", "prorated", "scaled tiers"]),
    intervals=usage(steps=(15, 30, 60)),
    data=st.data(),
)
def test_fast_bill_equals_the_engine_bill_for_random_tou_and_tiers(
    energy: dict[str, Any],
    second: dict[str, Any] | None,
    account: str,
    intervals: list[Interval],
    data: st.DataObject,
) -> None:
    document = simple_document(
        energy=energy,
        basic={"method": "max_demand", "price": "38"},
        fixed_charges=[{"name": "meter", "amount": "10"}],
    )
    if second is not None:
        change_at = data.draw(st.sampled_from([iv.start for iv in intervals]))
        document["versions"].append({"effective_from": change_at.isoformat(), "energy": second})
    tariff = parse_tariff(json.loads(json.dumps(document)))
    _assert_same_bill(tariff, intervals, ACCOUNTS[account])


@settings(max_examples=40, deadline=None)
@given(
    quantities=st.lists(
        st.decimals(min_value=0, max_value=Decimal("200"), places=2), min_size=1, max_size=60
    ),
    minutes=st.sampled_from([5, 15, 60]),
)
def test_tier_boundaries_straddled_by_large_intervals(
    quantities: list[Decimal], minutes: int
) -> None:
    tariff = fixture_tariff("cn_residential_annual_tou.json")
    start = tariff.versions[0].effective_from + timedelta(days=40)
    step = timedelta(minutes=minutes)
    intervals = [
        Interval(start + i * step, start + (i + 1) * step, q * 40) for i, q in enumerate(quantities)
    ]
    _assert_same_bill(tariff, intervals, AccountTerms())


def test_a_year_of_15_minute_data_on_the_two_part_tariff() -> None:
    tariff = fixture_tariff("cn_two_part_demand_pf.json")
    start = datetime(2024, 1, 1)
    step = timedelta(minutes=15)
    intervals = [
        Interval(
            start + i * step,
            start + (i + 1) * step,
            Decimal(10 + (i * 7919) % 2000) / 100,
            kvarh=Decimal((i * 104729) % 900) / 100,
        )
        for i in range(366 * 96)
    ]
    _assert_same_bill(tariff, intervals, AccountTerms(contract_demand_kw=Decimal(40)))


def test_intervals_the_fast_path_does_not_take_fall_back_to_the_engine() -> None:
    tariff = fixture_tariff("cn_two_part_demand_pf.json")
    start = datetime(2024, 3, 1)
    hour = timedelta(hours=1)
    with_kw = [Interval(start, start + hour, Decimal(5), kw=Decimal(9))]
    assert IntervalArrays.from_intervals(with_kw) is None
    mixed = [
        Interval(start, start + hour, Decimal(5), kvarh=Decimal(1)),
        Interval(start + hour, start + 2 * hour, Decimal(5)),
    ]
    assert IntervalArrays.from_intervals(mixed) is None
    account = AccountTerms(contract_demand_kw=Decimal(40))
    for intervals in (with_kw, mixed):
        assert rate_fast(tariff=tariff, intervals=intervals, account=account) == rate(
            tariff=tariff, intervals=intervals, account=account
        )


def test_supports_names_what_it_cannot_do() -> None:
    tariff = _tariff("monthly tiers", None)
    assert supports(tariff) is None
    decreasing = AccountTerms(tier_thresholds=(Decimal(50), Decimal(40)))
    assert supports(tariff, decreasing) == "tier thresholds that do not increase"
    start = datetime(2024, 3, 1)
    intervals = [
        Interval(start + timedelta(hours=h), start + timedelta(hours=h + 1), Decimal(30))
        for h in range(5)
    ]
    assert rate_fast(tariff=tariff, intervals=intervals, account=decreasing) == rate(
        tariff=tariff, intervals=intervals, account=decreasing
    )


def test_overflowing_quantities_fall_back() -> None:
    tariff = _tariff("single", None)
    start = datetime(2024, 3, 1)
    huge = Decimal(2**62) / 1000
    intervals = [
        Interval(start + timedelta(hours=h), start + timedelta(hours=h + 1), huge) for h in range(3)
    ]
    arrays = IntervalArrays.from_intervals(intervals)
    assert arrays is not None
    assert rate_arrays(tariff=tariff, arrays=arrays) is None
    assert rate_fast(tariff=tariff, intervals=intervals) == rate(tariff=tariff, intervals=intervals)


def test_invalid_data_raises_like_the_engine() -> None:
    tariff = _tariff("single", None)
    start = datetime(2024, 3, 1)
    overlapping = [
        Interval(start, start + timedelta(hours=2), Decimal(1)),
        Interval(start + timedelta(hours=1), start + timedelta(hours=3), Decimal(1)),
    ]
    with pytest.raises(RatingError, match="overlaps or precedes"):
        rate_fast(tariff=tariff, intervals=overlapping)
    early = [Interval(datetime(2023, 1, 1), datetime(2023, 1, 1, 1), Decimal(1))]
    with pytest.raises(RatingError, match="before the tariff's first version"):
        rate_fast(tariff=tariff, intervals=early)
