"""The tariff model: frozen dataclasses holding Decimals, built by :mod:`.document`.

A :class:`Tariff` has versions; each :class:`TariffVersion` applies to intervals that start
at or after its ``effective_from`` (naive local wall-clock time) until the next version.
A version combines any of the components below. See docs/tariffs.md for the JSON form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

DayType = Literal["weekday", "weekend", "holiday"]
DAY_TYPES: tuple[DayType, ...] = ("weekday", "weekend", "holiday")
Cumulation = Literal["month", "year"]
Frequency = Literal["monthly", "quarterly", "yearly", "one_time"]
Commodity = Literal["electricity", "water"]
ContractRule = Literal["cn_two_part"]
CONTRACT_RULES: tuple[ContractRule, ...] = ("cn_two_part",)
# China's two-part tariff billed by contract maximum demand: up to 105 % of the contract
# demand the contract demand is billed; the part above 105 % is billed at twice the price.
CN_TWO_PART_OVERRUN_THRESHOLD = Decimal("1.05")
MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Minutes of the day ``[start_minute, end_minute)``; wraps midnight when start > end."""

    start_minute: int
    end_minute: int
    period: str

    def contains(self, minute_of_day: int) -> bool:
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute_of_day < self.end_minute
        return minute_of_day >= self.start_minute or minute_of_day < self.end_minute


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """Applies on the listed months and day types; the first window containing the time wins."""

    months: frozenset[int]
    day_types: frozenset[DayType]
    windows: tuple[TimeWindow, ...]
    default_period: str | None = None

    def matches(self, month: int, day_type: DayType) -> bool:
        return month in self.months and day_type in self.day_types


@dataclass(frozen=True, slots=True)
class Schedule:
    """Maps a local time to a period name.

    Order of precedence: critical-peak rules (only their windows), then the first matching
    rule (its windows, then its ``default_period``), then the schedule's ``default_period``.
    """

    default_period: str
    rules: tuple[ScheduleRule, ...] = ()
    critical_peak: tuple[ScheduleRule, ...] = ()

    def period_at(self, month: int, day_type: DayType, minute_of_day: int) -> str:
        for rule in self.critical_peak:
            if rule.matches(month, day_type):
                for window in rule.windows:
                    if window.contains(minute_of_day):
                        return window.period
        for rule in self.rules:
            if rule.matches(month, day_type):
                for window in rule.windows:
                    if window.contains(minute_of_day):
                        return window.period
                if rule.default_period is not None:
                    return rule.default_period
                break
        return self.default_period


@dataclass(frozen=True, slots=True)
class PricePeriod:
    name: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class TierStep:
    """One step of a stepped price; ``up_to`` is cumulative over the cumulation period.

    The unit price in this step for a period is, in order of precedence: ``period_prices``
    [period], ``price``, or the period's own price plus ``increment``.
    """

    up_to: Decimal | None
    increment: Decimal = Decimal(0)
    price: Decimal | None = None
    period_prices: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tiers:
    cumulation: Cumulation
    steps: tuple[TierStep, ...]
    year_start_month: int = 1


@dataclass(frozen=True, slots=True)
class EnergyCharge:
    periods: tuple[PricePeriod, ...]
    schedule: Schedule
    tiers: Tiers | None = None


@dataclass(frozen=True, slots=True)
class DemandTier:
    up_to: Decimal | None
    price: Decimal


@dataclass(frozen=True, slots=True)
class BasicCharge:
    """Two-part tariff basic charge, per month.

    ``capacity``: account capacity (kVA) x price. ``max_demand``: the month's highest
    interval-average kW x price; with ``overrun_threshold`` the demand above
    contract x threshold is charged at price x ``overrun_multiplier``; with
    ``minimum_fraction`` the billed demand is at least contract x fraction.

    ``contract_rule`` ``"cn_two_part"`` (两部制电价, 按合同最大需量): while the month's
    maximum demand is at most contract x threshold (default 1.05), the contract demand is
    billed (also below the contract); above it, contract x threshold is billed at the price
    and the demand above it at price x ``overrun_multiplier`` (default 2). The document
    parser fills in the default threshold, so ``overrun_threshold`` is set when parsed.
    """

    method: Literal["capacity", "max_demand"]
    price: Decimal
    overrun_threshold: Decimal | None = None
    overrun_multiplier: Decimal = Decimal(2)
    minimum_fraction: Decimal | None = None
    contract_rule: ContractRule | None = None

    @property
    def needs_contract_demand(self) -> bool:
        """Whether rating needs the account's ``contract_demand_kw``."""
        return (
            self.overrun_threshold is not None
            or self.minimum_fraction is not None
            or self.contract_rule is not None
        )


@dataclass(frozen=True, slots=True)
class DemandPeriod:
    name: str
    tiers: tuple[DemandTier, ...]


@dataclass(frozen=True, slots=True)
class FlatDemandSeason:
    months: frozenset[int]
    tiers: tuple[DemandTier, ...]


@dataclass(frozen=True, slots=True)
class DemandCharge:
    """Utility-style demand charges: per TOU period peak and/or the monthly (flat) peak."""

    periods: tuple[DemandPeriod, ...] = ()
    schedule: Schedule | None = None
    flat: tuple[FlatDemandSeason, ...] = ()


@dataclass(frozen=True, slots=True)
class PowerFactorAdjustment:
    """China's 功率因数调整电费办法; ``standard`` is 0.90, 0.85 or 0.80."""

    standard: Decimal
    applies_to: frozenset[str] = frozenset({"energy", "basic", "demand"})


@dataclass(frozen=True, slots=True)
class Surcharge:
    name: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class WaterCharge:
    price: Decimal
    tiers: Tiers | None = None
    surcharges: tuple[Surcharge, ...] = ()


@dataclass(frozen=True, slots=True)
class FixedCharge:
    name: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CustomItem:
    """Rent, property fee, service fee… ``basis`` ``per_area`` multiplies by the room area."""

    name: str
    amount: Decimal
    basis: Literal["fixed", "per_area"] = "fixed"
    frequency: Frequency = "monthly"
    prorate: bool = True


@dataclass(frozen=True, slots=True)
class TariffVersion:
    effective_from: datetime
    energy: EnergyCharge | None = None
    basic: BasicCharge | None = None
    demand: DemandCharge | None = None
    power_factor: PowerFactorAdjustment | None = None
    water: WaterCharge | None = None
    fixed_charges: tuple[FixedCharge, ...] = ()
    minimum_charge: Decimal | None = None
    custom_items: tuple[CustomItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Tariff:
    id: str
    name: str
    currency: str
    commodity: Commodity
    versions: tuple[TariffVersion, ...]
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountTerms:
    """Per-account parameters the tariff refers to.

    ``move_in`` is the first billed day and ``move_out`` the last billed day (inclusive).
    ``tier_thresholds`` replaces the tariff's thresholds; otherwise they are multiplied by
    ``tier_threshold_scale`` (e.g. household-size scaling). ``tier_usage_carried_in`` is the
    consumption already counted in the tier cumulation period of the first rated interval.
    """

    holidays: frozenset[date] = frozenset()
    tier_threshold_scale: Decimal = Decimal(1)
    tier_thresholds: tuple[Decimal, ...] | None = None
    tier_usage_carried_in: Decimal = Decimal(0)
    capacity_kva: Decimal | None = None
    contract_demand_kw: Decimal | None = None
    room_area_m2: Decimal | None = None
    move_in: date | None = None
    move_out: date | None = None


@dataclass(frozen=True, slots=True)
class Interval:
    """Consumption in ``[start, end)``: kWh for electricity or m³ for water.

    ``kw`` is a meter-reported demand for the interval (otherwise quantity / hours);
    ``period`` forces a TOU period (meter-reported TOU registers).
    """

    start: datetime
    end: datetime
    quantity: Decimal
    kvarh: Decimal | None = None
    kw: Decimal | None = None
    period: str | None = None
