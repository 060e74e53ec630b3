"""Reads of stored tariffs: the tariff in force for an account, its terms, price summaries,
sample load profiles and the rating preview."""

from __future__ import annotations

import calendar
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from meterpay.apps.customers.models import Account
from meterpay.apps.sites.models import Holiday, Room
from meterpay.apps.tariffs.models import AccountTariff, DefaultTariff, Tariff
from meterpay.core.tariffs import (
    AccountTerms,
    Bill,
    Interval,
    Line,
    RatingAccumulator,
    parse_tariff,
    rerate,
)
from meterpay.core.tariffs import Tariff as EngineTariff
from meterpay.core.tariffs.document import format_months
from meterpay.core.tariffs.model import Schedule, ScheduleRule, TariffVersion, Tiers
from meterpay.core.tariffs.proration import month_key


def engine_tariff(tariff: Tariff) -> EngineTariff:
    """The stored document as the engine's tariff (validated on every write, so it parses)."""
    return parse_tariff(tariff.document)


def tariff_in_force(account: Account, utility: str, at: datetime) -> AccountTariff | None:
    """The account's assignment for ``utility`` that applies at ``at`` (None: none assigned)."""
    return (
        AccountTariff.objects.filter(account=account, utility=utility, effective_from__lte=at)
        .select_related("tariff")
        .order_by("-effective_from")
        .first()
    )


def account_assignments(account: Account) -> QuerySet[AccountTariff]:
    return (
        AccountTariff.objects.filter(account=account)
        .select_related("tariff")
        .order_by("utility", "-effective_from")
    )


def current_assignments(assignments: Sequence[AccountTariff], at: datetime) -> set[int]:
    """Ids of the assignments in force at ``at`` (one per utility) among ``assignments``."""
    in_force: dict[str, AccountTariff] = {}
    for item in assignments:
        if item.effective_from <= at:
            best = in_force.get(item.utility)
            if best is None or item.effective_from > best.effective_from:
                in_force[item.utility] = item
    return {item.pk for item in in_force.values()}


def default_tariffs(organisation_id: int) -> dict[str, DefaultTariff]:
    """The organisation's default tariff per utility."""
    return {
        row.utility: row
        for row in DefaultTariff.objects.filter(organisation_id=organisation_id).select_related(
            "tariff"
        )
    }


class TariffBook:
    """The tariff of an account: its assignment in force, else its organisation's default
    tariff for the utility, with the account terms to rate it by (the assignment's terms, the
    rooms' area, the holidays of the rooms' sites, the move-in and move-out days).

    The one rule for every path that rates an account; for many accounts it loads everything
    in a constant number of queries, and parses each tariff document once.
    """

    def __init__(self, accounts: Iterable[Account]) -> None:
        self.accounts = {account.pk: account for account in accounts}
        ids = list(self.accounts)
        self.assignments: dict[tuple[int, str], list[AccountTariff]] = {}
        for row in (
            AccountTariff.objects.filter(account_id__in=ids)
            .select_related("tariff")
            .order_by("-effective_from")
        ):
            self.assignments.setdefault((row.account_id, row.utility), []).append(row)
        self.defaults: dict[tuple[int, str], DefaultTariff] = {
            (row.organisation_id, row.utility): row
            for row in DefaultTariff.objects.filter(
                organisation_id__in={a.organisation_id for a in self.accounts.values()}
            ).select_related("tariff")
        }
        self.area: dict[int, Decimal] = {}
        self.sites: dict[int, set[int]] = {}
        for account_id, area, site_id in Room.objects.filter(accounts__in=ids).values_list(
            "accounts", "area_m2", "floor__building__site_id"
        ):
            self.area[account_id] = self.area.get(account_id, Decimal(0)) + area
            self.sites.setdefault(account_id, set()).add(site_id)
        self.holidays: dict[int, set[date]] = {}
        for site_id, day in Holiday.objects.filter(
            site_id__in={site for sites in self.sites.values() for site in sites}
        ).values_list("site_id", "date"):
            self.holidays.setdefault(site_id, set()).add(day)
        self._parsed: dict[int, EngineTariff] = {}

    def _engine(self, tariff: Tariff) -> EngineTariff:
        if tariff.pk not in self._parsed:
            self._parsed[tariff.pk] = engine_tariff(tariff)
        return self._parsed[tariff.pk]

    def assignment(self, account: Account, utility: str, at: datetime) -> AccountTariff | None:
        for row in self.assignments.get((account.pk, utility), []):
            if row.effective_from <= at:
                return row
        return None

    def in_force(
        self, account: Account, utility: str, at: datetime
    ) -> tuple[EngineTariff, AccountTerms] | None:
        """The engine's tariff and the account terms at ``at``; None: the account has no tariff."""
        row = self.assignment(account, utility, at)
        if row is not None:
            return self._engine(row.tariff), self.terms(account, row)
        default = self.defaults.get((account.organisation_id, utility))
        if default is None:
            return None
        return self._engine(default.tariff), self.terms(account, None)

    def terms(self, account: Account, assignment: AccountTariff | None) -> AccountTerms:
        holidays: set[date] = set()
        for site_id in self.sites.get(account.pk, ()):
            holidays |= self.holidays.get(site_id, set())
        thresholds = None
        scale = Decimal(1)
        capacity = contract = None
        if assignment is not None:
            scale = assignment.tier_threshold_scale
            if assignment.tier_thresholds:
                thresholds = tuple(Decimal(t) for t in assignment.tier_thresholds)
            capacity = assignment.capacity_kva
            contract = assignment.contract_demand_kw
        return AccountTerms(
            holidays=frozenset(holidays),
            tier_threshold_scale=scale,
            tier_thresholds=thresholds,
            capacity_kva=capacity,
            contract_demand_kw=contract,
            room_area_m2=self.area.get(account.pk),
            move_in=account.move_in_on,
            move_out=account.move_out_on,
        )


def account_terms(account: Account, assignment: AccountTariff | None = None) -> AccountTerms:
    """``AccountTerms`` for rating ``account`` (see :class:`TariffBook`)."""
    return TariffBook([account]).terms(account, assignment)


def account_tariff(
    account: Account, utility: str, at: datetime
) -> tuple[EngineTariff, AccountTerms] | None:
    """The tariff ``account`` is rated with for ``utility`` at ``at`` (see :class:`TariffBook`)."""
    return TariffBook([account]).in_force(account, utility, at)


# ------------------------------------------------------------------------ price summary


@dataclass(frozen=True)
class SummaryItem:
    component: str
    text: str


def _rule_text(rule: ScheduleRule) -> str:
    days = "/".join(sorted(rule.day_types)) if len(rule.day_types) < 3 else "all days"
    windows = ", ".join(
        f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}-"
        f"{w.end_minute // 60:02d}:{w.end_minute % 60:02d} {w.period}"
        for w in rule.windows
    )
    default = f"; otherwise {rule.default_period}" if rule.default_period else ""
    return f"months {format_months(rule.months)}, {days}: {windows}{default}"


def _tiers_text(tiers: Tiers, unit: str) -> str:
    steps = []
    lower = "0"
    for step in tiers.steps:
        upper = "∞" if step.up_to is None else f"{step.up_to:f}"
        if step.price is not None:
            what = f"{step.price:f}/{unit}"
        elif step.period_prices:
            what = ", ".join(f"{p} {v:f}" for p, v in step.period_prices.items())
        else:
            what = f"+{step.increment:f}/{unit}"
        steps.append(f"{lower}-{upper} {unit}: {what}")
        lower = upper
    period = "per year" if tiers.cumulation == "year" else "per month"
    return f"tiers ({period}): " + "; ".join(steps)


def _schedule_items(schedule: Schedule) -> list[SummaryItem]:
    items = [SummaryItem("critical peak", _rule_text(rule)) for rule in schedule.critical_peak]
    items += [SummaryItem("time of use", _rule_text(rule)) for rule in schedule.rules]
    if schedule.rules and any(rule.default_period is None for rule in schedule.rules):
        items.append(SummaryItem("time of use", f"otherwise {schedule.default_period}"))
    return items


def version_summary(version: TariffVersion, currency: str) -> list[SummaryItem]:
    """Readable lines describing one version's prices, component by component."""
    items: list[SummaryItem] = []
    energy = version.energy
    if energy is not None:
        prices = ", ".join(f"{p.name} {p.price:f}" for p in energy.periods)
        items.append(SummaryItem("energy", f"{prices} {currency}/kWh"))
        if len(energy.periods) > 1:
            items += _schedule_items(energy.schedule)
        if energy.tiers is not None:
            items.append(SummaryItem("tiers", _tiers_text(energy.tiers, "kWh")))
    if version.basic is not None:
        basic = version.basic
        unit = "kVA" if basic.method == "capacity" else "kW of max demand"
        text = f"{basic.price:f} {currency}/{unit}/month"
        if basic.overrun_threshold is not None:
            text += (
                f"; demand above contract x {basic.overrun_threshold:f} "
                f"at x {basic.overrun_multiplier:f}"
            )
        if basic.minimum_fraction is not None:
            text += f"; at least contract x {basic.minimum_fraction:f}"
        items.append(SummaryItem("basic charge", text))
    if version.demand is not None:
        for period in version.demand.periods:
            tiers = ", ".join(f"{t.price:f}" for t in period.tiers)
            items.append(SummaryItem("demand", f"{period.name}: {tiers} {currency}/kW"))
        for season in version.demand.flat:
            tiers = ", ".join(f"{t.price:f}" for t in season.tiers)
            items.append(
                SummaryItem(
                    "demand",
                    f"monthly peak, months {format_months(season.months)}: {tiers} {currency}/kW",
                )
            )
    if version.power_factor is not None:
        pf = version.power_factor
        applies = ", ".join(sorted(pf.applies_to))
        items.append(SummaryItem("power factor", f"standard {pf.standard:f} (on {applies})"))
    if version.water is not None:
        water = version.water
        items.append(SummaryItem("water", f"{water.price:f} {currency}/m³"))
        if water.tiers is not None:
            items.append(SummaryItem("tiers", _tiers_text(water.tiers, "m³")))
        for surcharge in water.surcharges:
            items.append(
                SummaryItem("surcharge", f"{surcharge.name} {surcharge.price:f} {currency}/m³")
            )
    for charge in version.fixed_charges:
        items.append(SummaryItem("fixed", f"{charge.name} {charge.amount:f} {currency}/month"))
    if version.minimum_charge is not None:
        items.append(
            SummaryItem("minimum", f"at least {version.minimum_charge:f} {currency}/month")
        )
    for item in version.custom_items:
        basis = "/m²" if item.basis == "per_area" else ""
        prorate = "" if item.prorate else ", not pro-rated"
        items.append(
            SummaryItem(
                "custom",
                f"{item.name} {item.amount:f} {currency}{basis} {item.frequency}{prorate}",
            )
        )
    return items


@dataclass(frozen=True)
class VersionRow:
    index: int
    effective_from: datetime
    until: datetime | None
    state: str  # past, current, scheduled
    summary: list[SummaryItem]


def version_rows(tariff: EngineTariff, now: datetime) -> list[VersionRow]:
    """Every version with its state at ``now`` (local) and a readable price summary."""
    rows = []
    versions = tariff.versions
    for index, version in enumerate(versions):
        until = versions[index + 1].effective_from if index + 1 < len(versions) else None
        if version.effective_from > now:
            state = "scheduled"
        elif until is not None and until <= now:
            state = "past"
        else:
            state = "current"
        rows.append(
            VersionRow(
                index,
                version.effective_from,
                until,
                state,
                version_summary(version, tariff.currency),
            )
        )
    return rows


def version_at(tariff: EngineTariff, moment: datetime) -> TariffVersion:
    """The version in force at ``moment`` (the first one before the tariff starts)."""
    chosen = tariff.versions[0]
    for version in tariff.versions:
        if version.effective_from <= moment:
            chosen = version
    return chosen


def tou_day(tariff: EngineTariff, day: date) -> dict[str, Any] | None:
    """Each hour's TOU period and energy price on ``day`` (for a chart); None without TOU."""
    version = version_at(tariff, datetime.combine(day, datetime.min.time()))
    energy = version.energy
    if energy is None or len(energy.periods) < 2:
        return None
    prices = {p.name: p.price for p in energy.periods}
    day_type = "weekend" if day.weekday() >= 5 else "weekday"
    hours = []
    for hour in range(24):
        period = energy.schedule.period_at(day.month, day_type, hour * 60)
        hours.append({"hour": f"{hour:02d}:00", "period": period, "price": str(prices[period])})
    return {"day": day.isoformat(), "day_type": day_type, "hours": hours}


# ------------------------------------------------------------------------ sample profiles

# Hourly load shapes in watt-hours per hour (integers: no float anywhere near a bill).
_SHOP = (
    [300] * 9
    + [1500, 3200, 3600, 3800, 3700, 3500, 3500, 3600, 3900, 4200, 4400, 4300, 3600, 900]
    + [300]
)
_DORMITORY = [
    80,
    60,
    60,
    60,
    60,
    60,
    90,
    350,
    300,
    120,
    100,
    100,
    250,
    200,
    120,
    120,
    150,
    250,
    450,
    520,
    560,
    600,
    480,
    200,
]
_OFFICE = [9000] * 7 + [
    18000,
    52000,
    70000,
    74000,
    72000,
    60000,
    66000,
    73000,
    72000,
    68000,
    50000,
    26000,
    16000,
    12000,
    10000,
    9000,
    9000,
]
# Litres per hour for a dormitory room's water.
_WATER = [2, 1, 1, 1, 1, 2, 12, 28, 20, 6, 4, 5, 10, 8, 4, 4, 5, 10, 22, 30, 34, 26, 14, 4]

SAMPLE_PROFILES: dict[str, tuple[str, list[int], str]] = {
    # name: (label, hourly shape, utility)
    "shop": ("Mall shop (open 10:00-22:00)", _SHOP, "electricity"),
    "dormitory": ("Dormitory room (mornings and evenings)", _DORMITORY, "electricity"),
    "office": ("Office floor (weekdays 08:00-19:00, with reactive energy)", _OFFICE, "electricity"),
    "water": ("Dormitory room water", _WATER, "water"),
}
STEPS_MINUTES = (60, 15)


def sample_intervals(
    profile: str, *, year: int, month: int, step_minutes: int = 60
) -> list[Interval]:
    """A deterministic month of intervals for ``profile`` (same input, same data)."""
    _label, shape, utility = SAMPLE_PROFILES[profile]
    rng = random.Random(f"{profile}-{year}-{month}-{step_minutes}")
    parts = 60 // step_minutes
    start = datetime(year, month, 1)
    days = calendar.monthrange(year, month)[1]
    intervals = []
    for day in range(days):
        weekend = (start + timedelta(days=day)).weekday() >= 5
        for hour in range(24):
            base = shape[hour]
            if weekend and profile == "office":
                base = shape[0]
            elif weekend and profile in ("shop", "dormitory", "water"):
                base = base * 115 // 100
            for part in range(parts):
                amount = base * rng.randrange(85, 116) // 100 // parts  # ±15 % noise
                begin = start + timedelta(days=day, hours=hour, minutes=part * step_minutes)
                quantity = Decimal(amount) / 1000  # Wh → kWh, L → m³
                kvarh = None
                if profile == "office":
                    kvarh = Decimal(amount * 52 // 100) / 1000  # power factor ≈ 0.89
                intervals.append(
                    Interval(
                        start=begin,
                        end=begin + timedelta(minutes=step_minutes),
                        quantity=quantity,
                        kvarh=kvarh if utility == "electricity" else None,
                    )
                )
    return intervals


# ------------------------------------------------------------------------ preview


@dataclass(frozen=True)
class Preview:
    bill: Bill
    daily_costs: list[tuple[str, Decimal]]
    difference: tuple[Line, ...] = ()
    compared_with: str = ""

    @property
    def several_versions(self) -> bool:
        """True when the lines come from more than one tariff version (then lines say which)."""
        return len({line.version_from for line in self.bill.lines}) > 1

    @property
    def difference_total(self) -> Decimal:
        return sum((line.amount for line in self.difference), Decimal(0))


def rate_preview(
    *,
    tariff: EngineTariff,
    intervals: Sequence[Interval],
    account: AccountTerms,
    original: EngineTariff | None = None,
    compared_with: str = "",
) -> Preview:
    """Rate ``intervals``; the cost per day (as prepaid deducts it) and, with ``original``, the
    re-rating difference lines (``corrected`` is ``tariff``)."""
    ordered = sorted(intervals, key=lambda interval: interval.start)
    accumulator = RatingAccumulator(tariff=tariff, account=account)
    daily: list[tuple[str, Decimal]] = []
    by_day: dict[date, list[Interval]] = {}
    for interval in ordered:
        by_day.setdefault(interval.start.date(), []).append(interval)
    for day, day_intervals in by_day.items():
        month = month_key(day)
        before = accumulator.month_total(month)
        accumulator.add(day_intervals)
        daily.append((day.isoformat(), accumulator.month_total(month) - before))
    bill = accumulator.bill()
    difference: tuple[Line, ...] = ()
    if original is not None:
        difference = rerate(
            original=original, corrected=tariff, intervals=ordered, account=account
        ).difference
    return Preview(bill, daily, difference, compared_with)
