"""The two-part tariff billed by contract maximum demand (basic ``contract_rule``)."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterpay.core.tariffs import (
    AccountTerms,
    Interval,
    TariffError,
    incremental_charge,
    parse_tariff,
    rate,
    tariff_to_dict,
)
from meterpay.core.tariffs.errors import RatingError
from meterpay.core.tariffs.fast import HAVE_NUMPY, IntervalArrays, rate_arrays
from meterpay.core.tariffs.streaming import FastAccumulator

from .helpers import fixture_json, fixture_tariff, simple_document

SINGLE = {"periods": [{"name": "flat", "price": "0.5"}]}
CONTRACT_500 = AccountTerms(contract_demand_kw=Decimal(500))


def _tariff(**basic: str) -> Any:
    return parse_tariff(
        simple_document(
            energy=SINGLE,
            basic={"method": "max_demand", "price": "38", "contract_rule": "cn_two_part", **basic},
        )
    )


def _peak_hour(kw: str, day: int = 3) -> list[Interval]:
    """A July day with one hour at ``kw`` (kWh in one hour = kW) and a quiet hour."""
    start = datetime(2024, 7, day, 10)
    return [
        Interval(start, start + timedelta(hours=1), Decimal(kw)),
        Interval(start + timedelta(hours=1), start + timedelta(hours=2), Decimal(10)),
    ]


def _basic_lines(bill: Any) -> list[tuple[str, str, str, str]]:
    return [
        (line.label, str(line.quantity), str(line.unit_price), str(line.amount))
        for line in bill.lines
        if line.component == "basic"
    ]


# ---------------------------------------------------------------------- the document


def test_contract_rule_parses_with_default_threshold_and_multiplier_and_writes_back() -> None:
    tariff = _tariff()
    basic = tariff.versions[0].basic
    assert basic is not None
    assert basic.contract_rule == "cn_two_part"
    assert basic.overrun_threshold == Decimal("1.05")
    assert basic.overrun_multiplier == 2
    assert basic.minimum_fraction is None
    written = tariff_to_dict(tariff)["versions"][0]["basic"]
    assert written == {
        "method": "max_demand",
        "price": "38",
        "contract_rule": "cn_two_part",
        "overrun_threshold": "1.05",
    }
    assert parse_tariff(tariff_to_dict(tariff)) == tariff


def test_contract_rule_fixture_round_trips() -> None:
    document = fixture_json("cn_two_part_contract_demand.json")
    assert tariff_to_dict(parse_tariff(document)) == document


@pytest.mark.parametrize(
    ("basic", "path", "problem"),
    [
        ({"method": "max_demand", "price": "38", "contract_rule": "cn"}, "versions[0].basic.contract_rule", "must be one of cn_two_part"),
        ({"method": "capacity", "price": "38", "contract_rule": "cn_two_part"}, "versions[0].basic.contract_rule", "applies to method max_demand only"),
        ({"method": "max_demand", "price": "38", "contract_rule": "cn_two_part", "minimum_fraction": "0.4"}, "versions[0].basic.minimum_fraction", "not allowed with contract_rule cn_two_part (the contract demand is the minimum)"),
        ({"method": "max_demand", "price": "38", "contract_rule": "cn_two_part", "overrun_threshold": "0.95"}, "versions[0].basic.overrun_threshold", "must be at least 1 with contract_rule cn_two_part"),
        ({"method": "max_demand", "price": "38", "contract_rule": "cn_two_part", "overrun_multiplier": 2}, "versions[0].basic.overrun_multiplier", "must be a decimal string"),
    ],
)  # fmt: skip
def test_contract_rule_errors_name_the_field(
    basic: dict[str, Any], path: str, problem: str
) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(simple_document(energy=SINGLE, basic=basic))
    assert (caught.value.path, caught.value.problem) == (path, problem)


# ---------------------------------------------------------------------- hand-checked bills


@pytest.mark.parametrize(
    ("peak", "lines", "total"),
    [
        # below the contract: the contract demand is billed, 500 x 38
        ("480", [("contract demand", "500", "38.000000", "19000.00")], "19000.00"),
        # between the contract and 105 % of it: still the contract demand
        ("520", [("contract demand", "500", "38.000000", "19000.00")], "19000.00"),
        ("525", [("contract demand", "500", "38.000000", "19000.00")], "19000.00"),
        # above 105 %: 525 x 38 = 19,950 and (540 - 525) x 38 x 2 = 1,140
        ("540", [("max demand up to 105% of contract", "525.00", "38.000000", "19950.00"),
                 ("max demand overrun", "15.00", "76.000000", "1140.00")], "21090.00"),
        # just above: 525 x 38 + 0.01 x 76 = 19,950.76 (the rule steps up at 105 %)
        ("525.01", [("max demand up to 105% of contract", "525.00", "38.000000", "19950.00"),
                    ("max demand overrun", "0.01", "76.000000", "0.76")], "19950.76"),
    ],
)  # fmt: skip
def test_cn_two_part_rule_hand_checked(
    peak: str, lines: list[tuple[str, str, str, str]], total: str
) -> None:
    bill = rate(tariff=_tariff(), intervals=_peak_hour(peak), account=CONTRACT_500)
    assert _basic_lines(bill) == lines
    basic_total = sum((line.amount for line in bill.lines if line.component == "basic"), Decimal(0))
    assert basic_total == Decimal(total)


def test_a_month_without_demand_still_bills_the_contract() -> None:
    interval = Interval(datetime(2024, 7, 1), datetime(2024, 7, 1, 1), Decimal(0))
    bill = rate(tariff=_tariff(), intervals=[interval], account=CONTRACT_500)
    assert _basic_lines(bill) == [("contract demand", "500", "38.000000", "19000.00")]


def test_configured_threshold_and_multiplier() -> None:
    tariff = _tariff(overrun_threshold="1.1", overrun_multiplier="3")
    # 600 kW against 500 x 1.1 = 550: 550 x 38 = 20,900; 50 x 114 = 5,700
    bill = rate(tariff=tariff, intervals=_peak_hour("600"), account=CONTRACT_500)
    assert _basic_lines(bill) == [
        ("max demand up to 110% of contract", "550.0", "38.000000", "20900.00"),
        ("max demand overrun", "50.0", "114.000000", "5700.00"),
    ]
    bill = rate(tariff=tariff, intervals=_peak_hour("550"), account=CONTRACT_500)
    assert _basic_lines(bill) == [("contract demand", "500", "38.000000", "19000.00")]


def test_contract_rule_differs_from_overrun_with_minimum_only_within_the_band() -> None:
    """``overrun_threshold`` 1.05 + ``minimum_fraction`` 1 bills the actual 520 kW."""
    plain = parse_tariff(
        simple_document(
            energy=SINGLE,
            basic={"method": "max_demand", "price": "38", "overrun_threshold": "1.05",
                   "minimum_fraction": "1"},
        )
    )  # fmt: skip
    for peak, plain_total, rule_total in [
        ("480", "19000.00", "19000.00"),
        ("520", "19760.00", "19000.00"),
        ("540", "21090.00", "21090.00"),
    ]:
        intervals = _peak_hour(peak)
        assert _basic_total(rate(tariff=plain, intervals=intervals, account=CONTRACT_500)) == (
            Decimal(plain_total)
        )
        assert _basic_total(rate(tariff=_tariff(), intervals=intervals, account=CONTRACT_500)) == (
            Decimal(rule_total)
        )


def _basic_total(bill: Any) -> Decimal:
    return sum((line.amount for line in bill.lines if line.component == "basic"), Decimal(0))


def test_move_in_prorates_the_contract_demand() -> None:
    account = AccountTerms(contract_demand_kw=Decimal(500), move_in=date(2024, 7, 16))
    bill = rate(tariff=_tariff(), intervals=_peak_hour("300", day=20), account=account)
    # 16 of July's 31 days: 19,000 x 16 / 31 = 9,806.4516… → 9,806.45
    assert _basic_total(bill) == Decimal("9806.45")


def test_the_rule_needs_the_contract_demand() -> None:
    with pytest.raises(RatingError, match="contract_demand_kw"):
        rate(tariff=_tariff(), intervals=_peak_hour("100"))


def test_the_fixture_bills_the_documented_example() -> None:
    tariff = fixture_tariff("cn_two_part_contract_demand.json")
    start = datetime(2024, 7, 1, 9)  # peak hour
    intervals = [Interval(start, start + timedelta(minutes=15), Decimal(135))]  # 540 kW
    bill = rate(tariff=tariff, intervals=intervals, account=CONTRACT_500)
    # energy 135 x 0.9405 = 126.9675 → 126.97; basic 19,950 + 1,140
    assert bill.total == Decimal("21216.97")


# ---------------------------------------------------------------------- fast paths agree

quantities = st.decimals(min_value=0, max_value=Decimal("200"), places=2)


@st.composite
def _usage(draw: st.DrawFn) -> list[Interval]:
    minutes = draw(st.sampled_from([15, 60, 24 * 60]))
    step = timedelta(minutes=minutes)
    start = datetime(2024, draw(st.integers(2, 11)), 1) - draw(st.sampled_from([0, 3])) * step
    count = draw(st.integers(1, 60))
    values = draw(st.lists(quantities, min_size=count, max_size=count))
    with_kw = minutes > 60 or draw(st.booleans())
    demands = draw(st.lists(quantities, min_size=count, max_size=count))
    return [
        Interval(
            start + i * step,
            start + (i + 1) * step,
            value,
            kw=demands[i] if with_kw else None,
        )
        for i, value in enumerate(values)
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    intervals=_usage(),
    contract=st.decimals(min_value=1, max_value=Decimal("150"), places=1),
    threshold=st.sampled_from([None, "1", "1.05", "1.2"]),
    change=st.booleans(),
)
def test_engine_fast_and_streaming_paths_agree_on_the_rule(
    intervals: list[Interval], contract: Decimal, threshold: str | None, change: bool
) -> None:
    document = simple_document(
        energy=SINGLE,
        basic={"method": "max_demand", "price": "38", "contract_rule": "cn_two_part",
               **({"overrun_threshold": threshold} if threshold else {})},
        power_factor={"standard": "0.90"},
    )  # fmt: skip
    if change:  # a price change in the middle of the data
        second = copy.deepcopy(document["versions"][0])
        second["effective_from"] = intervals[len(intervals) // 2].start.isoformat()
        second["basic"]["price"] = "40"
        if intervals[len(intervals) // 2].start > datetime(2024, 1, 1):
            document["versions"].append(second)
    tariff = parse_tariff(document)
    account = AccountTerms(contract_demand_kw=contract, move_out=date(2024, 11, 20))
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    # the engine's deductions, one reading at a time with the state, add up to the bill
    state: Any = None
    engine_amounts = []
    for interval in intervals:
        deduction = incremental_charge(
            tariff=tariff, new_intervals=[interval], state=state, account=account
        )
        state = deduction.state
        engine_amounts.append(deduction.amount)
    assert sum(engine_amounts, Decimal(0)) == bill.total
    # the streaming accumulator gives the same deduction for every reading
    fast = FastAccumulator(tariff=tariff, account=account)
    assert [fast.deduct(interval) for interval in intervals] == engine_amounts
    # the vectorised batch path (intervals without a meter kW only)
    arrays = IntervalArrays.from_intervals(intervals) if HAVE_NUMPY else None
    if arrays is not None:
        batch = rate_arrays(tariff=tariff, arrays=arrays, account=account)
        assert batch is not None
        assert batch.lines == bill.lines
