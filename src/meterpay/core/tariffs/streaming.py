"""Fast real-time deduction: O(1) work per reading with exact integer fixed point.

:class:`FastAccumulator` gives the same deductions as :func:`~.engine.incremental_charge`
(and so, summed over a month, the month's bill to the cent) without re-rating the month for
every reading. It keeps only the latest month (earlier months cannot receive data: readings
arrive in time order), as integers:

* energy per (version, TOU period, tier) in units of ``10**-scale`` kWh (m³), where
  ``scale`` is the largest number of decimals seen in quantities, tier thresholds and the
  carried-in tier usage (it grows, rescaling the integers, when a reading has more decimals);
* each energy line's rounded amount in minor units, ``round_half_up(Q x P x U / 10**(scale+6))``
  with ``P`` the unit price in millionths (``round_price``) and ``U`` minor units per major —
  exactly ``round_money(quantity x round_price(price))`` of the Decimal engine;
* the month's kWh and kvarh (power factor), the per-version peaks (Decimal, as the engine
  computes them) and the rounded amounts of the monthly lines.

Lines that do not depend on each reading (fixed, capacity, custom items, the prorated
minimum) are computed once per month by the Decimal engine's own line code; max-demand,
demand-charge lines are recomputed by that code only when a peak rises. The power factor is
recomputed by the Decimal function only when the exact integer test shows that its rounded
value may have changed.

The persisted state is the Decimal engine's own state format (``RatingAccumulator.to_state``)
restricted to the latest month, so either accumulator can continue from the other's state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from meterpay.core.money import MINOR_UNITS_PER_MAJOR, round_money, round_price
from meterpay.core.tariffs.engine import (
    STATE_FORMAT,
    Deduction,
    Line,
    RatingAccumulator,
    _MonthUsage,
)
from meterpay.core.tariffs.errors import RatingError
from meterpay.core.tariffs.model import (
    AccountTerms,
    DayType,
    Interval,
    Schedule,
    Tariff,
    TariffVersion,
    Tiers,
)
from meterpay.core.tariffs.power_factor import adjustment_percent, power_factor

_SECONDS_PER_HOUR = Decimal(3600)
_ZERO = Decimal(0)
_MICRO = 10**6
# The Decimal power factor (40 significant digits) and the exact ratio can only round to
# different hundredths within ~1e-38 of a rounding boundary; within this relative margin
# the Decimal function decides.
_PF_MARGIN = 10**30
_CACHE_SIZE = 1 << 16


def _div_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero (``ROUND_HALF_UP``)."""
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise RatingError(f"{value} is not a finite quantity")
    return max(0, -exponent)


def _to_decimal(value: int, scale: int) -> Decimal:
    return Decimal(value).scaleb(-scale) if value else _ZERO


class _VersionMonth:
    """One tariff version's part of the current month."""

    __slots__ = (
        "buckets",
        "components",
        "index",
        "line_amounts",
        "minimum",
        "peak",
        "peak_seconds",
        "peak_units",
        "pf_applies",
        "pf_base",
        "share",
        "subtotal",
        "tou_peaks",
        "version",
        "water_quantity",
    )

    def __init__(self, index: int, version: TariffVersion, share: Decimal) -> None:
        self.index = index
        self.version = version
        self.share = share
        self.buckets: dict[tuple[str, int], int] = {}
        self.line_amounts: dict[tuple[str, int], int] = {}
        self.components: dict[str, int] = {}
        self.water_quantity = 0
        self.peak: Decimal | None = None
        self.tou_peaks: dict[str, Decimal] = {}
        self.minimum: int | None = None
        # sums of ``components``: all of them, and those the power factor applies to
        self.subtotal = 0
        self.pf_base = 0
        rule = version.power_factor
        self.pf_applies = frozenset() if rule is None else rule.applies_to
        # the peak as an integer quantity over an interval length, to compare without Decimal
        self.peak_units = 0
        self.peak_seconds = 0

    def set_component(self, component: str, amount: int) -> None:
        self.change_component(component, amount - self.components.get(component, 0))

    def change_component(self, component: str, delta: int) -> None:
        self.components[component] = self.components.get(component, 0) + delta
        self.subtotal += delta
        if component in self.pf_applies:
            self.pf_base += delta


class FastAccumulator:
    """Running usage of the latest month for one account, with O(1) deductions.

    ``deduct(interval)`` returns the amount to deduct for one new reading; ``add`` for a
    batch; ``to_state``/``from_state`` persist it (engine state format, latest month only).
    """

    def __init__(self, *, tariff: Tariff, account: AccountTerms | None = None) -> None:
        self.tariff = tariff
        self.account = account if account is not None else AccountTerms()
        self._engine = RatingAccumulator(tariff=tariff, account=self.account)
        self._starts = [version.effective_from for version in tariff.versions]
        self._minor = MINOR_UNITS_PER_MAJOR[tariff.currency]
        self._scale = 0
        self._tier_usage: dict[str, int] = {}
        self._carried_in_applied = False
        self._first_month: str | None = None
        self._last_start: datetime | None = None
        self._last_end: datetime | None = None
        self._period_cache: dict[tuple[int, str, int, DayType, int], str] = {}
        self._tier_key_cache: dict[tuple[int, int, int], str] = {}
        self._hours: dict[timedelta, tuple[int, Decimal]] = {}
        self._amounts: dict[int, Decimal] = {}
        self._energy_price: list[dict[tuple[str, int], tuple[str, int]]] = []
        self._surcharge_prices: list[list[int]] = []
        self._thresholds: list[list[Decimal] | None] = []
        self._int_thresholds: list[list[int] | None] = []
        self._period_names: list[frozenset[str]] = []
        self._pf_cache: dict[tuple[Decimal, Decimal], int] = {}
        self._pf_hundredths: int | None = None
        self._pf_factor: Decimal | None = None
        # the current month
        self._month: str | None = None
        self._month_ym: tuple[int, int] | None = None
        self._parts: dict[int, _VersionMonth] = {}
        self._kwh = 0
        self._kvarh = 0
        self._kvarh_seen = False
        self._custom = 0
        self._total = 0
        for version in tariff.versions:
            self._prepare_version(version)
        needed = [_decimals(self.account.tier_usage_carried_in)]
        for thresholds in self._thresholds:
            needed.extend(_decimals(threshold) for threshold in thresholds or ())
        self._set_scale(max(needed))

    # ------------------------------------------------------------------ preparation

    def _prepare_version(self, version: TariffVersion) -> None:
        prices: dict[tuple[str, int], tuple[str, int]] = {}
        surcharges: list[int] = []
        tiers: Tiers | None = None
        names: frozenset[str] = frozenset()
        if version.energy is not None:
            energy = version.energy
            tiers = energy.tiers
            steps = tiers.steps if tiers is not None else ()
            names = frozenset(period.name for period in energy.periods)
            for period in energy.periods:
                for tier in range(max(len(steps), 1)):
                    price = period.price
                    if steps:
                        step = steps[tier]
                        if period.name in step.period_prices:
                            price = step.period_prices[period.name]
                        elif step.price is not None:
                            price = step.price
                        else:
                            price = period.price + step.increment
                    prices[(period.name, tier)] = ("energy", _micro(price))
        elif version.water is not None:
            water = version.water
            tiers = water.tiers
            steps = tiers.steps if tiers is not None else ()
            for tier in range(max(len(steps), 1)):
                price = water.price
                if steps:
                    step = steps[tier]
                    price = step.price if step.price is not None else water.price + step.increment
                prices[("water", tier)] = ("water", _micro(price))
            surcharges = [_micro(surcharge.price) for surcharge in water.surcharges]
        self._energy_price.append(prices)
        self._surcharge_prices.append(surcharges)
        self._period_names.append(names)
        self._thresholds.append(None if tiers is None else self._engine._thresholds(tiers))

    def _set_scale(self, scale: int) -> None:
        """Use ``10**-scale`` units; rescales every stored quantity (only ever grows)."""
        factor = 10 ** (scale - self._scale)
        self._scale = scale
        self._unit = 10**scale
        self._units_cache: dict[Decimal, int] = {}
        self._divisor = 10 ** (scale + 6)
        self._int_thresholds = [
            None if thresholds is None else [self._exact(t, "tier threshold") for t in thresholds]
            for thresholds in self._thresholds
        ]
        self._carried_in = self._exact(self.account.tier_usage_carried_in, "carried-in usage")
        if factor == 1:
            return
        self._tier_usage = {key: value * factor for key, value in self._tier_usage.items()}
        self._kwh *= factor
        self._kvarh *= factor
        for part in self._parts.values():
            part.buckets = {key: value * factor for key, value in part.buckets.items()}
            part.water_quantity *= factor
            part.peak_units *= factor

    def _exact(self, value: Decimal, what: str) -> int:
        scaled = value.scaleb(self._scale)
        integer = int(scaled)
        if integer != scaled:
            raise RatingError(f"{what} {value} has more decimals than the scale {self._scale}")
        return integer

    def _units(self, value: Decimal) -> int:
        integer = self._units_cache.get(value)
        if integer is not None:
            return integer
        scaled = value.scaleb(self._scale)
        integer = int(scaled)
        if integer != scaled:
            self._set_scale(_decimals(value))
            integer = int(value.scaleb(self._scale))
        if len(self._units_cache) >= _CACHE_SIZE:
            self._units_cache.clear()
        self._units_cache[value] = integer
        return integer

    # ------------------------------------------------------------------ the month

    def _open_month(self, key: str, year_month: tuple[int, int]) -> None:
        self._month = key
        self._month_ym = year_month
        self._kwh = self._kvarh = 0
        self._kvarh_seen = False
        self._pf_hundredths = None
        self._parts = {}
        engine = self._engine
        for index, version, share in engine.month_versions(key):
            part = _VersionMonth(index, version, share)
            if share > 0:
                fixed = engine._fixed_lines(version, share, key)
                part.set_component("fixed", self._sum_minor(fixed))
                if version.minimum_charge is not None:
                    part.minimum = self._to_minor(
                        round_money(version.minimum_charge * share, self.tariff.currency)
                    )
            self._parts[index] = part
            self._refresh_demand(part)
        engine._first_month = self._first_month
        self._custom = self._sum_minor(engine._custom_lines(key))

    def _to_minor(self, amount: Decimal) -> int:
        return int(amount * self._minor)

    def _sum_minor(self, lines: Iterable[Line]) -> int:
        return self._to_minor(sum((line.amount for line in lines), _ZERO))

    def _refresh_demand(self, part: _VersionMonth) -> None:
        """Basic and demand lines of a version from its peaks (engine code, Decimal)."""
        if part.share <= 0 or (part.version.basic is None and part.version.demand is None):
            return
        assert self._month is not None
        usage = _MonthUsage(
            peak_kw={} if part.peak is None else {part.index: part.peak},
            tou_peak_kw={(part.index, name): kw for name, kw in part.tou_peaks.items()},
        )
        engine, month = self._engine, self._month
        if part.version.basic is not None:
            lines = engine._basic_lines(usage, part.index, part.version, part.share, month)
            part.set_component("basic", self._sum_minor(lines))
        if part.version.demand is not None:
            lines = engine._demand_lines(usage, part.index, part.version, part.share, month)
            part.set_component("demand", self._sum_minor(lines))

    def _power_factor(self) -> Decimal | None:
        kwh, kvarh = self._kwh, self._kvarh
        if kwh == 0:
            return None
        hundredths = self._pf_hundredths
        if hundredths is not None:
            apparent = kwh * kwh + kvarh * kvarh
            target = 40000 * kwh * kwh
            margin = apparent * 40000 // _PF_MARGIN + 1
            above = hundredths == 0 or (2 * hundredths - 1) ** 2 * apparent + margin < target
            if above and target + margin < (2 * hundredths + 1) ** 2 * apparent:
                return self._pf_factor
        factor = power_factor(
            kwh=_to_decimal(kwh, self._scale), kvarh=_to_decimal(kvarh, self._scale)
        )
        assert factor is not None
        self._pf_factor = factor
        self._pf_hundredths = int(factor * 100)
        return factor

    def _month_total(self) -> int:
        total = self._custom
        for part in self._parts.values():
            subtotal = part.subtotal
            rule = part.version.power_factor
            if rule is not None and self._kvarh_seen:
                factor = self._power_factor()
                if factor is not None:
                    key = (factor, rule.standard)
                    price = self._pf_cache.get(key)
                    if price is None:
                        percent = adjustment_percent(power_factor=factor, standard=rule.standard)
                        price = self._pf_cache[key] = _micro(percent / 100)
                    base = part.pf_base
                    if price != 0 and base != 0:
                        subtotal += _div_half_up(base * price, _MICRO)
            minimum = part.minimum
            total += minimum if minimum is not None and subtotal < minimum else subtotal
        return total

    # ------------------------------------------------------------------ adding data

    def _period(self, schedule: Schedule, key: tuple[int, str, int, DayType, int]) -> str:
        period = self._period_cache.get(key)
        if period is None:
            period = self._period_cache[key] = schedule.period_at(key[2], key[3], key[4])
        return period

    def _put(self, part: _VersionMonth, key: tuple[str, int], quantity: int) -> None:
        component, price = self._energy_price[part.index][key]
        total = part.buckets.get(key, 0) + quantity
        part.buckets[key] = total
        amount = _div_half_up(total * price * self._minor, self._divisor)
        old = part.line_amounts.get(key, 0)
        if amount != old:
            part.line_amounts[key] = amount
            part.change_component(component, amount - old)
        if component == "water" and self._surcharge_prices[part.index]:
            before = part.water_quantity
            part.water_quantity = after = before + quantity
            change = 0
            for surcharge in self._surcharge_prices[part.index]:
                change += _div_half_up(after * surcharge * self._minor, self._divisor)
                change -= _div_half_up(before * surcharge * self._minor, self._divisor)
            part.change_component("surcharge", change)

    def _tier_key(self, index: int, tiers: Tiers, start: datetime) -> str:
        cache_key = (index, start.year, start.month)
        key = self._tier_key_cache.get(cache_key)
        if key is None:
            if tiers.cumulation == "month":
                key = f"{start.year:04d}-{start.month:02d}"
            else:
                year = start.year if start.month >= tiers.year_start_month else start.year - 1
                key = f"Y{year:04d}-{tiers.year_start_month:02d}"
            self._tier_key_cache[cache_key] = key
        return key

    def _allocate(
        self, part: _VersionMonth, period: str, quantity: int, tiers: Tiers | None, start: datetime
    ) -> None:
        if quantity == 0:
            return
        if tiers is None:
            self._put(part, (period, 0), quantity)
            return
        tier_key = self._tier_key(part.index, tiers, start)
        if not self._carried_in_applied:
            self._carried_in_applied = True
            self._tier_usage[tier_key] = self._carried_in
        used = self._tier_usage.get(tier_key, 0)
        remaining = quantity
        thresholds = self._int_thresholds[part.index]
        assert thresholds is not None
        for index in range(len(tiers.steps)):
            if remaining <= 0:
                break
            threshold = thresholds[index] if index < len(thresholds) else None
            if threshold is not None and used >= threshold:
                continue
            portion = remaining if threshold is None else min(remaining, threshold - used)
            self._put(part, (period, index), portion)
            used += portion
            remaining -= portion
        self._tier_usage[tier_key] = used

    def deduct(self, interval: Interval) -> Decimal:
        """Add one reading; the amount to deduct for it (its month's total change)."""
        minor = self._add_one(interval)
        amount = self._amounts.get(minor)
        if amount is None:
            amount = round_money(Decimal(minor) / self._minor, self.tariff.currency)
            if len(self._amounts) >= _CACHE_SIZE:
                self._amounts.clear()
            self._amounts[minor] = amount
        return amount

    def deduct_minor(self, interval: Interval) -> int:
        """Like :meth:`deduct`, in integer minor units (as the wallet ledger stores money)."""
        return self._add_one(interval)

    def _add_one(self, interval: Interval) -> int:
        """Add one interval; the change of its month's total in minor units."""
        start, end = interval.start, interval.end
        if end <= start:
            raise RatingError(f"interval at {start} ends before it starts")
        if interval.quantity < 0 or (interval.kvarh is not None and interval.kvarh < 0):
            raise RatingError(f"interval at {start} has a negative quantity")
        last_end = self._last_end
        if (
            last_end is not None
            and start < last_end
            and not (start == self._last_start and end == last_end)
        ):
            raise RatingError(
                f"interval at {start} overlaps or precedes data already rated (up to {last_end})"
            )
        version_index = bisect.bisect_right(self._starts, start) - 1
        if version_index < 0:
            raise RatingError(f"interval at {start} is before the tariff's first version")
        self._last_start, self._last_end = start, end
        year_month = (start.year, start.month)
        if year_month != self._month_ym:
            key = f"{start.year:04d}-{start.month:02d}"
            if self._first_month is None:
                self._first_month = key
            self._open_month(key, year_month)
            before = 0
        else:
            before = self._total
        part = self._parts[version_index]
        version = part.version
        quantity = self._units(interval.quantity)
        holidays = self.account.holidays
        if holidays and date(start.year, start.month, start.day) in holidays:
            day_type: DayType = "holiday"
        else:
            day_type = "weekend" if start.weekday() >= 5 else "weekday"
        minute = start.hour * 60 + start.minute
        if version.energy is not None:
            energy = version.energy
            if interval.period is not None:
                if interval.period not in self._period_names[version_index]:
                    raise RatingError(
                        f"interval at {start} is for period {interval.period!r}, "
                        "which the tariff does not have"
                    )
                period = interval.period
            else:
                period = self._period(
                    energy.schedule, (version_index, "e", start.month, day_type, minute)
                )
            self._allocate(part, period, quantity, energy.tiers, start)
        elif version.water is not None:
            self._allocate(part, "water", quantity, version.water.tiers, start)
        self._kwh += quantity
        if interval.kvarh is not None:
            self._kvarh += self._units(interval.kvarh)
            self._kvarh_seen = True
        if interval.kw is not None or interval.period is None:
            tou = version.demand
            tou_schedule = None if tou is None else tou.schedule
            if interval.kw is not None:
                demand = interval.kw
                seconds = 0
            else:
                length = end - start
                seconds_hours = self._hours.get(length)
                if seconds_hours is None:
                    seconds = int(length.total_seconds())
                    hours = Decimal(seconds) / _SECONDS_PER_HOUR
                    seconds_hours = self._hours[length] = (seconds, hours)
                seconds, hours = seconds_hours
                if (
                    tou_schedule is None
                    and seconds == part.peak_seconds
                    and quantity <= part.peak_units
                ):
                    # same interval length, no more energy: not a higher demand
                    return self._finish(before)
                demand = interval.quantity / hours
            changed = False
            if demand > (part.peak if part.peak is not None else _ZERO):
                part.peak = demand
                part.peak_units, part.peak_seconds = quantity, seconds
                changed = True
            if tou_schedule is not None:
                demand_period = self._period(
                    tou_schedule, (version_index, "d", start.month, day_type, minute)
                )
                if demand > part.tou_peaks.get(demand_period, _ZERO):
                    part.tou_peaks[demand_period] = demand
                    changed = True
            if changed:
                self._refresh_demand(part)
        return self._finish(before)

    def _finish(self, before: int) -> int:
        self._total = total = self._month_total()
        return total - before

    def add(self, intervals: Iterable[Interval]) -> Deduction:
        """Add intervals in time order; what to deduct for them, per month and in total."""
        by_month: dict[str, int] = {}
        for interval in intervals:
            change = self._add_one(interval)
            assert self._month is not None
            by_month[self._month] = by_month.get(self._month, 0) + change
        amounts = {month: Decimal(value) / self._minor for month, value in by_month.items()}
        return Deduction(
            round_money(Decimal(sum(by_month.values())) / self._minor, self.tariff.currency),
            {month: round_money(value, self.tariff.currency) for month, value in amounts.items()},
            self.to_state(),
        )

    @property
    def month(self) -> str | None:
        return self._month

    def month_total(self) -> Decimal:
        """The current month's bill so far (sum of its rounded lines)."""
        return round_money(Decimal(self._total) / self._minor, self.tariff.currency)

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """The engine's state format (``RatingAccumulator.to_state``), latest month only."""
        scale = self._scale
        months: dict[str, Any] = {}
        if self._month is not None:
            energy = [
                [index, period, tier, str(_to_decimal(quantity, scale))]
                for index, part in sorted(self._parts.items())
                for (period, tier), quantity in sorted(part.buckets.items())
            ]
            months[self._month] = {
                "energy": energy,
                "kwh": str(_to_decimal(self._kwh, scale)),
                "kvarh": str(_to_decimal(self._kvarh, scale)),
                "kvarh_seen": self._kvarh_seen,
                "peak_kw": [
                    [index, str(part.peak)]
                    for index, part in sorted(self._parts.items())
                    if part.peak is not None
                ],
                "tou_peak_kw": [
                    [index, name, str(kw)]
                    for index, part in sorted(self._parts.items())
                    for name, kw in sorted(part.tou_peaks.items())
                ],
            }
        return {
            "format": STATE_FORMAT,
            "tariff_id": self.tariff.id,
            "first_month": self._first_month,
            "last_start": None if self._last_start is None else self._last_start.isoformat(),
            "last_end": None if self._last_end is None else self._last_end.isoformat(),
            "carried_in_applied": self._carried_in_applied,
            "tier_usage": {
                key: str(_to_decimal(value, scale))
                for key, value in sorted(self._tier_usage.items())
            },
            "months": months,
        }

    @classmethod
    def from_state(
        cls,
        *,
        tariff: Tariff,
        account: AccountTerms | None = None,
        state: Mapping[str, Any] | None,
    ) -> FastAccumulator:
        """Restore from :meth:`to_state` or from a ``RatingAccumulator`` state (latest month)."""
        accumulator = cls(tariff=tariff, account=account)
        if not state:
            return accumulator
        # The engine validates the state and parses the Decimals.
        engine = RatingAccumulator.from_state(tariff=tariff, account=account, state=state)
        accumulator._load(engine)
        return accumulator

    def _load(self, engine: RatingAccumulator) -> None:
        self._first_month = engine._first_month
        self._last_start, self._last_end = engine._last_start, engine._last_end
        self._carried_in_applied = engine._carried_in_applied
        values: list[Decimal] = list(engine._tier_usage.values())
        month = max(engine._months) if engine._months else None
        usage = engine._months[month] if month is not None else None
        if usage is not None:
            values.extend(usage.energy.values())
            values.extend((usage.kwh, usage.kvarh))
        self._set_scale(max([self._scale, *(_decimals(value) for value in values)]))
        self._tier_usage = {key: self._exact(v, "usage") for key, v in engine._tier_usage.items()}
        if month is None or usage is None:
            return
        self._open_month(month, (int(month[:4]), int(month[5:7])))
        for (index, period, tier), quantity in sorted(usage.energy.items()):
            part = self._parts.get(index)
            if part is None or (period, tier) not in self._energy_price[index]:
                raise RatingError(f"accumulator state has usage for unknown {period!r}")
            self._put(part, (period, tier), self._exact(quantity, "usage"))
        self._kwh = self._exact(usage.kwh, "kWh")
        self._kvarh = self._exact(usage.kvarh, "kvarh")
        self._kvarh_seen = usage.kvarh_seen
        for index, peak in usage.peak_kw.items():
            if index in self._parts:
                self._parts[index].peak = peak
        for (index, name), peak in usage.tou_peak_kw.items():
            if index in self._parts:
                self._parts[index].tou_peaks[name] = peak
        for part in self._parts.values():
            self._refresh_demand(part)
        self._total = self._month_total()


def _micro(price: Decimal) -> int:
    """A unit price rounded half-up to 6 dp (``round_price``), in millionths."""
    return int(round_price(price).scaleb(6))


def fast_incremental_charge(
    *,
    tariff: Tariff,
    new_intervals: Sequence[Interval],
    state: Mapping[str, Any] | None = None,
    account: AccountTerms | None = None,
) -> Deduction:
    """:func:`~.engine.incremental_charge` with O(1) work per reading.

    Same amounts, same state format (only the latest month is kept in ``state``).
    """
    accumulator = FastAccumulator.from_state(tariff=tariff, account=account, state=state)
    return accumulator.add(new_intervals)
