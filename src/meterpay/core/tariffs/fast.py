"""Vectorised batch rating in exact integer fixed point (NumPy), identical to :func:`.rate`.

The Decimal engine spends its time per interval (TOU period lookup, tier allocation, peaks)
and very little per bill line (a few dozen a month). This module does the per-interval part
with NumPy on integers and hands the aggregates to the engine's own line code, so the bill is
the engine's bill line by line:

* quantities (and kvarh) are ``int64`` counts of ``10**-scale`` kWh (m³), ``scale`` being the
  largest number of decimals in the data, the tier thresholds and the carried-in usage;
  timestamps are ``int64`` local wall-clock seconds since 1970-01-01T00:00; nothing is float;
* the TOU period of every interval is one gather from a precomputed table
  ``[version, month, day type, minute of day] → period`` painted from the schedule with the
  engine's precedence (critical peak, then the first matching rule, then the default);
* tiers: a running total per cumulation period (month or tier year, across versions) by
  ``cumsum``; the part of an interval in step ``k`` is
  ``min(after, T_k) - min(before, T_k) - (min(after, T_k-1) - min(before, T_k-1))``, which is
  exactly the engine's chronological split, including an interval that straddles a boundary;
* sums per (month, version, period, tier) with ``np.add.at``; peaks with
  ``np.maximum.reduceat`` per interval length (demand = quantity / hours is monotonic in the
  quantity, so the largest quantity gives the engine's peak, then computed in Decimal);
* the aggregates become the engine's :class:`~.engine._MonthUsage` (exact Decimals from the
  integers) and :meth:`RatingAccumulator.bill` prices, prorates and rounds them.

Overflow: every ``int64`` value is bounded before use. Sums are at most ``max(quantity) x
count`` plus the carried-in usage and the largest threshold; the fast path is taken only when
that bound is below ``2**62`` (e.g. a year of 15-minute data at 1e-3 kWh may go up to
1.3e14 kWh per interval). Otherwise, or when NumPy is missing, :func:`rate_fast` uses the
Decimal engine. Intervals with meter-reported ``kw`` or TOU-register ``period``, sub-second
timestamps, more than 18 decimals or decreasing per-account tier thresholds also go to the
Decimal engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from meterpay.core.tariffs.engine import Bill, RatingAccumulator, _MonthUsage, rate
from meterpay.core.tariffs.errors import RatingError
from meterpay.core.tariffs.model import (
    DAY_TYPES,
    MINUTES_PER_DAY,
    AccountTerms,
    Interval,
    Schedule,
    Tariff,
    Tiers,
)

try:
    import numpy as np

    HAVE_NUMPY = True
except ImportError:  # pragma: no cover - the Decimal engine is used instead
    HAVE_NUMPY = False

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_LIMIT = 2**62
_MAX_SCALE = 18
_SECONDS_PER_HOUR = Decimal(3600)
_TABLE_CACHE: dict[int, tuple[Tariff, Any]] = {}
_TABLE_CACHE_SIZE = 32


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else _MAX_SCALE + 1


def _seconds(moment: datetime) -> int:
    return (moment - EPOCH) // _SECOND


def _moment(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class IntervalArrays:
    """Columnar intervals: what storage hands to :func:`rate_arrays`.

    ``start``: local wall-clock seconds since 1970-01-01T00:00 (int64); ``seconds``: each
    interval's length; ``quantity`` (and ``kvarh``): int64 counts of ``10**-scale`` kWh/m³.
    """

    start: Ints
    seconds: Ints
    quantity: Ints
    scale: int
    kvarh: Ints | None = None

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def from_intervals(cls, intervals: Sequence[Interval]) -> IntervalArrays | None:
        """Convert, or ``None`` when the intervals need the Decimal engine (kw, period, ...)."""
        if not HAVE_NUMPY:
            return None
        with_kvarh = sum(1 for interval in intervals if interval.kvarh is not None)
        if with_kvarh not in (0, len(intervals)):
            return None
        scale = 0
        for interval in intervals:
            if interval.kw is not None or interval.period is not None:
                return None
            if interval.start.microsecond or interval.end.microsecond:
                return None
            scale = max(scale, _decimals(interval.quantity))
            if interval.kvarh is not None:
                scale = max(scale, _decimals(interval.kvarh))
        if scale > _MAX_SCALE:
            return None
        starts = [_seconds(interval.start) for interval in intervals]
        lengths = [
            _seconds(interval.end) - s for interval, s in zip(intervals, starts, strict=True)
        ]
        try:
            return cls(
                start=np.array(starts, dtype=np.int64),
                seconds=np.array(lengths, dtype=np.int64),
                quantity=np.array(
                    [int(interval.quantity.scaleb(scale)) for interval in intervals], np.int64
                ),
                scale=scale,
                kvarh=None
                if not with_kvarh
                else np.array(
                    [int(_kvarh(interval).scaleb(scale)) for interval in intervals], np.int64
                ),
            )
        except OverflowError:
            return None

    def to_intervals(self) -> list[Interval]:
        """Back to :class:`Interval` objects (for the Decimal engine)."""
        kvarh = self.kvarh
        return [
            Interval(
                start=_moment(int(start)),
                end=_moment(int(start) + int(length)),
                quantity=Decimal(int(quantity)).scaleb(-self.scale),
                kvarh=None if kvarh is None else Decimal(int(kvarh[index])).scaleb(-self.scale),
            )
            for index, (start, length, quantity) in enumerate(
                zip(self.start, self.seconds, self.quantity, strict=True)
            )
        ]


def supports(tariff: Tariff, account: AccountTerms | None = None) -> str | None:
    """``None`` when :func:`rate_arrays` can rate ``tariff``, else the reason it cannot.

    The data can still send a supported tariff to the Decimal engine (see the module doc).
    """
    if not HAVE_NUMPY:
        return "NumPy is not installed"
    engine = RatingAccumulator(tariff=tariff, account=account)
    for version in tariff.versions:
        tiers = _version_tiers(version)
        if tiers is None:
            continue
        try:
            thresholds = engine._thresholds(tiers)
        except RatingError as error:
            return str(error)
        if any(b <= a for a, b in itertools.pairwise(thresholds)):
            return "tier thresholds that do not increase"
        if any(_decimals(threshold) > _MAX_SCALE for threshold in thresholds):
            return "tier thresholds with more than 18 decimals"
    if _decimals(engine.account.tier_usage_carried_in) > _MAX_SCALE:
        return "carried-in tier usage with more than 18 decimals"
    return None


def _version_tiers(version: Any) -> Tiers | None:
    if version.energy is not None:
        tiers: Tiers | None = version.energy.tiers
        return tiers
    if version.water is not None:
        water_tiers: Tiers | None = version.water.tiers
        return water_tiers
    return None


def rate_fast(
    *, tariff: Tariff, intervals: Iterable[Interval], account: AccountTerms | None = None
) -> Bill:
    """:func:`.rate` through the vectorised path when it applies, else the Decimal engine."""
    ordered = sorted(intervals, key=lambda interval: interval.start)
    if supports(tariff, account) is None:
        arrays = IntervalArrays.from_intervals(ordered)
        if arrays is not None:
            bill = rate_arrays(tariff=tariff, arrays=arrays, account=account)
            if bill is not None:
                return bill
    return rate(tariff=tariff, intervals=ordered, account=account)


# ---------------------------------------------------------------------- period tables


def _paint(schedule: Schedule, names: dict[str, int]) -> Any:
    """``[month - 1, day type, minute] → period index`` with ``Schedule.period_at``'s rules."""
    table = np.empty((12, len(DAY_TYPES), MINUTES_PER_DAY), dtype=np.int16)
    for month in range(1, 13):
        for day_index, day_type in enumerate(DAY_TYPES):
            row = table[month - 1, day_index]
            row[:] = names[schedule.default_period]
            for rule in schedule.rules:
                if rule.matches(month, day_type):
                    if rule.default_period is not None:
                        row[:] = names[rule.default_period]
                    for window in reversed(rule.windows):
                        _paint_window(
                            row, window.start_minute, window.end_minute, names[window.period]
                        )
                    break
            for rule in reversed(schedule.critical_peak):
                if rule.matches(month, day_type):
                    for window in reversed(rule.windows):
                        _paint_window(
                            row, window.start_minute, window.end_minute, names[window.period]
                        )
    return table


def _paint_window(row: Any, start: int, end: int, value: int) -> None:
    if start < end:
        row[start:end] = value
    else:
        row[start:] = value
        row[:end] = value


def _schedule_names(schedule: Schedule, first: Sequence[str] = ()) -> dict[str, int]:
    names: dict[str, int] = {}
    for name in first:
        names.setdefault(name, len(names))
    names.setdefault(schedule.default_period, len(names))
    for rule in (*schedule.rules, *schedule.critical_peak):
        if rule.default_period is not None:
            names.setdefault(rule.default_period, len(names))
        for window in rule.windows:
            names.setdefault(window.period, len(names))
    return names


@dataclass(frozen=True, slots=True)
class _Tables:
    energy: Any  # [version, month, day type, minute] → energy period index (int16)
    energy_names: list[list[str]]
    demand: Any  # same for TOU demand periods
    demand_names: list[list[str]]


def _tables(tariff: Tariff) -> _Tables:
    cached = _TABLE_CACHE.get(id(tariff))
    if cached is not None and cached[0] is tariff:
        tables: _Tables = cached[1]
        return tables
    shape = (len(tariff.versions), 12, len(DAY_TYPES), MINUTES_PER_DAY)
    energy = np.zeros(shape, dtype=np.int16)
    demand = np.zeros(shape, dtype=np.int16)
    energy_names: list[list[str]] = []
    demand_names: list[list[str]] = []
    for index, version in enumerate(tariff.versions):
        names: dict[str, int] = {}
        if version.energy is not None:
            names = _schedule_names(
                version.energy.schedule, [period.name for period in version.energy.periods]
            )
            energy[index] = _paint(version.energy.schedule, names)
        energy_names.append(list(names))
        names = {}
        if version.demand is not None and version.demand.schedule is not None:
            names = _schedule_names(version.demand.schedule)
            demand[index] = _paint(version.demand.schedule, names)
        demand_names.append(list(names))
    tables = _Tables(energy, energy_names, demand, demand_names)
    if len(_TABLE_CACHE) >= _TABLE_CACHE_SIZE:
        _TABLE_CACHE.clear()
    _TABLE_CACHE[id(tariff)] = (tariff, tables)
    return tables


# ---------------------------------------------------------------------- rating


def _boundaries(*keys: Any) -> Any:
    """Start indices of the runs of equal ``keys`` (arrays of the same length, n > 0)."""
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)


def rate_arrays(
    *, tariff: Tariff, arrays: IntervalArrays, account: AccountTerms | None = None
) -> Bill | None:
    """Rate columnar intervals; ``None`` when they need the Decimal engine (see module doc).

    Raises :class:`RatingError` like :func:`.rate` for invalid data.
    """
    if supports(tariff, account) is not None:
        return None
    engine = RatingAccumulator(tariff=tariff, account=account)
    terms = engine.account
    n = len(arrays)
    if n == 0:
        return engine.bill()
    scale = arrays.scale
    thresholds_by_version: list[list[int] | None] = []
    needed = [scale, _decimals(terms.tier_usage_carried_in)]
    for version_obj in tariff.versions:
        tiers = _version_tiers(version_obj)
        decimal_thresholds = None if tiers is None else engine._thresholds(tiers)
        needed.extend(_decimals(t) for t in decimal_thresholds or ())
        thresholds_by_version.append(None if decimal_thresholds is None else [])
    new_scale = max(needed)
    if new_scale > _MAX_SCALE:
        return None
    factor = 10 ** (new_scale - scale)
    scale = new_scale
    start, seconds, quantity, kvarh = arrays.start, arrays.seconds, arrays.quantity, arrays.kvarh
    if np.any(start[1:] < start[:-1]):
        order = np.argsort(start, kind="stable")
        start, seconds, quantity = start[order], seconds[order], quantity[order]
        kvarh = None if kvarh is None else kvarh[order]
    end = start + seconds
    # ---- validation, as RatingAccumulator.add
    bad = np.flatnonzero(seconds <= 0)
    if len(bad):
        raise RatingError(f"interval at {_moment(int(start[bad[0]]))} ends before it starts")
    negative = quantity < 0 if kvarh is None else (quantity < 0) | (kvarh < 0)
    bad = np.flatnonzero(negative)
    if len(bad):
        raise RatingError(f"interval at {_moment(int(start[bad[0]]))} has a negative quantity")
    if n > 1:
        overlap = start[1:] < end[:-1]
        same_span = (start[1:] == start[:-1]) & (end[1:] == end[:-1])
        bad = np.flatnonzero(overlap & ~same_span)
        if len(bad):
            previous_end = _moment(int(end[bad[0]]))
            raise RatingError(
                f"interval at {_moment(int(start[bad[0] + 1]))} overlaps or precedes data "
                f"already rated (up to {previous_end})"
            )
    # ---- overflow bounds (Python ints), then rescale
    top = max(int(quantity.max()), 0 if kvarh is None else int(kvarh.max())) * factor
    carried = int(terms.tier_usage_carried_in.scaleb(scale))
    bound = top * n + abs(carried)
    for index, version_obj in enumerate(tariff.versions):
        tiers = _version_tiers(version_obj)
        if tiers is not None:
            ints = [int(t.scaleb(scale)) for t in engine._thresholds(tiers)]
            thresholds_by_version[index] = ints
            bound += max((abs(t) for t in ints), default=0)
    if bound >= _LIMIT:
        return None
    if factor != 1:
        quantity = quantity * factor
        kvarh = None if kvarh is None else kvarh * factor
    # ---- versions and calendar
    version_starts = np.array([_seconds(v.effective_from) for v in tariff.versions], np.int64)
    version = np.searchsorted(version_starts, start, side="right") - 1
    if version[0] < 0:
        raise RatingError(
            f"interval at {_moment(int(start[0]))} is before the tariff's first version"
        )
    days = start // 86400
    minute = (start - days * 86400) // 60
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    month_index = months % 12
    day_type = ((days + 3) % 7 >= 5).astype(np.int64)  # 1970-01-01 was a Thursday
    if terms.holidays:
        holidays = np.array([(day - EPOCH.date()).days for day in terms.holidays], np.int64)
        day_type[np.isin(days, holidays)] = 2
    table_index = ((version * 12 + month_index) * len(DAY_TYPES) + day_type) * MINUTES_PER_DAY
    table_index += minute
    tables = _tables(tariff)
    # ---- segments: (month, version) runs
    segment_starts = _boundaries(months, version)
    segment_of = np.zeros(n, dtype=np.int64)
    segment_of[segment_starts[1:]] = 1
    segment_of = np.cumsum(segment_of)
    segment_count = len(segment_starts)
    segment_month = months[segment_starts]
    segment_version = version[segment_starts]
    # ---- energy: period per interval, tier split, sums per (segment, period, tier)
    energy_versions = [v.energy is not None or v.water is not None for v in tariff.versions]
    periods = tables.energy.reshape(-1)[table_index].astype(np.int64)
    period_count = max(max((len(names) for names in tables.energy_names), default=1), 1)
    step_count = max(
        (len(t.steps) for t in (_version_tiers(v) for v in tariff.versions) if t is not None),
        default=1,
    )
    sums = np.zeros((segment_count, period_count, step_count), dtype=np.int64)
    flat_sums = sums.reshape(-1)
    base_key = segment_of * (period_count * step_count) + periods * step_count
    has_tiers = np.array(
        [
            _version_tiers(v) is not None and energy_versions[i]
            for i, v in enumerate(tariff.versions)
        ]
    )
    tiered = has_tiers[version]
    has_energy = np.array(energy_versions)[version]
    plain = has_energy & ~tiered
    if plain.any():
        np.add.at(flat_sums, base_key[plain], quantity[plain])
    tier_usage: dict[str, int] = {}
    carried_in_applied = False
    if tiered.any():
        tier_code = np.full(n, -1, dtype=np.int64)
        for index, version_obj in enumerate(tariff.versions):
            tiers = _version_tiers(version_obj)
            if tiers is None or not energy_versions[index]:
                continue
            mask = version == index
            if tiers.cumulation == "month":
                tier_code[mask] = months[mask] * 2
            else:
                shifted = months[mask] - (tiers.year_start_month - 1)
                tier_code[mask] = (shifted // 12 * 12 + tiers.year_start_month - 1) * 2 + 1
        positive = np.flatnonzero(tiered & (quantity > 0))
        first_counted = int(positive[0]) if len(positive) else -1
        run_starts = _boundaries(tier_code, version)
        run_ends = np.append(run_starts[1:], n)
        for run_start, run_end in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            code = int(tier_code[run_start])
            if code < 0:
                continue
            key = _tier_key(code)
            if not carried_in_applied and run_start <= first_counted < run_end:
                carried_in_applied = True
                before_run = carried
                tier_usage[key] = carried
            else:
                before_run = tier_usage.get(key, 0)
            values = quantity[run_start:run_end]
            after = np.cumsum(values) + before_run
            before = after - values
            thresholds = thresholds_by_version[int(version[run_start])]
            assert thresholds is not None
            keys = base_key[run_start:run_end]
            lower_after = lower_before = None
            for step in range(len(thresholds) + 1):
                if step < len(thresholds):
                    upper_after = np.minimum(after, thresholds[step])
                    upper_before = np.minimum(before, thresholds[step])
                    portion = upper_after - upper_before
                else:
                    upper_after, upper_before = after, before
                    portion = after - before
                if lower_after is not None and lower_before is not None:
                    portion = portion - (lower_after - lower_before)
                np.add.at(flat_sums, keys + step, portion)
                lower_after, lower_before = upper_after, upper_before
            used = int(after[-1])
            if key in tier_usage or used != before_run:  # the engine keeps counted periods
                tier_usage[key] = used
    # ---- month totals
    month_starts = _boundaries(months)
    kwh = np.add.reduceat(quantity, month_starts)
    kvarh_sums = None if kvarh is None else np.add.reduceat(kvarh, month_starts)
    # ---- peaks per segment (and per TOU demand period)
    peaks: dict[int, Decimal] = {}
    tou_peaks: dict[tuple[int, str], Decimal] = {}
    lengths = np.unique(seconds).tolist()
    demand_periods = tables.demand.reshape(-1)[table_index].astype(np.int64)
    with_tou = np.array(
        [v.demand is not None and v.demand.schedule is not None for v in tariff.versions]
    )
    for length in lengths:
        hours = Decimal(int(length)) / _SECONDS_PER_HOUR
        values = quantity if len(lengths) == 1 else np.where(seconds == length, quantity, -1)
        top_values = np.maximum.reduceat(values, segment_starts).tolist()
        for segment, top in enumerate(top_values):
            if top > 0:
                demand = Decimal(top).scaleb(-scale) / hours
                if demand > peaks.get(segment, Decimal(0)):
                    peaks[segment] = demand
        if not with_tou.any():
            continue
        for index, names in enumerate(tables.demand_names):
            if not with_tou[index]:
                continue
            for period_index, name in enumerate(names):
                mask = (version == index) & (demand_periods == period_index)
                if len(lengths) > 1:
                    mask &= seconds == length
                if not mask.any():
                    continue
                masked = np.where(mask, quantity, -1)
                top_values = np.maximum.reduceat(masked, segment_starts).tolist()
                for segment, top in enumerate(top_values):
                    if top > 0:
                        demand = Decimal(top).scaleb(-scale) / hours
                        peak_key = (segment, name)
                        if demand > tou_peaks.get(peak_key, Decimal(0)):
                            tou_peaks[peak_key] = demand
    # ---- hand the aggregates to the engine
    month_usage: dict[int, _MonthUsage] = {}
    month_keys: dict[int, str] = {}
    for position, month_start in enumerate(month_starts.tolist()):
        month_number = int(months[month_start])
        key = f"{1970 + month_number // 12:04d}-{month_number % 12 + 1:02d}"
        month_keys[month_number] = key
        month_usage[month_number] = _MonthUsage(
            kwh=_decimal(int(kwh[position]), scale),
            kvarh=Decimal(0) if kvarh_sums is None else _decimal(int(kvarh_sums[position]), scale),
            kvarh_seen=kvarh_sums is not None,
        )
    nonzero = np.argwhere(sums > 0).tolist()
    for segment, period_index, step in nonzero:
        index = int(segment_version[segment])
        usage = month_usage[int(segment_month[segment])]
        names = tables.energy_names[index]
        name = names[period_index] if tariff.versions[index].energy is not None else "water"
        usage.energy[(index, name, step)] = _decimal(int(sums[segment, period_index, step]), scale)
    for segment, peak in peaks.items():
        month_usage[int(segment_month[segment])].peak_kw[int(segment_version[segment])] = peak
    for (segment, name), peak in tou_peaks.items():
        usage = month_usage[int(segment_month[segment])]
        usage.tou_peak_kw[(int(segment_version[segment]), name)] = peak
    engine._months = {month_keys[number]: usage for number, usage in month_usage.items()}
    engine._first_month = month_keys[int(months[0])]
    engine._tier_usage = {key: _decimal(value, scale) for key, value in tier_usage.items()}
    engine._carried_in_applied = carried_in_applied
    engine._last_start, engine._last_end = _moment(int(start[-1])), _moment(int(end[-1]))
    return engine.bill()


def _kvarh(interval: Interval) -> Decimal:
    assert interval.kvarh is not None
    return interval.kvarh


def _decimal(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale) if value else Decimal(0)


def _tier_key(code: int) -> str:
    if code % 2 == 0:
        number = code // 2
        return f"{1970 + number // 12:04d}-{number % 12 + 1:02d}"
    number = code // 2
    return f"Y{1970 + number // 12:04d}-{number % 12 + 1:02d}"
