"""Month-on-month and year-on-year: the spans compared and the difference and percentage."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal


def percent_of(difference: int, previous: int) -> Decimal | None:
    """``difference`` as a percentage of ``previous`` (of its size), one decimal, half-up,
    in integers (None when ``previous`` is 0)."""
    if previous == 0:
        return None
    tenths = (2 * abs(difference) * 1000 + abs(previous)) // (2 * abs(previous))
    return Decimal(tenths if difference >= 0 else -tenths).scaleb(-1)


@dataclass(frozen=True, slots=True)
class Change:
    """An amount (integer minor units) against the one before: the difference, and the
    percentage of the previous amount's size (one decimal, half-up); neither when there is
    nothing to compare with (no previous figure; no percentage of a previous 0)."""

    current: int
    previous: int | None

    @property
    def difference(self) -> int | None:
        return None if self.previous is None else self.current - self.previous

    @property
    def percent(self) -> Decimal | None:
        if self.previous is None:
            return None
        return percent_of(self.current - self.previous, self.previous)


@dataclass(frozen=True, slots=True)
class QuantityChange:
    """The same for a quantity held as an integer of 1/10000 kWh or m³ (exact); its values
    are Decimals with four places, worked out when read."""

    current_units: int
    previous_units: int | None

    @property
    def current(self) -> Decimal:
        return Decimal(self.current_units).scaleb(-4)

    @property
    def previous(self) -> Decimal | None:
        return None if self.previous_units is None else Decimal(self.previous_units).scaleb(-4)

    @property
    def difference(self) -> Decimal | None:
        if self.previous_units is None:
            return None
        return Decimal(self.current_units - self.previous_units).scaleb(-4)

    @property
    def percent(self) -> Decimal | None:
        if self.previous_units is None:
            return None
        return percent_of(self.current_units - self.previous_units, self.previous_units)


def shift_months(day: date, months: int) -> date:
    """The same day ``months`` later (earlier if negative), on the month's last day when the
    month is shorter (31 March - 1 month = 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def whole_months(start: date, end: date) -> int | None:
    """How many whole months ``[start, end)`` is, if it starts and ends on a 1st; else None."""
    if start.day != 1 or end.day != 1 or end <= start:
        return None
    return (end.year - start.year) * 12 + end.month - start.month


def previous_span(start: date, end: date) -> tuple[date, date]:
    """The span just before ``[start, end)`` of the same length: as many months before for
    whole months (month on month), else as many days before."""
    months = whole_months(start, end)
    if months is not None:
        return shift_months(start, -months), start
    return start - (end - start), start


def year_before(start: date, end: date) -> tuple[date, date]:
    """The same span a year earlier (year on year)."""
    return shift_months(start, -12), shift_months(end, -12)


def split_span(start: date, end: date) -> tuple[list[date], list[tuple[date, date]]]:
    """``[start, end)`` as the whole months it holds (their 1sts) and the loose day ranges
    around them (``[from, to)``), so a report reads monthly buckets where it can."""
    months: list[date] = []
    loose: list[tuple[date, date]] = []
    first = start if start.day == 1 else shift_months(start.replace(day=1), 1)
    if first >= end:
        return [], [(start, end)] if start < end else []
    if start < first:
        loose.append((start, first))
    month = first
    while shift_months(month, 1) <= end:
        months.append(month)
        month = shift_months(month, 1)
    if month < end:
        loose.append((month, end))
    return months, loose


def days(start: date, end: date) -> list[date]:
    """Every day of ``[start, end)``."""
    return [start + timedelta(days=n) for n in range((end - start).days)]
