"""Interval rows and ledger entries rolled up into hourly, daily and monthly buckets.

Rules (docs/reports.md):

* A bucket covers ``(start, end]`` in local time: an interval counts in the hour (day, month)
  its **end** falls in, and a ledger entry in the one its ``occurred_at`` falls in, the rule
  of the bills (intervals ending in ``(period start, period end]``) and of the ledger's
  deductions (stamped with the end of the last rated interval). An interval ending at local
  midnight on the 1st belongs to the month before, as on the bill.
* Its period (sharp, peak, flat, valley, other, untimed) is the engine's: by its local start
  (:mod:`meterpay.core.reports.tou`).
* Quantities are integers of 1/10000 kWh or m³ (the readings' four places), so sums are exact
  on every database; money is integer minor units.
* Every interval is counted (``intervals``); only booked ones add consumption. Gap intervals
  (booked in full over missed reads) are ``estimated``; negative and spike intervals are
  ``flagged``. ``seconds`` is the span the booked intervals cover, so a report can say how much
  of a bucket is missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal

from meterpay.core.reports.tou import UNTIMED, TouClassifier

#: Quantities are stored as integers of this fraction of a kWh or m³.
UNITS_PER_QUANTITY = 10_000
#: Local hours ``[0, NIGHT_END_HOUR)`` are night (the base-load window).
NIGHT_END_HOUR = 6
#: The figures of a consumption bucket, in order.
FIGURES: tuple[str, ...] = (
    "quantity",
    "sharp",
    "peak",
    "flat",
    "valley",
    "other",
    "night",
    "intervals",
    "estimated",
    "flagged",
    "seconds",
    "estimated_seconds",
)
(
    QUANTITY,
    SHARP,
    PEAK,
    FLAT,
    VALLEY,
    OTHER,
    NIGHT,
    INTERVALS,
    ESTIMATED,
    FLAGGED,
    SECONDS,
    ESTIMATED_SECONDS,
) = range(len(FIGURES))
#: The figures of a cost bucket: what the entries took from the wallet, and how many.
COST_FIGURES: tuple[str, ...] = ("amount_minor", "entries")
ELECTRICITY, WATER, NOT_METERED = "e", "w", ""
GAP_STATUS = "gap"

_TICK = timedelta(microseconds=1)
_QUARTER_SECONDS = 900
_REFERENCE = re.compile(r"meter-(\d+)(?:/|%2F|$)")


def to_units(quantity: Decimal) -> int:
    """A quantity (kWh or m³, at most four places) as an integer of 1/10000."""
    units = quantity.scaleb(4)
    if units != units.to_integral_value():
        raise ValueError(f"{quantity} has more than four decimal places")
    return int(units)


def from_units(units: int) -> Decimal:
    """Integer 1/10000 units back to a Decimal with four places."""
    return Decimal(units).scaleb(-4)


def meter_of_reference(reference: str) -> int | None:
    """The meter a deduction rated (its reference is ``meter-<id>/<end of the rated
    intervals>``, or names the meter so for a re-rating); None otherwise."""
    found = _REFERENCE.match(reference)
    return int(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class HourBucket:
    """The local hour an instant ends in: its start (aware, UTC), local day, month, hour."""

    hour: datetime
    day: date
    month: date
    local_hour: int


class LocalClock:
    """Local time of one zone: naive local times and the bucket an end falls in (cached).

    Zones' offsets are whole quarter hours, so everything about a local hour is constant
    within a UTC quarter hour, which is the cache key.
    """

    __slots__ = ("_buckets", "_locals", "zone")

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._buckets: dict[int, HourBucket] = {}
        self._locals: dict[datetime, datetime] = {}

    def bucket(self, end: datetime) -> HourBucket:
        """The local hour ``(start, start + 1 h]`` holding the instant ``end``."""
        key = math.ceil(end.timestamp() / _QUARTER_SECONDS) - 1
        found = self._buckets.get(key)
        if found is None:
            local = (end - _TICK).astimezone(self.zone)
            start = local.replace(minute=0, second=0, microsecond=0)
            day = local.date()
            found = HourBucket(start.astimezone(UTC), day, day.replace(day=1), local.hour)
            self._buckets[key] = found
        return found

    def local(self, moment: datetime) -> datetime:
        """Naive local wall-clock time, as the engine rates it."""
        found = self._locals.get(moment)
        if found is None:
            found = moment.astimezone(self.zone).replace(tzinfo=None)
            if len(self._locals) > 100_000:
                self._locals.clear()
            self._locals[moment] = found
        return found

    def day_start(self, day: date) -> datetime:
        """The instant a local day starts (aware)."""
        return datetime(day.year, day.month, day.day, tzinfo=self.zone)


@dataclass(frozen=True, slots=True)
class MeterContext:
    """What an interval's meter says about its buckets: owner, account (0: none), utility
    (``e`` / ``w``), local clock and tariff periods.

    ``later``: the contexts from later moments on (a new tariff assigned), ascending; an
    interval takes the last one whose moment is not after its end (the tariff in force at
    its end, as the deductions find it).
    """

    organisation_id: int
    account_id: int
    utility: str
    clock: LocalClock
    classifier: TouClassifier
    later: tuple[tuple[datetime, MeterContext], ...] = ()

    def at(self, end: datetime) -> MeterContext:
        found = self
        for moment, context in self.later:
            if moment > end:
                break
            found = context
        return found


#: ``(meter_id, start_at, end_at, consumption units, status, booked)``
IntervalRow = tuple[int, datetime, datetime, int, str, bool]
#: ``(organisation_id, account_id, meter_id or 0, utility, occurred_at, amount taken)``
EntryRow = tuple[int, int, int, str, datetime, int]
HourKey = tuple[int, int, datetime]
DayKey = tuple[int, int, date]
#: A bucket row: ``(organisation_id, meter_id, account_id, utility, bucket, *FIGURES)``.
BucketRow = tuple[int | str | datetime | date, ...]


class ConsumptionRollup:
    """Interval rows summed into hour buckets per (meter, account), then days and months."""

    def __init__(self) -> None:
        self.hours: dict[HourKey, list[int]] = {}
        self._where: dict[HourKey, tuple[int, str, date, date]] = {}
        self._slots: dict[tuple[LocalClock, TouClassifier, datetime], int] = {}

    def add(self, rows: Iterable[IntervalRow], contexts: Mapping[int, MeterContext]) -> int:
        """Add interval rows of meters in ``contexts``; returns how many were added."""
        hours, where, slots = self.hours, self._where, self._slots
        count = 0
        for meter_id, start, end, units, status, booked in rows:
            context = contexts[meter_id]
            if context.later:
                context = context.at(end)
            bucket = context.clock.bucket(end)
            key = (meter_id, context.account_id, bucket.hour)
            figures = hours.get(key)
            if figures is None:
                figures = hours[key] = [0] * len(FIGURES)
                where[key] = (
                    context.organisation_id,
                    context.utility,
                    bucket.day,
                    bucket.month,
                )
            count += 1
            figures[INTERVALS] += 1
            if not booked:
                figures[FLAGGED] += 1
                continue
            figures[QUANTITY] += units
            slot_key = (context.clock, context.classifier, start)
            slot = slots.get(slot_key)
            if slot is None:
                slot = context.classifier.slot(context.clock.local(start))
                slots[slot_key] = slot
            if slot != UNTIMED:
                figures[SHARP + slot] += units
            if bucket.local_hour < NIGHT_END_HOUR:
                figures[NIGHT] += units
            seconds = (end - start) // timedelta(seconds=1)
            figures[SECONDS] += seconds
            if status == GAP_STATUS:
                figures[ESTIMATED] += 1
                figures[ESTIMATED_SECONDS] += seconds
        return count

    def _roll(self, index: int) -> dict[DayKey, list[int]]:
        rolled: dict[DayKey, list[int]] = {}
        for key, figures in self.hours.items():
            where = self._where[key]
            bucket = where[2] if index == 2 else where[3]
            target = (key[0], key[1], bucket)
            found = rolled.get(target)
            if found is None:
                rolled[target] = list(figures)
            else:
                for i, value in enumerate(figures):
                    found[i] += value
        return rolled

    def _attributes(self) -> dict[tuple[int, int], tuple[int, str]]:
        return {(key[0], key[1]): where[:2] for key, where in self._where.items()}

    def rows(self, grain: str) -> Iterator[BucketRow]:
        """Bucket rows of ``grain`` (``hour``, ``day`` or ``month``)."""
        if grain == "hour":
            for key, figures in self.hours.items():
                organisation_id, utility = self._where[key][:2]
                yield (organisation_id, key[0], key[1], utility, key[2], *figures)
            return
        attributes = self._attributes()
        rolled = self._roll(2 if grain == "day" else 3)
        for (meter_id, account_id, bucket), figures in rolled.items():
            organisation_id, utility = attributes[(meter_id, account_id)]
            yield (organisation_id, meter_id, account_id, utility, bucket, *figures)

    def __len__(self) -> int:
        return len(self.hours)


class CostRollup:
    """Ledger entries (what they took from the wallet) summed per (account, meter) and day."""

    def __init__(self) -> None:
        self.days: dict[tuple[int, int, date], list[int]] = {}
        self._where: dict[tuple[int, int], tuple[int, str]] = {}

    def add(self, rows: Iterable[EntryRow], clocks: Mapping[int, LocalClock]) -> int:
        """Add entry rows; ``clocks`` holds each organisation's local clock."""
        count = 0
        for organisation_id, account_id, meter_id, utility, occurred_at, amount in rows:
            day = clocks[organisation_id].bucket(occurred_at).day
            key = (account_id, meter_id, day)
            figures = self.days.get(key)
            if figures is None:
                figures = self.days[key] = [0, 0]
                self._where[(account_id, meter_id)] = (organisation_id, utility)
            figures[0] += amount
            figures[1] += 1
            count += 1
        return count

    def rows(self, grain: str) -> Iterator[tuple[int, int, int, str, date, int, int]]:
        """``(organisation_id, account_id, meter_id, utility, day or month, amount, entries)``."""
        rolled: dict[tuple[int, int, date], list[int]] = {}
        for (account_id, meter_id, day), figures in self.days.items():
            bucket = day if grain == "day" else day.replace(day=1)
            found = rolled.setdefault((account_id, meter_id, bucket), [0, 0])
            found[0] += figures[0]
            found[1] += figures[1]
        for (account_id, meter_id, bucket), (amount, entries) in rolled.items():
            organisation_id, utility = self._where[(account_id, meter_id)]
            yield (organisation_id, account_id, meter_id, utility, bucket, amount, entries)

    def __len__(self) -> int:
        return len(self.days)
