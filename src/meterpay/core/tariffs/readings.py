"""Turn meter data into :class:`Interval` objects: readings CSV text and register readings.

Readings CSV (UTF-8, comma separated, one header row, column names case-insensitive), in
one of three layouts (details and examples in docs/tariffs.md):

* interval starts: ``timestamp,kwh[,kvarh][,kw]``. ``timestamp`` is the interval start in
  local time (ISO 8601, no UTC offset). The interval length is the smallest gap between
  consecutive timestamps: 15, 30 or 60 minutes or a day, and every gap must be a whole
  multiple of it (missing intervals are allowed, duplicates and disorder are not); or a
  month, when every timestamp is the 1st of a month at 00:00 (each interval then ends at
  the start of the next month). A file of a single row is taken as hourly.
* explicit intervals: ``start,end,kwh[,kvarh][,kw]``, any lengths, in time order, without
  overlap (gaps are allowed).
* cumulative registers: ``timestamp,register_kwh[,register_kvarh][,register_<period>...]``
  at any times; each pair of consecutive rows is an interval (the registers' advance).

The quantity column is ``kwh`` for electricity, or ``m3`` / ``volume_m3`` for water
(``register_m3`` for water registers); ``kvarh`` and ``kw`` (the interval's maximum demand,
as a meter's demand register reports it) are electricity only. Given the tariff's TOU
period names (``periods``), columns named after them (``sharp,peak,flat,valley``) hold each
period's kWh for the row: each becomes an interval forced to that period
(:attr:`Interval.period`) over the row's span, and ``kwh``, when also given, is the row's
total (a remainder is an interval priced by the tariff's schedule). ``kvarh`` and ``kw`` go
on the row's first interval.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from meterpay.core.tariffs.errors import RatingError, ReadingsError
from meterpay.core.tariffs.model import Interval

Unit = Literal["kWh", "m3"]
Layout = Literal["intervals", "spans", "registers"]
Step = timedelta | Literal["month"]

ALLOWED_STEPS_MINUTES = (15, 30, 60)
DAY = timedelta(days=1)
MONTH: Literal["month"] = "month"
QUANTITY_COLUMNS: Mapping[str, Unit] = {"kwh": "kWh", "m3": "m3", "volume_m3": "m3"}
REGISTER_COLUMNS: Mapping[str, Unit] = {"register_kwh": "kWh", "register_m3": "m3"}
_ELECTRICITY_COLUMNS = ("kvarh", "kw", "register_kvarh")
_RESERVED = frozenset(
    ("timestamp", "start", "end", *QUANTITY_COLUMNS, *REGISTER_COLUMNS, *_ELECTRICITY_COLUMNS)
)
_REGISTER_PREFIX = "register_"
_MIDNIGHT = time(0)


@dataclass(frozen=True, slots=True)
class Readings:
    """Parsed readings: ``intervals`` in time order and the CSV row of each in ``rows``.

    ``unit`` is ``kWh`` (electricity) or ``m3`` (water); ``step`` describes the interval
    length (``15 min``, ``1 day``, ``1 month``, ``as given``, ``between readings``);
    ``quantity_column`` is the column the unit comes from (empty with period columns only).
    """

    intervals: tuple[Interval, ...]
    rows: tuple[int, ...]
    unit: Unit
    layout: Layout
    step: str
    quantity_column: str = "kwh"
    period_columns: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    start: datetime
    end: datetime | None
    quantity: Decimal | None
    kvarh: Decimal | None
    kw: Decimal | None
    periods: tuple[tuple[str, Decimal | None], ...]


@dataclass(frozen=True, slots=True)
class _Header:
    columns: tuple[str, ...]
    index: Mapping[str, int]
    periods: tuple[str, ...]  # the tariff's spelling of each period column
    register_periods: tuple[str, ...]
    unknown: tuple[str, ...]
    known_periods: tuple[str, ...]

    def refuse_unknown(self) -> None:
        if self.unknown:
            periods = self.known_periods
            hint = f" (the tariff's periods: {', '.join(periods)})" if periods else ""
            raise ReadingsError(1, f"unknown column {self.unknown[0]!r}{hint}")


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


def _moment(text: str, column: str, row: int) -> datetime:
    stripped = text.strip()
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ReadingsError(row, f"{column}: {stripped!r} is not ISO 8601") from None
    if moment.tzinfo is not None:
        raise ReadingsError(row, f"{column}: must be local time without a UTC offset")
    return moment


def _read_header(reader: Iterator[list[str]], periods: Collection[str]) -> _Header:
    try:
        columns = tuple(column.strip().lower() for column in next(reader))
    except StopIteration:
        raise ReadingsError(1, "the file is empty") from None
    names = {name.lower(): name for name in periods if name.lower() not in _RESERVED}
    period_columns: list[str] = []
    register_periods: list[str] = []
    unknown: list[str] = []
    for column in columns:
        if column in _RESERVED:
            continue
        if column in names:
            period_columns.append(names[column])
        elif column.startswith(_REGISTER_PREFIX) and column[len(_REGISTER_PREFIX) :] in names:
            register_periods.append(column)
        else:
            unknown.append(column)
    if len(set(columns)) != len(columns):
        raise ReadingsError(1, "a column is repeated")
    return _Header(
        columns=columns,
        index={column: position for position, column in enumerate(columns)},
        periods=tuple(period_columns),
        register_periods=tuple(register_periods),
        unknown=tuple(unknown),
        known_periods=tuple(periods),
    )


def _data_rows(reader: Iterator[list[str]], width: int) -> list[tuple[int, list[str]]]:
    rows: list[tuple[int, list[str]]] = []
    for row_number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            raise ReadingsError(row_number, f"expected {width} columns, got {len(cells)}")
        rows.append((row_number, cells))
    if not rows:
        raise ReadingsError(2, "no readings")
    return rows


def parse_readings_csv(text: str, *, periods: Collection[str] = ()) -> Readings:
    """Parse a readings CSV (layouts in the module docstring).

    ``periods`` are the tariff's TOU period names, accepted as per-period columns.
    Raises :class:`ReadingsError` naming the row (the header is row 1) and the problem.
    """
    reader = csv.reader(io.StringIO(text))
    header = _read_header(reader, periods)
    columns = header.columns
    if header.register_periods or any(
        column in REGISTER_COLUMNS or column == "register_kvarh" for column in columns
    ):
        return _parse_registers(reader, header)
    if "timestamp" in columns and ("start" in columns or "end" in columns):
        raise ReadingsError(1, "give 'timestamp' or 'start' and 'end', not both")
    layout: Layout
    if "start" in columns or "end" in columns:
        for column in ("start", "end"):
            if column not in columns:
                raise ReadingsError(1, f"header must contain {column!r}")
        layout = "spans"
    elif "timestamp" in columns:
        layout = "intervals"
    else:
        raise ReadingsError(1, "header must contain 'timestamp' (or 'start' and 'end')")
    quantity_columns = [column for column in columns if column in QUANTITY_COLUMNS]
    if len(quantity_columns) > 1:
        raise ReadingsError(1, "give only one of 'kwh', 'm3', 'volume_m3'")
    if not quantity_columns and not header.periods:
        raise ReadingsError(1, "header must contain 'kwh' (electricity) or 'm3' (water)")
    header.refuse_unknown()
    quantity_column = quantity_columns[0] if quantity_columns else None
    unit: Unit = QUANTITY_COLUMNS[quantity_column] if quantity_column is not None else "kWh"
    if unit == "m3":
        for column in columns:
            if column in _ELECTRICITY_COLUMNS or column in {p.lower() for p in header.periods}:
                raise ReadingsError(
                    1, f"column {column!r} is for electricity, not with {quantity_column!r}"
                )
    rows = [
        _parse_row(number, cells, header, layout, quantity_column)
        for number, cells in _data_rows(reader, len(columns))
    ]
    for previous, row in itertools.pairwise(rows):
        if layout == "intervals" and row.start <= previous.start:
            raise ReadingsError(row.number, "timestamp: not later than the previous row")
        if layout == "spans" and previous.end is not None and row.start < previous.end:
            raise ReadingsError(row.number, "start: before the end of the previous row")
    step_text = "as given"
    step: Step = timedelta(hours=1)
    if layout == "intervals":
        step = detect_step([row.start for row in rows], row_numbers=[row.number for row in rows])
        step_text = _describe_step(step)
    intervals: list[Interval] = []
    numbers: list[int] = []
    for row in rows:
        end = row.end if row.end is not None else _step_end(row.start, step)
        made = _row_intervals(row, end, quantity_column or "kwh")
        intervals.extend(made)
        numbers.extend([row.number] * len(made))
    return Readings(
        intervals=tuple(intervals),
        rows=tuple(numbers),
        unit=unit,
        layout=layout,
        step=step_text,
        quantity_column=quantity_column or "",
        period_columns=header.periods,
    )


def _parse_row(
    number: int, cells: list[str], header: _Header, layout: Layout, quantity_column: str | None
) -> _Row:
    index = header.index
    end = None
    if layout == "spans":
        start = _moment(cells[index["start"]], "start", number)
        end = _moment(cells[index["end"]], "end", number)
        if end <= start:
            raise ReadingsError(number, "end: not after start")
    else:
        start = _moment(cells[index["timestamp"]], "timestamp", number)
    quantity = None
    if quantity_column is not None:
        quantity = _number(
            cells[index[quantity_column]], quantity_column, number, optional=bool(header.periods)
        )
    optional: dict[str, Decimal | None] = {
        column: _number(cells[index[column]], column, number, optional=True)
        for column in ("kvarh", "kw")
        if column in index
    }
    periods = tuple(
        (name, _number(cells[index[name.lower()]], name, number, optional=True))
        for name in header.periods
    )
    return _Row(number, start, end, quantity, optional.get("kvarh"), optional.get("kw"), periods)


def _row_intervals(row: _Row, end: datetime, quantity_column: str) -> list[Interval]:
    if not row.periods:
        assert row.quantity is not None
        return [Interval(row.start, end, row.quantity, kvarh=row.kvarh, kw=row.kw)]
    made = [
        Interval(row.start, end, value, period=name)
        for name, value in row.periods
        if value is not None
    ]
    forced = sum((interval.quantity for interval in made), Decimal(0))
    rest = Decimal(0)
    if row.quantity is not None:
        if row.quantity < forced:
            raise ReadingsError(
                row.number,
                f"{quantity_column}: {row.quantity} is less than the sum of the period "
                f"columns ({forced})",
            )
        rest = row.quantity - forced
    elif not made:
        raise ReadingsError(row.number, f"no quantity: give {quantity_column!r} or a period")
    if rest > 0 or not made:
        made.append(Interval(row.start, end, rest))
    made[0] = replace(made[0], kvarh=row.kvarh, kw=row.kw)
    return made


def _parse_registers(reader: Iterator[list[str]], header: _Header) -> Readings:
    columns = header.columns
    if "timestamp" not in columns:
        raise ReadingsError(1, "header must contain 'timestamp'")
    totals = [column for column in columns if column in REGISTER_COLUMNS]
    if len(totals) != 1:
        raise ReadingsError(
            1, "register readings need one of 'register_kwh' (electricity) or 'register_m3'"
        )
    header.refuse_unknown()
    total = totals[0]
    allowed = {"timestamp", total, "register_kvarh", *header.register_periods}
    for column in columns:
        if column not in allowed:
            raise ReadingsError(1, f"column {column!r} cannot be combined with register columns")
    unit = REGISTER_COLUMNS[total]
    if unit == "m3":
        for column in ("register_kvarh", *header.register_periods):
            if column in columns:
                raise ReadingsError(1, f"column {column!r} is for electricity, not with {total!r}")
    index = header.index
    readings: list[tuple[int, RegisterReading]] = []
    for number, cells in _data_rows(reader, len(columns)):
        stamp = _moment(cells[index["timestamp"]], "timestamp", number)
        if readings and stamp <= readings[-1][1].timestamp:
            raise ReadingsError(number, "timestamp: not later than the previous row")
        value = _number(cells[index[total]], total, number, optional=False)
        assert value is not None
        kvarh = (
            _number(cells[index["register_kvarh"]], "register_kvarh", number, optional=True)
            if "register_kvarh" in index
            else None
        )
        tou: dict[str, Decimal] = {}
        for column in header.register_periods:
            period_value = _number(cells[index[column]], column, number, optional=True)
            if period_value is not None:
                tou[_period_of(column, header)] = period_value
        readings.append((number, RegisterReading(stamp, value, kvarh, tou)))
    if len(readings) < 2:
        raise ReadingsError(readings[0][0], "register readings need at least two rows")
    intervals: list[Interval] = []
    numbers: list[int] = []
    for (_, earlier), (number, later) in itertools.pairwise(readings):
        try:
            made = intervals_from_registers([earlier, later])
        except RatingError as error:
            raise ReadingsError(number, str(error)) from None
        intervals.extend(made)
        numbers.extend([number] * len(made))
    return Readings(
        intervals=tuple(intervals),
        rows=tuple(numbers),
        unit=unit,
        layout="registers",
        step="between readings",
        quantity_column=total,
        period_columns=tuple(_period_of(column, header) for column in header.register_periods),
    )


def _period_of(register_column: str, header: _Header) -> str:
    """The tariff's spelling of the period of a ``register_<period>`` column."""
    name = register_column[len(_REGISTER_PREFIX) :]
    for period in header.periods:
        if period.lower() == name:
            return period
    return name


def parse_interval_csv(text: str, *, periods: Collection[str] = ()) -> list[Interval]:
    """The intervals of a readings CSV (see :func:`parse_readings_csv`)."""
    return list(parse_readings_csv(text, periods=periods).intervals)


def _month_start(moment: datetime) -> bool:
    return moment.day == 1 and moment.time() == _MIDNIGHT


def _next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return moment.replace(year=moment.year + 1, month=1)
    return moment.replace(month=moment.month + 1)


def _step_end(start: datetime, step: Step) -> datetime:
    return start + step if isinstance(step, timedelta) else _next_month(start)


def _describe_step(step: Step) -> str:
    if step == MONTH:
        return "1 month"
    assert isinstance(step, timedelta)
    if step == DAY:
        return "1 day"
    return f"{int(step.total_seconds() // 60)} min"


def _describe_gap(gap: timedelta) -> str:
    if gap >= DAY and gap % DAY == timedelta(0):
        days = gap // DAY
        return f"{days} day" if days == 1 else f"{days} days"
    if gap % timedelta(minutes=1) == timedelta(0):
        return f"{int(gap.total_seconds() // 60)} min"
    return str(gap)


def detect_step(starts: Sequence[datetime], *, row_numbers: Sequence[int]) -> Step:
    """The interval length of ordered interval starts (see the module docstring).

    A :class:`~datetime.timedelta` (15, 30 or 60 minutes, or a day) or ``"month"``.
    """
    if len(starts) < 2:
        return timedelta(hours=1)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    step = min(gaps)
    if step >= timedelta(days=28):
        for row_number, start in zip(row_numbers, starts, strict=True):
            if not _month_start(start):
                raise ReadingsError(
                    row_number, "timestamp: monthly readings must start on the 1st at 00:00"
                )
        return MONTH
    allowed = {timedelta(minutes=minutes) for minutes in ALLOWED_STEPS_MINUTES} | {DAY}
    if step not in allowed:
        position = gaps.index(step) + 1
        raise ReadingsError(
            row_numbers[position],
            f"interval length {_describe_gap(step)} is not 15, 30 or 60 min, a day or a month",
        )
    for position, gap in enumerate(gaps, start=1):
        if gap % step:
            grid = "daily" if step == DAY else str(step)
            raise ReadingsError(row_numbers[position], f"timestamp: not on the {grid} grid")
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
