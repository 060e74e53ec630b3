"""Rating: intervals + tariff → line items, with an accumulator for real-time deduction.

Rules (also in docs/tariffs.md):
* An interval belongs to the month, tariff version, TOU period and day type of its start.
* Stepped prices are allocated chronologically: usage is cumulated over the month or the
  tier year (across versions) and each kWh/m³ is priced in the step the running total is in.
* Lines are grouped by month and version (a month spanning a version change is rated
  piecewise). Every unit price is rounded half-up to 6 dp; every line amount is
  ``round_money(quantity x unit_price x proration)``; a month's total is the sum of its lines.
* Monthly charges (fixed, basic, demand, minimum, custom items) are due for each month that
  has rated data, pro-rated by the share of the month in service and in each version.
* Real-time deduction for new data = total(lines with it) - total(lines without it). The
  totals telescope, so a month's deductions add up exactly to the month's bill.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from meterpay.core.money import round_money, round_price
from meterpay.core.tariffs.errors import RatingError
from meterpay.core.tariffs.model import (
    CN_TWO_PART_OVERRUN_THRESHOLD,
    AccountTerms,
    DayType,
    DemandTier,
    Interval,
    Schedule,
    Tariff,
    TariffVersion,
    Tiers,
)
from meterpay.core.tariffs.power_factor import adjustment_percent, power_factor
from meterpay.core.tariffs.proration import (
    custom_item_charge,
    month_bounds,
    month_key,
    overlap_share,
    service_bounds,
)

STATE_FORMAT = 1
CATEGORY_BY_COMPONENT = {
    "energy": "energy",
    "water": "energy",
    "surcharge": "energy",
    "basic": "demand",
    "demand": "demand",
    "fixed": "fixed",
    "custom": "fixed",
    "minimum": "minimum",
    "power_factor": "adjustments",
    "rerate": "adjustments",
}
CATEGORIES = ("energy", "demand", "fixed", "minimum", "adjustments")
_SECONDS_PER_HOUR = Decimal(3600)
_MICROSECOND = timedelta(microseconds=1)
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Line:
    """One bill line: ``amount = round_money(quantity x unit_price x proration)``."""

    month: str
    component: str
    label: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    proration: Decimal = _ONE
    version_from: datetime | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "month": self.month,
            "component": self.component,
            "label": self.label,
            "quantity": str(self.quantity),
            "unit": self.unit,
            "unit_price": str(self.unit_price),
            "proration": str(self.proration),
            "amount": str(self.amount),
            "version_from": None if self.version_from is None else self.version_from.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class MonthSummary:
    month: str
    energy: Decimal
    demand: Decimal
    fixed: Decimal
    minimum: Decimal
    adjustments: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class Bill:
    currency: str
    lines: tuple[Line, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), _ZERO)

    def month_totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.month] = totals.get(line.month, _ZERO) + line.amount
        return totals

    def months(self) -> list[MonthSummary]:
        sums: dict[str, dict[str, Decimal]] = {}
        for line in self.lines:
            month = sums.setdefault(line.month, dict.fromkeys(CATEGORIES, _ZERO))
            category = CATEGORY_BY_COMPONENT[line.component]
            month[category] += line.amount
        summaries: list[MonthSummary] = []
        for key, values in sorted(sums.items()):
            rounded = {name: round_money(value, self.currency) for name, value in values.items()}
            total = round_money(sum(values.values(), _ZERO), self.currency)
            summaries.append(MonthSummary(month=key, total=total, **rounded))
        return summaries


@dataclass(frozen=True, slots=True)
class Deduction:
    """What to deduct for new data; ``state`` is the accumulator to persist for next time."""

    amount: Decimal
    by_month: Mapping[str, Decimal]
    state: Mapping[str, Any]


@dataclass(slots=True)
class _MonthUsage:
    energy: dict[tuple[int, str, int], Decimal] = field(default_factory=dict)
    kwh: Decimal = _ZERO
    kvarh: Decimal = _ZERO
    kvarh_seen: bool = False
    peak_kw: dict[int, Decimal] = field(default_factory=dict)
    tou_peak_kw: dict[tuple[int, str], Decimal] = field(default_factory=dict)


def _day_type(moment: datetime, holidays: frozenset[Any]) -> DayType:
    if moment.date() in holidays:
        return "holiday"
    return "weekend" if moment.weekday() >= 5 else "weekday"


def _tier_key(tiers: Tiers, start: datetime) -> str:
    if tiers.cumulation == "month":
        return month_key(start)
    year = start.year if start.month >= tiers.year_start_month else start.year - 1
    return f"Y{year:04d}-{tiers.year_start_month:02d}"


def _split_demand(demand: Decimal, tiers: Sequence[DemandTier]) -> list[tuple[int, Decimal]]:
    parts: list[tuple[int, Decimal]] = []
    lower = _ZERO
    for index, tier in enumerate(tiers):
        upper = tier.up_to
        portion = demand - lower if upper is None else min(demand, upper) - lower
        if portion > 0:
            parts.append((index, portion))
        if upper is None or demand <= upper:
            break
        lower = upper
    return parts


def _tier_label(name: str, tier: int, tier_count: int) -> str:
    return name if tier_count <= 1 else f"{name} tier {tier + 1}"


class RatingAccumulator:
    """Running usage for one account under one tariff; persisted with :meth:`to_state`.

    Add intervals in time order with :meth:`add`; :meth:`lines` rates everything so far.
    """

    def __init__(self, *, tariff: Tariff, account: AccountTerms | None = None) -> None:
        self.tariff = tariff
        self.account = account if account is not None else AccountTerms()
        self._starts = [version.effective_from for version in tariff.versions]
        self._months: dict[str, _MonthUsage] = {}
        self._tier_usage: dict[str, Decimal] = {}
        self._carried_in_applied = False
        self._first_month: str | None = None
        self._last_start: datetime | None = None
        self._last_end: datetime | None = None
        self._period_cache: dict[tuple[int, str, int, DayType, int], str] = {}

    # ------------------------------------------------------------------ adding data

    def _version_index(self, moment: datetime) -> int | None:
        index = bisect.bisect_right(self._starts, moment) - 1
        return index if index >= 0 else None

    def _period(self, schedule: Schedule, key: tuple[int, str, int, DayType, int]) -> str:
        period = self._period_cache.get(key)
        if period is None:
            period = schedule.period_at(key[2], key[3], key[4])
            self._period_cache[key] = period
        return period

    def _thresholds(self, tiers: Tiers) -> list[Decimal]:
        if self.account.tier_thresholds is not None:
            if len(self.account.tier_thresholds) != len(tiers.steps) - 1:
                raise RatingError(
                    f"the account gives {len(self.account.tier_thresholds)} tier thresholds; "
                    f"the tariff has {len(tiers.steps) - 1}"
                )
            return list(self.account.tier_thresholds)
        scale = self.account.tier_threshold_scale
        return [step.up_to * scale for step in tiers.steps if step.up_to is not None]

    def _allocate(
        self,
        usage: _MonthUsage,
        version: int,
        period: str,
        quantity: Decimal,
        tiers: Tiers | None,
        start: datetime,
    ) -> None:
        if quantity == 0:
            return
        if tiers is None:
            key = (version, period, 0)
            usage.energy[key] = usage.energy.get(key, _ZERO) + quantity
            return
        tier_key = _tier_key(tiers, start)
        if not self._carried_in_applied:
            self._carried_in_applied = True
            self._tier_usage[tier_key] = self.account.tier_usage_carried_in
        used = self._tier_usage.get(tier_key, _ZERO)
        remaining = quantity
        thresholds = self._thresholds(tiers)
        for index in range(len(tiers.steps)):
            if remaining <= 0:
                break
            threshold = thresholds[index] if index < len(thresholds) else None
            if threshold is not None and used >= threshold:
                continue
            portion = remaining if threshold is None else min(remaining, threshold - used)
            key = (version, period, index)
            usage.energy[key] = usage.energy.get(key, _ZERO) + portion
            used += portion
            remaining -= portion
        self._tier_usage[tier_key] = used

    def add(self, intervals: Iterable[Interval]) -> None:
        """Add intervals in time order (intervals from one register span may share it)."""
        holidays = self.account.holidays
        for interval in intervals:
            start, end = interval.start, interval.end
            if end <= start:
                raise RatingError(f"interval at {start} ends before it starts")
            if interval.quantity < 0 or (interval.kvarh is not None and interval.kvarh < 0):
                raise RatingError(f"interval at {start} has a negative quantity")
            if self._last_end is not None and start < self._last_end:
                same_span = start == self._last_start and end == self._last_end
                if not same_span:
                    raise RatingError(
                        f"interval at {start} overlaps or precedes data already rated "
                        f"(up to {self._last_end})"
                    )
            self._last_start, self._last_end = start, end
            version_index = self._version_index(start)
            if version_index is None:
                raise RatingError(f"interval at {start} is before the tariff's first version")
            version = self.tariff.versions[version_index]
            key = month_key(start)
            usage = self._months.get(key)
            if usage is None:
                usage = self._months[key] = _MonthUsage()
            if self._first_month is None:
                self._first_month = key
            day_type = _day_type(start, holidays)
            minute = start.hour * 60 + start.minute
            quantity = interval.quantity
            if version.energy is not None:
                energy = version.energy
                if interval.period is not None:
                    if interval.period not in {p.name for p in energy.periods}:
                        raise RatingError(
                            f"interval at {start} is for period {interval.period!r}, "
                            "which the tariff does not have"
                        )
                    period = interval.period
                else:
                    period = self._period(
                        energy.schedule, (version_index, "e", start.month, day_type, minute)
                    )
                self._allocate(usage, version_index, period, quantity, energy.tiers, start)
            elif version.water is not None:
                self._allocate(usage, version_index, "water", quantity, version.water.tiers, start)
            usage.kwh += quantity
            if interval.kvarh is not None:
                usage.kvarh += interval.kvarh
                usage.kvarh_seen = True
            if interval.kw is None and interval.period is not None:
                continue  # a TOU-register share of a span says nothing about demand
            if interval.kw is not None:
                demand = interval.kw
            else:
                # exact to the microsecond: whole seconds made a sub-second interval 0 h long
                hours = Decimal((end - start) // _MICROSECOND) / _MICROSECONDS_PER_HOUR
                demand = quantity / hours
            if demand > usage.peak_kw.get(version_index, _ZERO):
                usage.peak_kw[version_index] = demand
            tou = version.demand
            if tou is not None and tou.schedule is not None:
                demand_period = self._period(
                    tou.schedule, (version_index, "d", start.month, day_type, minute)
                )
                peak_key = (version_index, demand_period)
                if demand > usage.tou_peak_kw.get(peak_key, _ZERO):
                    usage.tou_peak_kw[peak_key] = demand

    def drop_months_before(self, month: str) -> None:
        """Forget settled months (tier-year usage is kept) to keep persisted state small."""
        for key in [key for key in self._months if key < month]:
            del self._months[key]

    # ------------------------------------------------------------------ rating

    @property
    def months(self) -> list[str]:
        return sorted(self._months)

    def month_total(self, month: str) -> Decimal:
        if month not in self._months:
            return _ZERO
        return sum((line.amount for line in self.month_lines(month)), _ZERO)

    def lines(self) -> list[Line]:
        return [line for month in self.months for line in self.month_lines(month)]

    def bill(self) -> Bill:
        return Bill(self.tariff.currency, tuple(self.lines()))

    def _line(
        self,
        *,
        month: str,
        component: str,
        label: str,
        quantity: Decimal,
        unit: str,
        unit_price: Decimal,
        proration: Decimal,
        version: TariffVersion | None,
    ) -> Line:
        price = round_price(unit_price)
        amount = round_money(quantity * price * proration, self.tariff.currency)
        return Line(
            month=month,
            component=component,
            label=label,
            quantity=quantity,
            unit=unit,
            unit_price=price,
            amount=amount,
            proration=proration,
            version_from=None if version is None else version.effective_from,
        )

    def month_versions(self, month: str) -> list[tuple[int, TariffVersion, Decimal]]:
        """The versions that apply in ``month`` with each one's share of it (service-prorated)."""
        month_start, month_end = month_bounds(month)
        service_start, service_end = service_bounds(
            move_in=self.account.move_in, move_out=self.account.move_out
        )
        result: list[tuple[int, TariffVersion, Decimal]] = []
        first = self._version_index(month_start)
        last = self._version_index(month_end - timedelta(microseconds=1))
        for index in range(
            first if first is not None else 0, (last if last is not None else -1) + 1
        ):
            version = self.tariff.versions[index]
            version_end = (
                self.tariff.versions[index + 1].effective_from
                if index + 1 < len(self.tariff.versions)
                else None
            )
            span_start = max(month_start, version.effective_from)
            span_end = month_end if version_end is None else min(month_end, version_end)
            share = overlap_share(
                cycle_start=month_start,
                cycle_end=month_end,
                part_start=max(span_start, service_start) if service_start else span_start,
                part_end=min(span_end, service_end) if service_end else span_end,
            )
            result.append((index, version, share))
        return result

    def month_lines(self, month: str) -> list[Line]:
        usage = self._months[month]
        lines: list[Line] = []
        for index, version, share in self.month_versions(month):
            lines.extend(self._version_lines(month, usage, index, version, share))
        lines.extend(self._custom_lines(month))
        return lines

    def _version_lines(
        self, month: str, usage: _MonthUsage, index: int, version: TariffVersion, share: Decimal
    ) -> list[Line]:
        lines: list[Line] = []

        def make(
            component: str,
            label: str,
            quantity: Decimal,
            unit: str,
            unit_price: Decimal,
            proration: Decimal = _ONE,
        ) -> Line:
            return self._line(
                month=month, version=version, component=component, label=label,
                quantity=quantity, unit=unit, unit_price=unit_price, proration=proration,
            )  # fmt: skip

        if version.energy is not None:
            energy = version.energy
            steps = energy.tiers.steps if energy.tiers is not None else ()
            for period in energy.periods:
                for tier in range(max(len(steps), 1)):
                    quantity = usage.energy.get((index, period.name, tier))
                    if quantity is None:
                        continue
                    price = period.price
                    if steps:
                        step = steps[tier]
                        if period.name in step.period_prices:
                            price = step.period_prices[period.name]
                        elif step.price is not None:
                            price = step.price
                        else:
                            price = period.price + step.increment
                    lines.append(make(
                        component="energy", label=_tier_label(period.name, tier, len(steps)),
                        quantity=quantity, unit="kWh", unit_price=price,
                    ))  # fmt: skip
        if version.water is not None:
            water = version.water
            steps = water.tiers.steps if water.tiers is not None else ()
            version_quantity = _ZERO
            for tier in range(max(len(steps), 1)):
                quantity = usage.energy.get((index, "water", tier))
                if quantity is None:
                    continue
                version_quantity += quantity
                price = water.price
                if steps:
                    step = steps[tier]
                    price = step.price if step.price is not None else water.price + step.increment
                lines.append(make(
                    component="water", label=_tier_label("water", tier, len(steps)),
                    quantity=quantity, unit="m3", unit_price=price,
                ))  # fmt: skip
            if version_quantity:
                for surcharge in water.surcharges:
                    lines.append(make(
                        component="surcharge", label=surcharge.name, quantity=version_quantity,
                        unit="m3", unit_price=surcharge.price,
                    ))  # fmt: skip
        if share > 0 and version.basic is not None:
            lines.extend(self._basic_lines(usage, index, version, share, month))
        if share > 0 and version.demand is not None:
            lines.extend(self._demand_lines(usage, index, version, share, month))
        if share > 0:
            lines.extend(self._fixed_lines(version, share, month))
        pf_rule = version.power_factor
        if pf_rule is not None and usage.kvarh_seen:
            factor = power_factor(kwh=usage.kwh, kvarh=usage.kvarh)
            if factor is not None:
                percent = adjustment_percent(power_factor=factor, standard=pf_rule.standard)
                base = sum(
                    (line.amount for line in lines if line.component in pf_rule.applies_to), _ZERO
                )
                if percent != 0 and base != 0:
                    lines.append(make(
                        component="power_factor",
                        label=f"power factor {factor} against {pf_rule.standard}",
                        quantity=base, unit=self.tariff.currency, unit_price=percent / 100,
                        proration=_ONE,
                    ))  # fmt: skip
        if share > 0 and version.minimum_charge is not None:
            minimum = round_money(version.minimum_charge * share, self.tariff.currency)
            subtotal = sum((line.amount for line in lines), _ZERO)
            if subtotal < minimum:
                lines.append(make(
                    component="minimum", label="minimum charge shortfall", quantity=_ONE,
                    unit="month", unit_price=minimum - subtotal,
                ))  # fmt: skip
        return lines

    def _demand_lines(
        self, usage: _MonthUsage, index: int, version: TariffVersion, share: Decimal, month: str
    ) -> list[Line]:
        demand = version.demand
        assert demand is not None
        lines: list[Line] = []

        def make(label: str, quantity: Decimal, unit_price: Decimal) -> Line:
            return self._line(
                month=month, version=version, component="demand", label=label,
                quantity=quantity, unit="kW", unit_price=unit_price, proration=share,
            )  # fmt: skip

        month_number = int(month[5:7])
        peak = usage.peak_kw.get(index)
        for season in demand.flat:
            if month_number in season.months and peak is not None:
                for tier, portion in _split_demand(peak, season.tiers):
                    lines.append(make(
                        label=_tier_label("flat demand", tier, len(season.tiers)),
                        quantity=portion, unit_price=season.tiers[tier].price,
                    ))  # fmt: skip
        for demand_period in demand.periods:
            period_peak = usage.tou_peak_kw.get((index, demand_period.name))
            if period_peak is None:
                continue
            for tier, portion in _split_demand(period_peak, demand_period.tiers):
                lines.append(make(
                    label=_tier_label(f"{demand_period.name} demand", tier,
                                      len(demand_period.tiers)),
                    quantity=portion, unit_price=demand_period.tiers[tier].price,
                ))  # fmt: skip
        return lines

    def _fixed_lines(self, version: TariffVersion, share: Decimal, month: str) -> list[Line]:
        return [
            self._line(
                month=month,
                version=version,
                component="fixed",
                label=charge.name,
                quantity=_ONE,
                unit="month",
                unit_price=charge.amount,
                proration=share,
            )
            for charge in version.fixed_charges
        ]

    def _basic_lines(
        self, usage: _MonthUsage, index: int, version: TariffVersion, share: Decimal, month: str
    ) -> list[Line]:
        basic = version.basic
        assert basic is not None

        def make(label: str, quantity: Decimal, unit_price: Decimal) -> Line:
            return self._line(
                month=month, version=version, component="basic", label=label,
                quantity=quantity, unit="kVA" if basic.method == "capacity" else "kW",
                unit_price=unit_price, proration=share,
            )  # fmt: skip

        if basic.method == "capacity":
            capacity = self.account.capacity_kva
            if capacity is None:
                raise RatingError(
                    "the tariff charges by capacity but the account has no capacity_kva"
                )
            return [make(
                label="capacity", quantity=capacity, unit_price=basic.price,
            )]  # fmt: skip
        demand = usage.peak_kw.get(index, _ZERO)
        contract = self.account.contract_demand_kw
        if basic.needs_contract_demand and contract is None:
            raise RatingError("the tariff's demand overrun needs the account's contract_demand_kw")
        lines: list[Line] = []
        if basic.contract_rule == "cn_two_part":
            assert contract is not None
            threshold = basic.overrun_threshold
            if threshold is None:
                threshold = CN_TWO_PART_OVERRUN_THRESHOLD
            limit = contract * threshold
            if demand <= limit:
                # within the threshold (or below the contract): the contract demand is billed
                if contract <= 0:
                    return []
                return [make(
                    label="contract demand", quantity=contract, unit_price=basic.price,
                )]  # fmt: skip
            if limit > 0:
                lines.append(make(
                    label=f"max demand up to {(threshold * 100).normalize():f}% of contract",
                    quantity=limit, unit_price=basic.price,
                ))  # fmt: skip
            lines.append(make(
                label="max demand overrun", quantity=demand - limit,
                unit_price=basic.price * basic.overrun_multiplier,
            ))  # fmt: skip
            return lines
        billed = demand
        if basic.minimum_fraction is not None and contract is not None:
            billed = max(billed, contract * basic.minimum_fraction)
        if basic.overrun_threshold is not None and contract is not None:
            limit = contract * basic.overrun_threshold
            overrun = demand - limit
            billed = min(billed, limit)
            if overrun > 0:
                lines.append(make(
                    label="max demand overrun", quantity=overrun,
                    unit_price=basic.price * basic.overrun_multiplier,
                ))  # fmt: skip
        if billed > 0:
            lines.insert(0, make(
                label="max demand", quantity=billed, unit_price=basic.price,
            ))  # fmt: skip
        return lines

    def _custom_lines(self, month: str) -> list[Line]:
        month_start, month_end = month_bounds(month)
        service_start, _ = service_bounds(move_in=self.account.move_in, move_out=None)
        anchor = month_start if service_start is None else max(month_start, service_start)
        if anchor >= month_end:
            return []
        index = self._version_index(anchor)
        if index is None:
            index = 0
        version = self.tariff.versions[index]
        lines: list[Line] = []
        for item in version.custom_items:
            try:
                charge = custom_item_charge(
                    item=item,
                    month=month,
                    move_in=self.account.move_in,
                    move_out=self.account.move_out,
                    room_area_m2=self.account.room_area_m2,
                    first_rated_month=self._first_month,
                )
            except ValueError as error:
                raise RatingError(str(error)) from None
            if charge is not None:
                lines.append(self._line(
                    month=month, component="custom", label=item.name, quantity=charge.quantity,
                    unit=charge.unit, unit_price=charge.unit_price, proration=charge.proration,
                    version=version,
                ))  # fmt: skip
        return lines

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able data (strings for Decimals) restoring this accumulator."""
        return {
            "format": STATE_FORMAT,
            "tariff_id": self.tariff.id,
            "first_month": self._first_month,
            "last_start": None if self._last_start is None else self._last_start.isoformat(),
            "last_end": None if self._last_end is None else self._last_end.isoformat(),
            "carried_in_applied": self._carried_in_applied,
            "tier_usage": {key: str(value) for key, value in sorted(self._tier_usage.items())},
            "months": {
                key: {
                    "energy": [[v, p, t, str(q)] for (v, p, t), q in sorted(usage.energy.items())],
                    "kwh": str(usage.kwh),
                    "kvarh": str(usage.kvarh),
                    "kvarh_seen": usage.kvarh_seen,
                    "peak_kw": [[v, str(kw)] for v, kw in sorted(usage.peak_kw.items())],
                    "tou_peak_kw": [
                        [v, p, str(kw)] for (v, p), kw in sorted(usage.tou_peak_kw.items())
                    ],
                }
                for key, usage in sorted(self._months.items())
            },
        }

    @classmethod
    def from_state(
        cls,
        *,
        tariff: Tariff,
        account: AccountTerms | None = None,
        state: Mapping[str, Any] | None,
    ) -> RatingAccumulator:
        accumulator = cls(tariff=tariff, account=account)
        if not state:
            return accumulator
        try:
            if state["format"] != STATE_FORMAT:
                raise RatingError(f"unknown accumulator state format {state['format']!r}")
            if state["tariff_id"] != tariff.id:
                raise RatingError(
                    f"accumulator state is for tariff {state['tariff_id']!r}, not {tariff.id!r}"
                )
            accumulator._first_month = state["first_month"]
            if state["last_start"] is not None:
                accumulator._last_start = datetime.fromisoformat(state["last_start"])
                accumulator._last_end = datetime.fromisoformat(state["last_end"])
            accumulator._carried_in_applied = bool(state["carried_in_applied"])
            accumulator._tier_usage = {k: Decimal(v) for k, v in state["tier_usage"].items()}
            for key, raw in state["months"].items():
                accumulator._months[key] = _MonthUsage(
                    energy={(int(v), str(p), int(t)): Decimal(q) for v, p, t, q in raw["energy"]},
                    kwh=Decimal(raw["kwh"]),
                    kvarh=Decimal(raw["kvarh"]),
                    kvarh_seen=bool(raw["kvarh_seen"]),
                    peak_kw={int(v): Decimal(kw) for v, kw in raw["peak_kw"]},
                    tou_peak_kw={(int(v), str(p)): Decimal(kw) for v, p, kw in raw["tou_peak_kw"]},
                )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, RatingError):
                raise
            raise RatingError(f"malformed accumulator state: {error!r}") from None
        return accumulator


# ---------------------------------------------------------------------- public functions


def rate(
    *, tariff: Tariff, intervals: Iterable[Interval], account: AccountTerms | None = None
) -> Bill:
    """Rate intervals (any order; sorted by start) and return the bill's lines."""
    accumulator = RatingAccumulator(tariff=tariff, account=account)
    accumulator.add(sorted(intervals, key=lambda interval: interval.start))
    return accumulator.bill()


def incremental_charge(
    *,
    tariff: Tariff,
    new_intervals: Sequence[Interval],
    state: Mapping[str, Any] | None = None,
    account: AccountTerms | None = None,
) -> Deduction:
    """Amount to deduct for ``new_intervals`` given the persisted accumulator ``state``.

    ``amount`` = round(cost to date) - round(cost to the previous reading), per month
    touched (``by_month``) and in total. It can be negative when a monthly power factor
    improves. Persist ``state`` of the result and pass it next time.
    """
    accumulator = RatingAccumulator.from_state(tariff=tariff, account=account, state=state)
    touched = sorted({month_key(interval.start) for interval in new_intervals})
    before = {month: accumulator.month_total(month) for month in touched}
    accumulator.add(new_intervals)
    by_month = {month: accumulator.month_total(month) - before[month] for month in touched}
    return Deduction(sum(by_month.values(), _ZERO), by_month, accumulator.to_state())


def incremental_charge_from_intervals(
    *,
    tariff: Tariff,
    intervals_so_far: Sequence[Interval],
    new_intervals: Sequence[Interval],
    account: AccountTerms | None = None,
) -> Deduction:
    """Like :func:`incremental_charge`, rebuilding the state from all earlier intervals."""
    accumulator = RatingAccumulator(tariff=tariff, account=account)
    accumulator.add(intervals_so_far)
    return incremental_charge(
        tariff=tariff, new_intervals=new_intervals, state=accumulator.to_state(), account=account
    )


@dataclass(frozen=True, slots=True)
class Rerating:
    original: Bill
    corrected: Bill
    difference: tuple[Line, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.difference), _ZERO)


def rerate(
    *,
    original: Tariff,
    corrected: Tariff,
    intervals: Sequence[Interval],
    account: AccountTerms | None = None,
) -> Rerating:
    """Rate past data again with a corrected tariff; the difference is one line per month."""
    before = rate(tariff=original, intervals=intervals, account=account)
    after = rate(tariff=corrected, intervals=intervals, account=account)
    before_totals, after_totals = before.month_totals(), after.month_totals()
    difference: list[Line] = []
    for month in sorted(set(before_totals) | set(after_totals)):
        delta = after_totals.get(month, _ZERO) - before_totals.get(month, _ZERO)
        if delta != 0:
            difference.append(
                Line(
                    month=month,
                    component="rerate",
                    label=f"re-rating {month} with corrected tariff {corrected.id}",
                    quantity=_ONE,
                    unit="month",
                    unit_price=delta,
                    amount=delta,
                )
            )
    return Rerating(before, after, tuple(difference))
