"""Month on month and year on year: spans and percentages."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterpay.core.reports.compare import (
    Change,
    QuantityChange,
    days,
    percent_of,
    previous_span,
    shift_months,
    split_span,
    whole_months,
    year_before,
)


def test_changes() -> None:
    assert QuantityChange(1205000, 1000000).percent == Decimal("20.5")
    assert QuantityChange(12345, 10000).difference == Decimal("0.2345")
    assert QuantityChange(12345, 10000).current == Decimal("1.2345")
    assert Change(150, 200).difference == -50 and Change(150, 200).percent == Decimal("-25.0")
    assert Change(5, 0).percent is None and Change(5, 0).difference == 5
    assert Change(1, None).difference is None and QuantityChange(1, None).previous is None
    assert Change(-30, -20).percent == Decimal("-50.0")  # a larger credit is a fall
    assert Change(1, 3).percent == Decimal("-66.7")


@given(current=st.integers(-(10**12), 10**12), previous=st.integers(-(10**12), 10**12))
def test_integer_percentages_round_half_up_like_decimals(current: int, previous: int) -> None:
    exact = None
    if previous:
        exact = ((Decimal(current) - previous) * 100 / abs(Decimal(previous))).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )
    assert percent_of(current - previous, previous) == exact
    assert Change(current, previous).percent == QuantityChange(current, previous).percent == exact


def test_spans() -> None:
    assert previous_span(date(2026, 3, 1), date(2026, 4, 1)) == (date(2026, 2, 1), date(2026, 3, 1))
    assert previous_span(date(2026, 1, 1), date(2026, 4, 1)) == (
        date(2025, 10, 1),
        date(2026, 1, 1),
    )
    assert previous_span(date(2026, 3, 10), date(2026, 3, 17)) == (
        date(2026, 3, 3),
        date(2026, 3, 10),
    )
    assert year_before(date(2024, 2, 29), date(2024, 3, 1)) == (date(2023, 2, 28), date(2023, 3, 1))
    assert shift_months(date(2026, 3, 31), -1) == date(2026, 2, 28)
    assert whole_months(date(2026, 1, 1), date(2027, 1, 1)) == 12
    assert whole_months(date(2026, 1, 2), date(2027, 1, 1)) is None
    assert split_span(date(2026, 1, 20), date(2026, 4, 5)) == (
        [date(2026, 2, 1), date(2026, 3, 1)],
        [(date(2026, 1, 20), date(2026, 2, 1)), (date(2026, 4, 1), date(2026, 4, 5))],
    )
    assert split_span(date(2026, 1, 3), date(2026, 1, 9)) == (
        [],
        [(date(2026, 1, 3), date(2026, 1, 9))],
    )


@given(start=st.dates(date(2000, 1, 1), date(2100, 1, 1)), length=st.integers(1, 800))
def test_split_span_covers_every_day_once(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    months, loose = split_span(start, end)
    covered = [d for first, last in loose for d in days(first, last)]
    for month in months:
        covered += days(month, shift_months(month, 1))
    assert sorted(covered) == days(start, end)
    assert all(m.day == 1 for m in months)
