"""Edge cases of validation and rating not covered by the larger suites."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from meterpay.core.tariffs import (
    AccountTerms,
    ReadingsError,
    TariffError,
    parse_interval_csv,
    parse_tariff,
    rate,
)
from meterpay.core.tariffs.urdb import tariff_from_urdb

from .helpers import hourly, simple_document


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ({"effective_from": 20240101}, "versions[0].effective_from: must be an ISO date-time string"),
        ({"demand": {"flat": [{"months": [], "tiers": [{"up_to": None, "price": "1"}]}]}}, "versions[0].demand.flat[0].months: must name at least one month"),
        ({"energy": {"periods": [{"name": "a", "price": "1"}], "schedule": [{"months": "1", "windows": [{"start": "ab:cd", "end": "09:00", "period": "a"}]}]}}, 'versions[0].energy.schedule[0].windows[0].start: must be a time "HH:MM"'),
    ],
)  # fmt: skip
def test_more_document_errors(version: dict[str, object], message: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(simple_document(**version))
    assert str(caught.value) == message


def test_month_lists_and_absolute_step_prices() -> None:
    tariff = parse_tariff(
        simple_document(
            energy={
                "periods": [{"name": "a", "price": "0.5"}],
                "schedule": [{"months": [1, 2], "windows": []}],
                "tiers": {"cumulation": "month", "steps": [{"up_to": "2", "price": "0.4"}, {"up_to": None, "price": "0.9"}]},
            }
        )
    )  # fmt: skip
    bill = rate(tariff=tariff, intervals=hourly(datetime(2024, 1, 1), [3]))
    # 2 x 0.4 = 0.80; 1 x 0.9 = 0.90
    assert [(line.label, line.amount) for line in bill.lines] == [
        ("a tier 1", Decimal("0.80")),
        ("a tier 2", Decimal("0.90")),
    ]


def test_custom_items_in_a_month_before_the_first_version_use_the_first_version() -> None:
    tariff = parse_tariff(
        simple_document(
            energy={"periods": [{"name": "a", "price": "1"}]},
            custom_items=[{"name": "rent", "amount": "310"}],
        )
    )
    tariff = replace(
        tariff, versions=(replace(tariff.versions[0], effective_from=datetime(2024, 1, 15)),)
    )
    account = AccountTerms(move_in=date(2023, 12, 1))
    # The tariff starts on 15 January; the rent for January still follows its first version.
    bill = rate(tariff=tariff, intervals=hourly(datetime(2024, 1, 20), [1]), account=account)
    assert [(line.label, line.amount) for line in bill.lines] == [
        ("a", Decimal("1.00")),
        ("rent", Decimal("310.00")),
    ]


def test_negative_readings_and_bad_urdb_numbers() -> None:
    with pytest.raises(ReadingsError, match="kvarh: must not be negative"):
        parse_interval_csv("timestamp,kwh,kvarh\n2024-01-01T00:00,1,-2\n")
    with pytest.raises(TariffError, match=r"energyratestructure\[0\]\[0\]\.rate: must be a number"):
        tariff_from_urdb({"energyratestructure": [[{"rate": True}]]})
    with pytest.raises(TariffError, match=r"energyratestructure\[0\]\[0\]\.adj: must be a number"):
        tariff_from_urdb({"energyratestructure": [[{"rate": 1, "adj": "NaN"}]]})


def test_sub_second_intervals_rate_without_dividing_by_zero() -> None:
    """Two reads less than a second apart (a status read right after a poll) make an interval
    shorter than a second; its demand is its energy over its exact length."""
    from datetime import timedelta

    from meterpay.core.tariffs import Interval, incremental_charge

    tariff = parse_tariff(simple_document(energy={"periods": [{"name": "flat", "price": "0.68"}]}))
    start = datetime(2026, 3, 2, 10, 0, 0)
    intervals = [
        Interval(start=start, end=start + timedelta(milliseconds=200), quantity=Decimal("0.2")),
        Interval(
            start=start + timedelta(milliseconds=200),
            end=start + timedelta(seconds=1, milliseconds=200),
            quantity=Decimal("1.0"),
        ),
    ]
    deduction = incremental_charge(tariff=tariff, new_intervals=intervals)
    whole = incremental_charge(
        tariff=tariff,
        new_intervals=[Interval(start=start, end=intervals[1].end, quantity=Decimal("1.2"))],
    )
    assert deduction.amount == whole.amount == Decimal("0.82")  # 1.2 kWh x 0.68
