"""The energy-efficiency rules: base loads, anomalies and the peak-shaving arithmetic.

Anomalies compare a room with **its own history** (docs/reports.md):

* **night base load jump**: the night base load of a day is its mean load over 00:00-06:00
  (night kWh / 6 h, in kW). The median over the last :data:`RECENT_DAYS` days with data is
  compared with the median over the :data:`HISTORY_DAYS` days before them (at least
  :data:`MIN_HISTORY_DAYS` with data): flagged when it is at least :data:`NIGHT_JUMP_RATIO`
  times the history and at least :data:`NIGHT_JUMP_MIN_KW` kW above it (so a 0.01 kW
  standby doubling is not an alarm).
* **peak share jump**: the share of the kWh used in peak and sharp hours over the recent days
  against the history days: flagged when it rose by at least :data:`PEAK_SHARE_JUMP_POINTS`
  percentage points and the recent days used at least :data:`MIN_RECENT_KWH`.
* **zero consumption**: a meter of an open account whose consumption is zero (or that sent
  nothing) for at least :data:`ZERO_DAYS` days in a row.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from meterpay.core.reports.rollup import UNITS_PER_QUANTITY, from_units
from meterpay.core.reports.tou import SLOTS
from meterpay.core.tariffs.model import Interval

RECENT_DAYS = 7
HISTORY_DAYS = 28
MIN_HISTORY_DAYS = 14
NIGHT_HOURS = 6
NIGHT_JUMP_RATIO = Decimal("1.5")
NIGHT_JUMP_MIN_KW = Decimal("0.2")
PEAK_SHARE_JUMP_POINTS = Decimal(10)
MIN_RECENT_KWH = Decimal(1)
ZERO_DAYS = 3
_KW = Decimal("0.001")
_SHARE = Decimal("0.1")
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DayUsage:
    """A day's kWh in 1/10000 (the roll-ups' units): in all, at night (00:00-06:00) and in
    peak and sharp hours."""

    day: date
    quantity: int
    night: int
    peak: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    """``kind``: ``night_base_jump`` (kW), ``peak_share_jump`` (%), ``zero_consumption``
    (days); ``current`` against ``baseline`` over ``first``..``last``."""

    kind: str
    first: date
    last: date
    current: Decimal
    baseline: Decimal | None = None
    missing_days: int = 0


def _kw(units: Decimal | int, hours: int) -> Decimal:
    """Mean kW of ``units`` (1/10000 kWh) over ``hours``, to the watt."""
    return (Decimal(units) / (hours * UNITS_PER_QUANTITY)).quantize(_KW, rounding=ROUND_HALF_UP)


def night_kw(day: DayUsage) -> Decimal:
    """The day's night base load: mean kW over 00:00-06:00."""
    return _kw(day.night, NIGHT_HOURS)


def night_base_kw(days: Sequence[DayUsage]) -> Decimal | None:
    """The median night base load of the days (None without days)."""
    if not days:
        return None
    middle = statistics.median([day.night for day in days])
    return _kw(Decimal(middle), NIGHT_HOURS)


def weekend_base_kw(days: Sequence[DayUsage]) -> Decimal | None:
    """The mean load on Saturdays and Sundays (kW), None without weekend days."""
    weekend = [day.quantity for day in days if day.day.weekday() >= 5]
    if not weekend:
        return None
    return _kw(sum(weekend), 24 * len(weekend))


def peak_share(days: Sequence[DayUsage]) -> Decimal | None:
    """The percentage of the kWh used in peak and sharp hours (None when nothing was used)."""
    total = sum(day.quantity for day in days)
    if total <= 0:
        return None
    peak = sum(day.peak for day in days)
    return (Decimal(peak) * 100 / total).quantize(_SHARE, rounding=ROUND_HALF_UP)


def split_history(
    days: Sequence[DayUsage], *, until: date
) -> tuple[list[DayUsage], list[DayUsage]]:
    """The history days and the recent days (the last :data:`RECENT_DAYS` before ``until``)."""
    recent_from = until - timedelta(days=RECENT_DAYS)
    history_from = recent_from - timedelta(days=HISTORY_DAYS)
    recent = [d for d in days if recent_from <= d.day < until]
    history = [d for d in days if history_from <= d.day < recent_from]
    return history, recent


def night_base_jump(history: Sequence[DayUsage], recent: Sequence[DayUsage]) -> Anomaly | None:
    if len(history) < MIN_HISTORY_DAYS or not recent:
        return None
    baseline = night_base_kw(history)
    current = night_base_kw(recent)
    assert baseline is not None and current is not None
    if current >= baseline * NIGHT_JUMP_RATIO and current - baseline >= NIGHT_JUMP_MIN_KW:
        return Anomaly(
            "night_base_jump", min(d.day for d in recent), max(d.day for d in recent),
            current, baseline,
        )  # fmt: skip
    return None


def peak_share_jump(history: Sequence[DayUsage], recent: Sequence[DayUsage]) -> Anomaly | None:
    if len(history) < MIN_HISTORY_DAYS or not recent:
        return None
    if sum(d.quantity for d in recent) < MIN_RECENT_KWH * UNITS_PER_QUANTITY:
        return None
    baseline, current = peak_share(history), peak_share(recent)
    if baseline is None or current is None:
        return None
    if current - baseline >= PEAK_SHARE_JUMP_POINTS:
        return Anomaly(
            "peak_share_jump", min(d.day for d in recent), max(d.day for d in recent),
            current, baseline,
        )  # fmt: skip
    return None


def zero_runs(
    usage: Mapping[date, int], *, first: date, last: date, min_days: int = ZERO_DAYS
) -> list[Anomaly]:
    """Runs of at least ``min_days`` days in ``first..last`` with no consumption; a day
    missing from ``usage`` (no data) counts as zero and is counted in ``missing_days``."""
    runs: list[Anomaly] = []
    start: date | None = None
    missing = 0
    day = first
    while day <= last + timedelta(days=1):
        value = usage.get(day) if day <= last else 1
        if value is None or value == 0:
            if start is None:
                start, missing = day, 0
            missing += value is None
        else:
            if start is not None and (day - start).days >= min_days:
                length = Decimal((day - start).days)
                runs.append(
                    Anomaly(
                        "zero_consumption", start, day - timedelta(days=1), length, None, missing
                    )
                )
            start = None
        day += timedelta(days=1)
    return runs


# ---------------------------------------------------------------------------- peak shaving


@dataclass(frozen=True, slots=True)
class HourUsage:
    """An hour's kWh (local naive start) by report column (:data:`SLOTS`), in 1/10000."""

    start: datetime
    periods: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.periods.values())


@dataclass(frozen=True, slots=True)
class Shift:
    hours: tuple[HourUsage, ...]
    moved: int


def shift_to_valley(
    hours: Sequence[HourUsage],
    *,
    fraction: Decimal,
    is_valley: Callable[[datetime], bool],
    moved_from: Sequence[str] = ("sharp", "peak"),
) -> Shift:
    """Move ``fraction`` of each day's peak and sharp kWh to that day's valley hours.

    Each hour gives up ``fraction`` of its peak and sharp kWh (to 0.0001, half-up); a day's
    total is spread evenly over its valley hours (``is_valley`` of each local hour start,
    also hours that used nothing), the 0.0001 left over going to the earliest. A day without
    valley hours moves nothing. The total is unchanged, exactly.
    """
    if not Decimal(0) <= fraction <= 1:
        raise ValueError("the fraction moved must be between 0 and 1")
    by_day: dict[date, list[HourUsage]] = {}
    for hour in hours:
        by_day.setdefault(hour.start.date(), []).append(hour)
    result: dict[datetime, dict[str, int]] = {hour.start: dict(hour.periods) for hour in hours}
    moved_total = 0
    for day, day_hours in by_day.items():
        midnight = datetime(day.year, day.month, day.day)
        valley = [midnight + n * _HOUR for n in range(24) if is_valley(midnight + n * _HOUR)]
        if not valley:
            continue
        moved = 0
        for hour in day_hours:
            figures = result[hour.start]
            for name in moved_from:
                units = figures.get(name, 0)
                if units:
                    part = int((units * fraction).to_integral_value(rounding=ROUND_HALF_UP))
                    figures[name] = units - part
                    moved += part
        share, left = divmod(moved, len(valley))
        for index, start in enumerate(valley):
            figures = result.setdefault(start, {})
            figures["valley"] = figures.get("valley", 0) + share + (1 if index < left else 0)
        moved_total += moved
    shifted = tuple(HourUsage(start, figures) for start, figures in sorted(result.items()))
    return Shift(shifted, moved_total)


def engine_intervals(
    hours: Sequence[HourUsage], *, periods: frozenset[str], since: datetime | None = None
) -> list[Interval]:
    """Hourly usage as the engine's intervals: a named column the tariff has is given as that
    period; the others (``other``, ``untimed``) are left to the tariff's schedule. Hours
    before ``since`` (the tariff's first version) are left out."""
    intervals: list[Interval] = []
    for hour in sorted(hours, key=lambda h: h.start):
        if since is not None and hour.start < since:
            continue
        end = hour.start + _HOUR
        loose = 0
        for name in SLOTS:
            units = hour.periods.get(name, 0)
            if not units:
                continue
            if name in periods:
                intervals.append(Interval(hour.start, end, from_units(units), period=name))
            else:
                loose += units
        if loose:
            intervals.append(Interval(hour.start, end, from_units(loose)))
    return intervals
