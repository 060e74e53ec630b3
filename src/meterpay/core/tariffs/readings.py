"""Turn meter data into :class:`Interval` objects: interval CSV text and register readings.

Interval CSV layout (UTF-8, comma separated, one header row)::

    timestamp,kwh[,kvarh][,kw]
    2024-01-01T00:00,1.25,0.40,5.2

``timestamp`` is the interval start in local time (ISO 8601, no UTC offset). The interval
length (15, 30 or 60 minutes) is the smallest gap between consecutive timestamps; every gap
must be a whole multiple of it (missing intervals are allowed, duplicates and disorder are
not). A file of a single row is taken as hourly.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from meterpay.core.tariffs.errors import RatingError, ReadingsError
from meterpay.core.tariffs.model import Interval

ALLOWED_STEPS_MINUTES = (15, 30, 60)
_REQUIRED_COLUMNS = ("timestamp", "kwh")
_OPTIONAL_COLUMNS = ("kvarh", "kw")


def _number(text: str, column: str, row: int, *, optional: bool) -> Decimal | None:
    stripped = text.strip()
    if not stripped and optional:
        return None
    try:
        value = Decimal(stripped)
    except InvalidOperation:
        raise ReadingsError(row, f"{column}: {stripped!r} is not a decimal number") from None
    if not value.is_finite():
        raise ReadingsError(row, f"{column}: {stripped!r} is not a decimal number")
    if value < 0:
        raise ReadingsError(row, f"{column}: must not be negative")
    return value


def parse_interval_csv(text: str) -> list[Interval]:
    """Parse interval CSV text (layout in the module docstring) into intervals."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise ReadingsError(1, "the file is empty") from None
    for column in _REQUIRED_COLUMNS:
        if column not in header:
            raise ReadingsError(1, f"header must contain {column!r}")
    for column in header:
        if column not in _REQUIRED_COLUMNS + _OPTIONAL_COLUMNS:
            raise ReadingsError(1, f"unknown column {column!r}")
    if len(set(header)) != len(header):
        raise ReadingsError(1, "a column is repeated")
    index = {column: position for position, column in enumerate(header)}
    rows: list[tuple[int, datetime, Decimal, Decimal | None, Decimal | None]] = []
    for row_number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise ReadingsError(row_number, f"expected {len(header)} columns, got {len(cells)}")
        stamp_text = cells[index["timestamp"]].strip()
        try:
            stamp = datetime.fromisoformat(stamp_text)
        except ValueError:
            raise ReadingsError(row_number, f"timestamp: {stamp_text!r} is not ISO 8601") from None
        if stamp.tzinfo is not None:
            raise ReadingsError(row_number, "timestamp: must be local time without a UTC offset")
        kwh = _number(cells[index["kwh"]], "kwh", row_number, optional=False)
        assert kwh is not None
        kvarh = (
            _number(cells[index["kvarh"]], "kvarh", row_number, optional=True)
            if "kvarh" in index
            else None
        )
        kw = _number(cells[index["kw"]], "kw", row_number, optional=True) if "kw" in index else None
        if rows and stamp <= rows[-1][1]:
            raise ReadingsError(row_number, "timestamp: not later than the previous row")
        rows.append((row_number, stamp, kwh, kvarh, kw))
    if not rows:
        raise ReadingsError(2, "no readings")
    step = detect_step(
        [stamp for _, stamp, *_ in rows], row_numbers=[number for number, *_ in rows]
    )
    return [
        Interval(start=stamp, end=stamp + step, quantity=kwh, kvarh=kvarh, kw=kw)
        for _, stamp, kwh, kvarh, kw in rows
    ]


def detect_step(starts: Sequence[datetime], *, row_numbers: Sequence[int]) -> timedelta:
    """The interval length of ordered interval starts (see the module docstring)."""
    if len(starts) < 2:
        return timedelta(hours=1)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    step = min(gaps)
    if step not in {timedelta(minutes=m) for m in ALLOWED_STEPS_MINUTES}:
        position = gaps.index(step) + 1
        raise ReadingsError(
            row_numbers[position],
            f"interval length {int(step.total_seconds() // 60)} min is not 15, 30 or 60",
        )
    for position, gap in enumerate(gaps, start=1):
        if gap % step:
            raise ReadingsError(row_numbers[position], f"timestamp: not on the {step} grid")
    return step


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """Cumulative register values at ``timestamp``; ``tou`` holds meter TOU registers by period."""

    timestamp: datetime
    kwh: Decimal
    kvarh: Decimal | None = None
    tou: Mapping[str, Decimal] = field(default_factory=dict)


def intervals_from_registers(readings: Sequence[RegisterReading]) -> list[Interval]:
    """Consecutive register readings to intervals.

    With meter TOU registers, each register's advance becomes an interval forced to that
    period (all sharing the same span); any part of the total advance that the TOU registers
    do not account for is an unforced interval priced by the tariff's schedule. Register
    advances must not be negative (meter replacement or rollover is handled upstream).
    """
    intervals: list[Interval] = []
    for earlier, later in itertools.pairwise(readings):
        if later.timestamp <= earlier.timestamp:
            raise RatingError(
                f"register reading at {later.timestamp} is not after {earlier.timestamp}"
            )
        advance = later.kwh - earlier.kwh
        if advance < 0:
            raise RatingError(f"kWh register went backwards at {later.timestamp}")
        reactive = None
        if later.kvarh is not None and earlier.kvarh is not None:
            reactive = later.kvarh - earlier.kvarh
            if reactive < 0:
                raise RatingError(f"kvarh register went backwards at {later.timestamp}")
        span_intervals: list[Interval] = []
        accounted = Decimal(0)
        for period in sorted(later.tou):
            if period not in earlier.tou:
                raise RatingError(f"TOU register {period!r} missing at {earlier.timestamp}")
            period_advance = later.tou[period] - earlier.tou[period]
            if period_advance < 0:
                raise RatingError(f"TOU register {period!r} went backwards at {later.timestamp}")
            accounted += period_advance
            span_intervals.append(
                Interval(earlier.timestamp, later.timestamp, period_advance, period=period)
            )
        if accounted > advance:
            raise RatingError(f"TOU registers exceed the total register at {later.timestamp}")
        if accounted < advance or not span_intervals:
            span_intervals.append(Interval(earlier.timestamp, later.timestamp, advance - accounted))
        first = span_intervals[0]
        span_intervals[0] = Interval(
            first.start, first.end, first.quantity, reactive, None, first.period
        )
        intervals.extend(span_intervals)
    return intervals
