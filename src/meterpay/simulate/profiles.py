"""Consumption profiles and a simple time-of-use (TOU) clock.

Profiles are deterministic hourly shapes (a factor per hour of day, 0..1) times a
peak demand, with a weekend factor; good enough to make readings move plausibly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from enum import IntEnum


class Tariff(IntEnum):
    """DL/T 645 tariff numbers 1-4, stored 0-based."""

    SHARP = 0
    PEAK = 1
    FLAT = 2
    VALLEY = 3


@dataclass(frozen=True, slots=True)
class TouSchedule:
    """Tariff periods as (start time, tariff), sorted; the last one wraps past midnight."""

    periods: tuple[tuple[time, Tariff], ...]

    def tariff_at(self, moment: datetime) -> Tariff:
        clock = moment.time()
        current = self.periods[-1][1]
        for start, tariff in self.periods:
            if clock >= start:
                current = tariff
        return current


#: A typical commercial TOU day (sharp in the evening peak, valley overnight).
DEFAULT_TOU = TouSchedule(
    (
        (time(0, 0), Tariff.VALLEY),
        (time(8, 0), Tariff.FLAT),
        (time(10, 0), Tariff.PEAK),
        (time(12, 0), Tariff.FLAT),
        (time(18, 0), Tariff.PEAK),
        (time(19, 0), Tariff.SHARP),
        (time(21, 0), Tariff.PEAK),
        (time(22, 0), Tariff.FLAT),
        (time(23, 0), Tariff.VALLEY),
    )
)


@dataclass(frozen=True, slots=True)
class ConsumptionProfile:
    """Demand (kW for electricity, m³/h for water) by hour of day."""

    name: str
    peak: Decimal
    hourly: tuple[float, ...]  # 24 factors
    weekend_factor: float = 1.0

    def demand(self, moment: datetime) -> Decimal:
        factor = self.hourly[moment.hour]
        if moment.weekday() >= 5:
            factor *= self.weekend_factor
        return (self.peak * Decimal(str(round(factor, 4)))).quantize(Decimal("0.0001"))


def _shape(*pairs: tuple[range, float], base: float) -> tuple[float, ...]:
    hours = [base] * 24
    for hours_range, factor in pairs:
        for hour in hours_range:
            hours[hour] = factor
    return tuple(hours)


SHOP = ConsumptionProfile(
    "shop", Decimal("6.0"), _shape((range(9, 21), 0.8), (range(12, 14), 1.0), base=0.05), 1.1
)
DORM_ROOM = ConsumptionProfile(
    "dorm room",
    Decimal("2.0"),
    _shape((range(6, 8), 0.5), (range(18, 24), 0.9), (range(0, 1), 0.6), base=0.08),
    1.2,
)
OFFICE = ConsumptionProfile(
    "office", Decimal("10.0"), _shape((range(8, 18), 0.9), (range(12, 13), 0.6), base=0.1), 0.15
)
PUBLIC_AREA = ConsumptionProfile(
    "public area", Decimal("3.0"), _shape((range(18, 24), 1.0), (range(0, 6), 0.6), base=0.2)
)
WATER_HOUSEHOLD = ConsumptionProfile(
    "water household",
    Decimal("0.6"),
    _shape((range(6, 9), 0.7), (range(11, 13), 0.4), (range(18, 22), 1.0), base=0.02),
    1.2,
)

PROFILES = {
    p.name.replace(" ", "_"): p for p in (SHOP, DORM_ROOM, OFFICE, PUBLIC_AREA, WATER_HOUSEHOLD)
}
