from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from meterpay.core.tariffs import (
    AccountTerms,
    Interval,
    RatingAccumulator,
    RatingError,
    ReadingsError,
    RegisterReading,
    intervals_from_registers,
    parse_interval_csv,
    parse_tariff,
    rate,
    rerate,
)
from meterpay.core.tariffs.model import CustomItem
from meterpay.core.tariffs.power_factor import adjustment_percent, power_factor
from meterpay.core.tariffs.proration import custom_item_charge, overlap_share

from .helpers import fixture_tariff, hourly, simple_document, single_price


@pytest.mark.parametrize(
    ("standard", "pf", "percent"),
    [
        ("0.90", "0.90", "0"), ("0.90", "0.92", "-0.30"), ("0.90", "0.94", "-0.60"),
        ("0.90", "0.95", "-0.75"), ("0.90", "1.00", "-0.75"), ("0.90", "0.89", "0.5"),
        ("0.90", "0.70", "10"), ("0.90", "0.69", "11"), ("0.90", "0.65", "15"),
        ("0.90", "0.64", "17"), ("0.90", "0.60", "25"),
        ("0.85", "0.86", "-0.1"), ("0.85", "0.90", "-0.5"), ("0.85", "0.91", "-0.65"),
        ("0.85", "0.93", "-0.95"), ("0.85", "0.94", "-1.10"), ("0.85", "1.00", "-1.10"),
        ("0.85", "0.84", "0.5"), ("0.85", "0.65", "10"), ("0.85", "0.60", "15"), ("0.85", "0.59", "17"),
        ("0.80", "0.81", "-0.1"), ("0.80", "0.90", "-1.0"), ("0.80", "0.91", "-1.15"),
        ("0.80", "0.92", "-1.30"), ("0.80", "0.99", "-1.30"), ("0.80", "0.60", "10"),
        ("0.80", "0.55", "15"), ("0.80", "0.54", "17"),
    ],
)  # fmt: skip
def test_power_factor_tables(standard: str, pf: str, percent: str) -> None:
    assert adjustment_percent(power_factor=Decimal(pf), standard=Decimal(standard)) == Decimal(
        percent
    )


def test_power_factor_computation() -> None:
    assert power_factor(kwh=Decimal(300), kvarh=Decimal(186)) == Decimal("0.85")
    assert power_factor(kwh=Decimal(100), kvarh=Decimal(0)) == Decimal("1.00")
    assert power_factor(kwh=Decimal(0), kvarh=Decimal(5)) is None
    with pytest.raises(RatingError):
        power_factor(kwh=Decimal(-1), kvarh=Decimal(0))
    with pytest.raises(RatingError, match="no power-factor table"):
        adjustment_percent(power_factor=Decimal("0.9"), standard=Decimal("0.95"))


def test_interval_csv_detects_step_and_optional_columns() -> None:
    intervals = parse_interval_csv(
        "timestamp,kwh,kvarh,kw\n2024-01-01T00:00,1.5,0.5,7\n2024-01-01T00:15,2,,\n\n2024-01-01T01:00,1,1,\n"
    )
    assert [iv.end - iv.start for iv in intervals] == [timedelta(minutes=15)] * 3
    assert intervals[0].kvarh == Decimal("0.5") and intervals[0].kw == Decimal(7)
    assert intervals[1].kvarh is None
    single = parse_interval_csv("kwh,timestamp\n3,2024-01-01T05:00\n")
    assert single[0].end == datetime(2024, 1, 1, 6)


@pytest.mark.parametrize(
    ("text", "row", "problem"),
    [
        ("", 1, "the file is empty"),
        ("timestamp\n", 1, "header must contain 'kwh' (electricity) or 'm3' (water)"),
        ("timestamp,kwh,extra\n", 1, "unknown column 'extra'"),
        ("timestamp,kwh,kwh\n", 1, "a column is repeated"),
        ("timestamp,kwh\n", 2, "no readings"),
        ("timestamp,kwh\n2024-01-01T00:00\n", 2, "expected 2 columns, got 1"),
        ("timestamp,kwh\nnoon,1\n", 2, "timestamp: 'noon' is not ISO 8601"),
        ("timestamp,kwh\n2024-01-01T00:00+08:00,1\n", 2, "timestamp: must be local time without a UTC offset"),
        ("timestamp,kwh\n2024-01-01T00:00,inf\n", 2, "kwh: 'inf' is not a decimal number"),
        ("timestamp,kwh\n2024-01-01T01:00,1\n2024-01-01T00:00,1\n", 3, "timestamp: not later than the previous row"),
        ("timestamp,kwh\n2024-01-01T00:00,1\n2024-01-01T00:05,1\n", 3, "interval length 5 min is not 15, 30 or 60 min, a day or a month"),
        ("timestamp,kwh\n2024-01-01T00:00,1\n2024-01-01T00:30,1\n2024-01-01T01:15,1\n", 4, "timestamp: not on the 0:30:00 grid"),
    ],
)  # fmt: skip
def test_interval_csv_errors(text: str, row: int, problem: str) -> None:
    with pytest.raises(ReadingsError) as caught:
        parse_interval_csv(text)
    assert (caught.value.row, caught.value.problem) == (row, problem)


def test_registers_with_meter_tou_become_forced_period_intervals() -> None:
    tariff = fixture_tariff("cn_residential_annual_tou.json")
    readings = [
        RegisterReading(
            datetime(2024, 3, 1),
            Decimal(1000),
            Decimal(100),
            {"peak": Decimal(600), "valley": Decimal(400)},
        ),
        RegisterReading(
            datetime(2024, 3, 2),
            Decimal(1030),
            Decimal(110),
            {"peak": Decimal(620), "valley": Decimal(408)},
        ),
        RegisterReading(datetime(2024, 3, 3), Decimal(1040), Decimal(112)),
    ]
    intervals = intervals_from_registers(readings)
    assert [(iv.period, iv.quantity) for iv in intervals] == [
        ("peak", 20),
        ("valley", 8),
        (None, 2),
        (None, 10),
    ]
    assert intervals[0].kvarh == Decimal(10)
    bill = rate(tariff=tariff, intervals=intervals)
    quantities = {line.label: line.quantity for line in bill.lines}
    # forced: 20 peak, 8 valley; unforced spans start at midnight → valley: 2 + 10
    assert quantities == {"peak tier 1": Decimal(20), "valley tier 1": Decimal(20)}


@pytest.mark.parametrize(
    ("readings", "message"),
    [
        ([RegisterReading(datetime(2024, 1, 2), Decimal(1)), RegisterReading(datetime(2024, 1, 1), Decimal(2))], "is not after"),
        ([RegisterReading(datetime(2024, 1, 1), Decimal(5)), RegisterReading(datetime(2024, 1, 2), Decimal(4))], "kWh register went backwards"),
        ([RegisterReading(datetime(2024, 1, 1), Decimal(1), Decimal(5)), RegisterReading(datetime(2024, 1, 2), Decimal(2), Decimal(4))], "kvarh register went backwards"),
        ([RegisterReading(datetime(2024, 1, 1), Decimal(1)), RegisterReading(datetime(2024, 1, 2), Decimal(2), tou={"peak": Decimal(1)})], "TOU register 'peak' missing"),
        ([RegisterReading(datetime(2024, 1, 1), Decimal(1), tou={"peak": Decimal(3)}), RegisterReading(datetime(2024, 1, 2), Decimal(2), tou={"peak": Decimal(2)})], "TOU register 'peak' went backwards"),
        ([RegisterReading(datetime(2024, 1, 1), Decimal(1), tou={"peak": Decimal(0)}), RegisterReading(datetime(2024, 1, 2), Decimal(2), tou={"peak": Decimal(5)})], "TOU registers exceed"),
    ],
)  # fmt: skip
def test_register_errors(readings: list[RegisterReading], message: str) -> None:
    with pytest.raises(RatingError, match=message):
        intervals_from_registers(readings)


def test_rating_errors() -> None:
    tariff = single_price()
    start = datetime(2024, 1, 1)
    with pytest.raises(RatingError, match="ends before it starts"):
        rate(tariff=tariff, intervals=[Interval(start, start, Decimal(1))])
    with pytest.raises(RatingError, match="negative quantity"):
        rate(tariff=tariff, intervals=[Interval(start, start + timedelta(hours=1), Decimal(-1))])
    accumulator = RatingAccumulator(tariff=tariff)
    accumulator.add(hourly(start, [1, 1]))
    with pytest.raises(RatingError, match="overlaps or precedes"):
        accumulator.add(hourly(start, [1]))
    with pytest.raises(RatingError, match="which the tariff does not have"):
        rate(
            tariff=tariff,
            intervals=[Interval(start, start + timedelta(hours=1), Decimal(1), period="peak")],
        )
    capacity = single_price(basic={"method": "capacity", "price": "20"})
    with pytest.raises(RatingError, match="no capacity_kva"):
        rate(tariff=capacity, intervals=hourly(start, [1]))
    tiered = parse_tariff(
        simple_document(
            energy={
                "periods": [{"name": "a", "price": "1"}],
                "tiers": {
                    "cumulation": "month",
                    "steps": [{"up_to": "5", "increment": "0"}, {"up_to": None, "increment": "1"}],
                },
            }
        )
    )
    with pytest.raises(RatingError, match="the account gives 2 tier thresholds; the tariff has 1"):
        rate(
            tariff=tiered,
            intervals=hourly(start, [1]),
            account=AccountTerms(tier_thresholds=(Decimal(1), Decimal(2))),
        )
    explicit = rate(
        tariff=tiered,
        intervals=hourly(start, [3]),
        account=AccountTerms(tier_thresholds=(Decimal(2),)),
    )
    assert [(line.label, line.quantity) for line in explicit.lines] == [
        ("a tier 1", 2),
        ("a tier 2", 1),
    ]
    per_area = single_price(custom_items=[{"name": "fee", "amount": "2", "basis": "per_area"}])
    with pytest.raises(RatingError, match="room area is unknown"):
        rate(tariff=per_area, intervals=hourly(start, [1]))


def test_accumulator_state_round_trip_and_checks() -> None:
    tariff = fixture_tariff("cn_two_part_demand_pf.json")
    account = AccountTerms(contract_demand_kw=Decimal(100))
    accumulator = RatingAccumulator(tariff=tariff, account=account)
    accumulator.add(hourly(datetime(2024, 1, 31, 20), [5, 6, 7, 8, 9], kvarh=[1, 2, 3, 4, 5]))
    state = json.loads(json.dumps(accumulator.to_state()))
    restored = RatingAccumulator.from_state(tariff=tariff, account=account, state=state)
    assert restored.lines() == accumulator.lines()
    assert restored.to_state() == state
    restored.drop_months_before("2024-02")
    assert restored.months == ["2024-02"]
    assert RatingAccumulator.from_state(tariff=tariff, state=None).lines() == []
    with pytest.raises(RatingError, match="not 'cn-large"):
        RatingAccumulator.from_state(tariff=tariff, state={**state, "tariff_id": "other"})
    with pytest.raises(RatingError, match="unknown accumulator state format"):
        RatingAccumulator.from_state(tariff=tariff, state={**state, "format": 99})
    with pytest.raises(RatingError, match="malformed accumulator state"):
        RatingAccumulator.from_state(tariff=tariff, state={"format": 1, "tariff_id": tariff.id})


def test_piecewise_rating_over_a_version_change_and_rerating() -> None:
    tariff = fixture_tariff("apartment_rent.json")
    account = AccountTerms(room_area_m2=Decimal(40), move_in=date(2024, 6, 21))
    intervals = hourly(datetime(2024, 6, 30, 22), [1, 2, 3, 4])  # 2 hours in June, 2 in July
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    rows = [
        (line.month, line.label, line.quantity, line.unit_price, line.amount) for line in bill.lines
    ]
    june_share = Decimal(10) / Decimal(30)  # June 21-30 of 30 days
    quarter_share = Decimal(10) / Decimal(91)  # 10 of the 91 days of April-June
    assert rows == [
        ("2024-06", "flat", 3, Decimal("1.000000"), Decimal("3.00")),
        ("2024-06", "rent", 1, Decimal("3100.000000"), Decimal("1033.33")),  # 3100 x 10/30
        ("2024-06", "property fee", 40, Decimal("3.500000"), Decimal("46.67")),  # 40 x 3.5 x 1/3
        ("2024-06", "service fee", 1, Decimal("910.000000"), Decimal("100.00")),  # 910 x 10/91
        ("2024-06", "move-in cleaning", 1, Decimal("200.000000"), Decimal("200.00")),
        ("2024-07", "flat", 7, Decimal("1.100000"), Decimal("7.70")),  # new version: 1.10
        ("2024-07", "rent", 1, Decimal("3255.000000"), Decimal("3255.00")),
        ("2024-07", "property fee", 40, Decimal("3.500000"), Decimal("140.00")),
        (
            "2024-07",
            "service fee",
            1,
            Decimal("910.000000"),
            Decimal("910.00"),
        ),  # Q3 billed in July
    ]
    assert bill.lines[1].proration == june_share and bill.lines[3].proration == quarter_share
    corrected = parse_tariff(
        json.loads(
            json.dumps(simple_document(energy={"periods": [{"name": "flat", "price": "1.05"}]}))
        )
    )
    result = rerate(original=single_price("1.00"), corrected=corrected, intervals=intervals)
    # June 3 kWh x 0.05 = 0.15; July 7 kWh x 0.05 = 0.35
    assert [(line.month, line.amount) for line in result.difference] == [
        ("2024-06", Decimal("0.15")),
        ("2024-07", Decimal("0.35")),
    ]
    assert result.total == Decimal(
        "0.50"
    ) and result.corrected.total - result.original.total == Decimal("0.50")
    assert rerate(original=corrected, corrected=corrected, intervals=intervals).difference == ()


def test_fixed_and_basic_charges_pro_rate_on_move_out_and_version_change() -> None:
    document = simple_document(
        energy={"periods": [{"name": "flat", "price": "0"}]},
        basic={"method": "capacity", "price": "30"},
        fixed_charges=[{"name": "meter", "amount": "31"}],
    )
    later = json.loads(json.dumps(document["versions"][0]))
    later["effective_from"] = "2024-03-11T00:00:00"
    later["fixed_charges"][0]["amount"] = "62"
    document["versions"].append(later)
    tariff = parse_tariff(document)
    account = AccountTerms(capacity_kva=Decimal(100), move_out=date(2024, 3, 20))
    bill = rate(tariff=tariff, intervals=hourly(datetime(2024, 3, 1), [1]), account=account)
    rows = [(line.label, line.proration, line.amount) for line in bill.lines if line.amount]
    # March: version 1 for days 1-10 (10/31), version 2 for 11-20 (10/31), moved out after the 20th.
    assert rows == [
        ("capacity", Decimal(10) / 31, Decimal("967.74")),  # 100 x 30 x 10/31
        ("meter", Decimal(10) / 31, Decimal("10.00")),  # 31 x 10/31
        ("capacity", Decimal(10) / 31, Decimal("967.74")),
        ("meter", Decimal(10) / 31, Decimal("20.00")),  # 62 x 10/31
    ]


def test_utility_demand_and_water_lines() -> None:
    demand = parse_tariff(simple_document(
        energy={"periods": [{"name": "flat", "price": "0.1"}]},
        demand={
            "periods": [{"name": "on", "tiers": [{"up_to": "10", "price": "5"}, {"up_to": None, "price": "6"}]}],
            "flat": [{"months": "1-12", "tiers": [{"up_to": None, "price": "2"}]}],
        },
    ))  # fmt: skip
    start = datetime(2024, 1, 1)
    intervals = [
        Interval(start, start + timedelta(minutes=15), Decimal(3)),
        Interval(
            start + timedelta(hours=1), start + timedelta(hours=2), Decimal(1), kw=Decimal(14)
        ),
    ]
    lines = [
        (line.label, line.quantity, line.amount)
        for line in rate(tariff=demand, intervals=intervals).lines
    ]
    assert lines == [
        ("flat", 4, Decimal("0.40")),
        ("flat demand", 14, Decimal("28.00")),  # meter-reported 14 kW beats 3 kWh / 0.25 h = 12 kW
        ("on demand tier 1", 10, Decimal("50.00")),
        ("on demand tier 2", 4, Decimal("24.00")),
    ]
    water = fixture_tariff("water_stepped.json")
    water_bill = rate(tariff=water, intervals=hourly(datetime(2024, 5, 1), ["150", "50", "70"]))
    assert [(line.label, line.quantity, line.amount) for line in water_bill.lines] == [
        ("water tier 1", 180, Decimal("655.20")),  # 180 x 3.64
        ("water tier 2", 80, Decimal("451.20")),  # 80 x 5.64
        ("water tier 3", 10, Decimal("76.40")),  # 10 x 7.64
        ("sewage", 270, Decimal("367.20")),  # 270 x 1.36
        ("meter rent", 1, Decimal("2.00")),
    ]


def test_custom_item_proration_rules() -> None:
    rent = CustomItem("rent", Decimal(3000))
    yearly = CustomItem("insurance", Decimal(366), frequency="yearly")
    fixed_price = CustomItem("fee", Decimal(50), prorate=False)
    once = CustomItem("key", Decimal(20), frequency="one_time")
    # Move out on 15 Feb 2024: 15 of 29 days billed.
    charge = custom_item_charge(item=rent, month="2024-02", move_out=date(2024, 2, 15))
    assert charge is not None and charge.proration == Decimal(15) / Decimal(29)
    assert custom_item_charge(item=rent, month="2024-03", move_out=date(2024, 2, 15)) is None
    assert custom_item_charge(item=rent, month="2024-01", move_in=date(2024, 2, 1)) is None
    yearly_charge = custom_item_charge(item=yearly, month="2024-12", move_in=date(2024, 12, 1))
    assert yearly_charge is not None and yearly_charge.proration == Decimal(31) / Decimal(366)
    assert custom_item_charge(item=yearly, month="2024-02") is None  # billed in January
    unprorated = custom_item_charge(item=fixed_price, month="2024-02", move_in=date(2024, 2, 20))
    assert unprorated is not None and unprorated.proration == 1
    assert custom_item_charge(item=once, month="2024-05", first_rated_month="2024-05") is not None
    assert custom_item_charge(item=once, month="2024-06", first_rated_month="2024-05") is None
    assert (
        overlap_share(
            cycle_start=datetime(2024, 1, 1),
            cycle_end=datetime(2024, 2, 1),
            part_start=datetime(2024, 1, 16),
            part_end=None,
        )
        == Decimal(16) / 31
    )
    quarterly = custom_item_charge(
        item=CustomItem("q", Decimal(90), frequency="quarterly"), month="2024-10"
    )
    assert quarterly is not None and quarterly.unit == "quarter" and quarterly.proration == 1


def test_tariff_starting_after_data_and_zero_usage_months() -> None:
    tariff = single_price(fixed_charges=[{"name": "meter", "amount": "5"}])
    with pytest.raises(RatingError, match="before the tariff's first version"):
        rate(tariff=tariff, intervals=hourly(datetime(2023, 12, 31, 23), [1]))
    bill = rate(
        tariff=tariff,
        intervals=hourly(datetime(2024, 2, 1), [0]),
        account=AccountTerms(move_in=date(2024, 3, 1)),
    )
    assert bill.lines == ()
