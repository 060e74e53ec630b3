"""Hand-checked Chinese tariffs; the arithmetic is in the comments next to each expectation."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from meterpay.core.tariffs import AccountTerms, Interval, rate

from .helpers import fixture_tariff


def _interval(start: datetime, minutes: int, kwh: str, kvarh: str | None = None) -> Interval:
    return Interval(
        start=start,
        end=start + timedelta(minutes=minutes),
        quantity=Decimal(kwh),
        kvarh=None if kvarh is None else Decimal(kvarh),
    )


def _summary(bill_lines: object) -> list[tuple[str, str, str, str]]:
    """(label, quantity, unit price, amount); quantities compare by value, e.g. 40.0 == 40."""
    return [
        (
            line.label,
            str(
                line.quantity.quantize(Decimal(1))
                if line.quantity == line.quantity.to_integral()
                else line.quantity
            ),
            str(line.unit_price),
            str(line.amount),
        )
        for line in bill_lines  # type: ignore[attr-defined]
    ]


def test_residential_annual_tiers_with_tou() -> None:
    tariff = fixture_tariff("cn_residential_annual_tou.json")
    # 2700 kWh used January-November; annual steps 2760 / 4800 kWh; increments 0, 0.05, 0.30.
    account = AccountTerms(tier_usage_carried_in=Decimal(2700))
    day = datetime(2024, 12, 2)
    intervals = [
        _interval(day.replace(hour=6), 60, "40"),  # valley, 2700→2740: tier 1
        _interval(day.replace(hour=7), 60, "40"),  # valley, 20 in tier 1 (→2760), 20 in tier 2
        _interval(day.replace(hour=8), 60, "50"),  # peak, tier 2 (→2830)
        _interval(day.replace(hour=22), 60, "2000"),  # valley, 1970 tier 2 (→4800), 30 tier 3
        _interval(day.replace(day=3, hour=9), 60, "10"),  # peak, tier 3
    ]
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    assert _summary(bill.lines) == [
        ("peak tier 2", "50", "0.618300", "30.92"),  # 50 x (0.5683+0.05) = 30.915 → 30.92
        ("peak tier 3", "10", "0.868300", "8.68"),  # 10 x (0.5683+0.30) = 8.683
        ("valley tier 1", "60", "0.288300", "17.30"),  # 60 x 0.2883 = 17.298
        ("valley tier 2", "1990", "0.338300", "673.22"),  # 1990 x 0.3383 = 673.217
        ("valley tier 3", "30", "0.588300", "17.65"),  # 30 x 0.5883 = 17.649
    ]
    assert bill.total == Decimal("747.77")  # 30.92 + 8.68 + 17.30 + 673.22 + 17.65


def test_residential_tiers_reset_with_the_year_and_scale_per_household() -> None:
    tariff = fixture_tariff("cn_residential_annual_tou.json")
    # A large household gets thresholds x 1.5: 4140 and 7200 kWh.
    account = AccountTerms(tier_threshold_scale=Decimal("1.5"), tier_usage_carried_in=Decimal(4100))
    intervals = [
        _interval(datetime(2024, 12, 31, 23), 60, "100"),  # valley: 40 tier 1 (→4140), 60 tier 2
        _interval(datetime(2025, 1, 1, 23), 60, "100"),  # new tier year: all tier 1
    ]
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    assert _summary(bill.lines) == [
        ("valley tier 1", "40", "0.288300", "11.53"),  # 40 x 0.2883 = 11.532
        ("valley tier 2", "60", "0.338300", "20.30"),  # 60 x 0.3383 = 20.298
        ("valley tier 1", "100", "0.288300", "28.83"),
    ]
    assert [line.month for line in bill.lines] == ["2024-12", "2024-12", "2025-01"]


def test_commercial_tou_with_critical_peak_holiday_and_minimum() -> None:
    tariff = fixture_tariff("cn_commercial_tou_cpp.json")
    account = AccountTerms(holidays=frozenset({date(2024, 7, 2)}))
    monday = datetime(2024, 7, 1)
    holiday = datetime(2024, 7, 2)
    intervals = [
        _interval(monday.replace(hour=7), 60, "100"),  # valley 00-08
        _interval(monday.replace(hour=9), 60, "100"),  # peak 08-11
        _interval(monday.replace(hour=12), 60, "100"),  # flat (no window)
        _interval(monday.replace(hour=19), 60, "100"),  # July critical peak 19-21 → sharp
        _interval(monday.replace(hour=21), 60, "100"),  # peak 18-23
        _interval(holiday.replace(hour=3), 60, "100"),  # holiday rule: deep valley 00-08
        _interval(holiday.replace(hour=19), 60, "100"),  # holiday: no critical peak → flat
        _interval(datetime(2024, 8, 1, 12), 60, "10"),  # August: one small reading
    ]
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    july = [line for line in bill.lines if line.month == "2024-07"]
    assert _summary(july) == [
        ("flat", "200", "0.650800", "130.16"),  # 200 x 0.6508
        ("sharp", "100", "1.301500", "130.15"),  # 100 x 1.3015
        ("peak", "200", "1.084600", "216.92"),  # 200 x 1.0846
        ("valley", "100", "0.260300", "26.03"),  # 100 x 0.2603
        ("deep_valley", "100", "0.195200", "19.52"),  # 100 x 0.1952
        ("meter service", "1", "10.000000", "10.00"),
    ]
    months = {summary.month: summary for summary in bill.months()}
    assert months["2024-07"].total == Decimal("532.78")  # 522.78 energy + 10 fixed ≥ 50 minimum
    august = [line for line in bill.lines if line.month == "2024-08"]
    # 10 x 0.6508 = 6.508 → 6.51; + 10.00 fixed = 16.51 < 50.00 → shortfall 33.49
    assert _summary(august)[-1] == ("minimum charge shortfall", "1", "33.490000", "33.49")
    assert months["2024-08"].total == Decimal("50.00")
    assert months["2024-08"].minimum == Decimal("33.49")


def test_two_part_demand_overrun_and_power_factor() -> None:
    tariff = fixture_tariff("cn_two_part_demand_pf.json")
    account = AccountTerms(contract_demand_kw=Decimal(500))
    intervals = [
        # 15-minute kWh → kW = kWh / 0.25 h
        _interval(datetime(2024, 3, 4, 9), 15, "150", "93"),  # peak, 600 kW
        _interval(datetime(2024, 3, 5, 14), 15, "100", "62"),  # flat, 400 kW
        _interval(datetime(2024, 3, 6, 2), 15, "50", "31"),  # valley (23:00-07:00), 200 kW
    ]
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    assert _summary(bill.lines) == [
        ("flat", "100", "0.600000", "60.00"),
        ("peak", "150", "0.900000", "135.00"),
        ("valley", "50", "0.300000", "15.00"),
        # Max demand 600 kW; contract 500 x 1.05 = 525 kW billed at 38
        ("max demand", "525", "38.000000", "19950.00"),
        # 75 kW above 525 at 38 x 2 = 76 → 5700
        ("max demand overrun", "75", "76.000000", "5700.00"),
        # PF = 300 / sqrt(300² + 186²) = 300 / 352.98 = 0.8499 → 0.85: 5 hundredths under
        # 0.90 → +0.5 % x 5 = +2.5 % of (210 energy + 25650 basic) = 646.50
        ("power factor 0.85 against 0.90", "25860", "0.025000", "646.50"),
    ]
    assert bill.total == Decimal("26506.50")


def test_two_part_minimum_billed_demand_and_good_power_factor() -> None:
    tariff = fixture_tariff("cn_two_part_demand_pf.json")
    account = AccountTerms(contract_demand_kw=Decimal(500))
    # 100 kW max demand is under 40 % of 500 kW, so 200 kW is billed: 200 x 38 = 7600.
    # PF = 25 / sqrt(25² + 5²) = 0.9806 → 0.98 → reduction capped at 0.75 %.
    intervals = [_interval(datetime(2024, 4, 1, 14), 15, "25", "5")]
    bill = rate(tariff=tariff, intervals=intervals, account=account)
    assert _summary(bill.lines) == [
        ("flat", "25", "0.600000", "15.00"),
        ("max demand", "200", "38.000000", "7600.00"),
        # -0.75 % x 7615.00 = -57.1125 → -57.11
        ("power factor 0.98 against 0.90", "7615", "-0.007500", "-57.11"),
    ]
