"""Custom charge items (rent, property fee, service fee, anything a manager names) due in a
billing period.

Rules (also in docs/billing.md); the proration itself is
:func:`meterpay.core.tariffs.proration.overlap_share`, the same as the tariff engine's:

- A periodic item runs in cycles anchored on its ``day_of_month`` (1-28): a monthly cycle
  runs from that day of one month to the same day of the next (a rent cycle 15th -> 14th);
  quarterly cycles start in January, April, July and October, yearly cycles in January,
  on that day.
- The item applies during the service period ``[move_in 00:00, move_out + 1 day 00:00)``
  intersected with its validity ``[valid_from 00:00, valid_to + 1 day 00:00)``: the move-in,
  move-out and ``valid_to`` days are billed. A missing date leaves that side open.
- A cycle with any service in it is billed once, in the billing period that contains the
  moment its service begins within the cycle: the cycle start, or the move-in (or
  ``valid_from``) when that is later. A tenant moving in on the 10th therefore pays the rest
  of that cycle in the bill of the period containing the 10th.
- With ``prorate`` the cycle's price is multiplied by the share of the cycle covered by the
  service (seconds, which equals days / days); without it the whole cycle is charged.
- One-time items are billed once, unprorated, in the period containing the start of service
  (the later of move-in and ``valid_from``); with neither date they are due in the period
  asked for, under a key that does not depend on the period, so the store charges them once.
- Per-unit items (per kWh or m³ of a meter) are billed every billing period with service in
  it, on the meter's consumption in that period (proration 1); their frequency and day of
  month do not apply. A consumption cannot be split at a date, so the rule valid on the
  period's first day prices the whole period: change a per-unit price on a period boundary.
- ``amount = round_money(quantity x unit_price x proration)``, rounded once per due.
- Every due carries a ``key`` naming the item and its cycle (``rent/2025-03-01``), so
  re-running a period returns the same keys and a cycle is never charged twice. When a rule
  starts inside a cycle (a new price from the 1st for a rent cycle on the 15th), its part of
  that cycle is keyed ``rent/2025-06-15/from-2025-07-01``, apart from the old price's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from meterpay.core.money import MoneyError, round_money, to_minor
from meterpay.core.tariffs.proration import overlap_share, service_bounds

USAGE_UNITS = frozenset({"kWh", "m3"})


class ChargeError(ValueError):
    """An item or an input that cannot be charged: a missing area or usage, a bad date."""


class Basis(StrEnum):
    FIXED = "fixed"
    PER_AREA = "per_area"
    PER_UNIT = "per_unit"  # per kWh or m³ of a meter


class Frequency(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    ONE_TIME = "one_time"


_MONTHS_PER_CYCLE = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.YEARLY: 12}
_UNIT_BY_FREQUENCY = {
    Frequency.MONTHLY: "month",
    Frequency.QUARTERLY: "quarter",
    Frequency.YEARLY: "year",
    Frequency.ONE_TIME: "once",
}


@dataclass(frozen=True, slots=True)
class ChargeItemRule:
    """A charge item as the manager set it up.

    ``unit_price`` is per month, quarter or year for ``fixed``; per m² per cycle for
    ``per_area``; per kWh or m³ for ``per_unit``. ``valid_to`` is the last day it applies.
    """

    code: str
    name: str
    basis: Basis
    unit_price: Decimal
    frequency: Frequency
    day_of_month: int = 1
    prorate: bool = True
    valid_from: date | None = None
    valid_to: date | None = None

    def __post_init__(self) -> None:
        if not self.code.strip():
            raise ChargeError(f"charge item {self.name!r} needs a code")
        try:
            Basis(self.basis)
            Frequency(self.frequency)
        except ValueError as error:
            raise ChargeError(f"charge item {self.code!r}: {error}") from None
        if not isinstance(self.unit_price, Decimal) or not self.unit_price.is_finite():
            raise ChargeError(
                f"charge item {self.code!r}: the unit price must be a Decimal, "
                f"got {self.unit_price!r}"
            )
        if (
            not isinstance(self.day_of_month, int)
            or isinstance(self.day_of_month, bool)
            or not 1 <= self.day_of_month <= 28
        ):
            raise ChargeError(
                f"charge item {self.code!r}: the cycle day must be 1 to 28 "
                f"(every month has it), got {self.day_of_month!r}"
            )
        if (
            self.valid_from is not None
            and self.valid_to is not None
            and self.valid_to < self.valid_from
        ):
            raise ChargeError(
                f"charge item {self.code!r}: valid to {self.valid_to} is before "
                f"valid from {self.valid_from}"
            )


@dataclass(frozen=True, slots=True)
class ChargeDue:
    """One charge to put on a bill; ``cycle_end`` is exclusive; ``key`` is its idempotency part."""

    code: str
    name: str
    cycle_start: date
    cycle_end: date
    quantity: Decimal
    unit: str
    unit_price: Decimal
    proration: Decimal
    amount: Decimal
    amount_minor: int
    key: str


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _anchored(month_index: int, day_of_month: int) -> date:
    return date(month_index // 12, month_index % 12 + 1, day_of_month)


def billing_cycle(*, item: ChargeItemRule, moment: date) -> tuple[date, date]:
    """The cycle ``[start, end)`` of a periodic ``item`` that contains ``moment``."""
    try:
        step = _MONTHS_PER_CYCLE[Frequency(item.frequency)]
    except KeyError:
        raise ChargeError(f"charge item {item.code!r} is one-time: it has no cycles") from None
    index = _month_index(moment)
    start_index = index - index % step
    if start_index == index and moment.day < item.day_of_month:
        start_index -= step
    return (
        _anchored(start_index, item.day_of_month),
        _anchored(start_index + step, item.day_of_month),
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _applicable(
    *, item: ChargeItemRule, move_in: date | None, move_out: date | None
) -> tuple[datetime | None, datetime | None]:
    """Service period intersected with the item's validity; either side may be open."""
    service_start, service_end = service_bounds(move_in=move_in, move_out=move_out)
    valid_start, valid_end = service_bounds(move_in=item.valid_from, move_out=item.valid_to)
    starts = [moment for moment in (service_start, valid_start) if moment is not None]
    ends = [moment for moment in (service_end, valid_end) if moment is not None]
    return (max(starts) if starts else None), (min(ends) if ends else None)


def _quantity(
    *,
    item: ChargeItemRule,
    room_area_m2: Decimal | None,
    usage: Decimal | None,
    usage_unit: str,
) -> tuple[Decimal, str]:
    match Basis(item.basis):
        case Basis.FIXED:
            return Decimal(1), _UNIT_BY_FREQUENCY[Frequency(item.frequency)]
        case Basis.PER_AREA:
            if room_area_m2 is None:
                raise ChargeError(
                    f"charge item {item.name!r} is per m² but the room area is unknown"
                )
            if not isinstance(room_area_m2, Decimal) or not room_area_m2 > 0:
                raise ChargeError(
                    f"charge item {item.name!r} is per m² but the room area is {room_area_m2}; "
                    "it must be a positive Decimal"
                )
            return room_area_m2, "m2"
        case Basis.PER_UNIT:
            if usage_unit not in USAGE_UNITS:
                raise ChargeError(
                    f"charge item {item.name!r}: the usage unit must be kWh or m3, "
                    f"got {usage_unit!r}"
                )
            if usage is None:
                raise ChargeError(
                    f"charge item {item.name!r} is per {usage_unit} but the meter's "
                    "consumption in the period is missing"
                )
            if not isinstance(usage, Decimal) or not usage.is_finite() or usage < 0:
                raise ChargeError(
                    f"charge item {item.name!r}: the consumption must be a Decimal of at "
                    f"least 0, got {usage!r}"
                )
            return usage, usage_unit
    raise ChargeError(f"unknown basis {item.basis!r}")  # pragma: no cover - exhaustive above


def _cycle_key(*, item: ChargeItemRule, cycle_start: date, cycle_end: date) -> str:
    """``code/cycle start``; a rule that starts inside the cycle (a price change) adds its start,
    so the old and the new price of one code each charge their part of that cycle."""
    key = f"{item.code}/{cycle_start.isoformat()}"
    if item.valid_from is not None and cycle_start < item.valid_from < cycle_end:
        key += f"/from-{item.valid_from.isoformat()}"
    return key


def _due(
    *,
    item: ChargeItemRule,
    cycle_start: date,
    cycle_end: date,
    quantity: Decimal,
    unit: str,
    proration: Decimal,
    key: str,
    currency: str,
) -> ChargeDue:
    try:
        amount = round_money(quantity * item.unit_price * proration, currency)
        amount_minor = to_minor(amount, currency)
    except MoneyError as error:
        raise ChargeError(f"charge item {item.name!r}: {error}") from None
    return ChargeDue(
        code=item.code,
        name=item.name,
        cycle_start=cycle_start,
        cycle_end=cycle_end,
        quantity=quantity,
        unit=unit,
        unit_price=item.unit_price,
        proration=proration,
        amount=amount,
        amount_minor=amount_minor,
        key=key,
    )


def charges_due(
    *,
    item: ChargeItemRule,
    period_start: date,
    period_end: date,
    move_in: date | None,
    move_out: date | None,
    room_area_m2: Decimal | None = None,
    usage: Decimal | None = None,
    usage_unit: str = "kWh",
    currency: str = "CNY",
) -> list[ChargeDue]:
    """What ``item`` charges in the billing period ``[period_start, period_end)``, by cycle.

    ``usage`` is the meter's consumption in the period, needed by per-unit items only.
    """
    if period_end <= period_start:
        raise ChargeError(f"the billing period {period_start} to {period_end} is empty")
    if move_in is not None and move_out is not None and move_out < move_in:
        raise ChargeError(f"the move-out {move_out} is before the move-in {move_in}")
    quantity, unit = _quantity(
        item=item, room_area_m2=room_area_m2, usage=usage, usage_unit=usage_unit
    )
    period_from, period_to = _midnight(period_start), _midnight(period_end)
    one = Decimal(1)

    if Basis(item.basis) is Basis.PER_UNIT:
        # The usage cannot be split at a date inside the period: the price valid on the
        # period's first day applies to the whole period.
        in_force = (item.valid_from is None or item.valid_from <= period_start) and (
            item.valid_to is None or period_start <= item.valid_to
        )
        service_start, service_end = service_bounds(move_in=move_in, move_out=move_out)
        served = overlap_share(
            cycle_start=period_from,
            cycle_end=period_to,
            part_start=service_start,
            part_end=service_end,
        )
        if not in_force or served == 0:
            return []
        return [
            _due(
                item=item,
                cycle_start=period_start,
                cycle_end=period_end,
                quantity=quantity,
                unit=unit,
                proration=one,
                key=f"{item.code}/{period_start.isoformat()}",
                currency=currency,
            )
        ]

    start, end = _applicable(item=item, move_in=move_in, move_out=move_out)
    if start is not None and end is not None and end <= start:
        return []

    if Frequency(item.frequency) is Frequency.ONE_TIME:
        if start is not None:
            if not period_from <= start < period_to:
                return []
            billed_on = start.date()
        else:
            if end is not None and end <= period_from:
                return []
            billed_on = period_start
        return [
            _due(
                item=item,
                cycle_start=billed_on,
                cycle_end=billed_on + timedelta(days=1),
                quantity=quantity,
                unit=unit,
                proration=one,
                key=f"{item.code}/once",
                currency=currency,
            )
        ]

    dues = []
    cycle_start, cycle_end = billing_cycle(item=item, moment=period_start)
    while cycle_start < period_end:
        cycle_from, cycle_to = _midnight(cycle_start), _midnight(cycle_end)
        share = overlap_share(
            cycle_start=cycle_from, cycle_end=cycle_to, part_start=start, part_end=end
        )
        billed_from = cycle_from if start is None else max(cycle_from, start)
        if share > 0 and period_from <= billed_from < period_to:
            dues.append(
                _due(
                    item=item,
                    cycle_start=cycle_start,
                    cycle_end=cycle_end,
                    quantity=quantity,
                    unit=unit,
                    proration=share if item.prorate else one,
                    key=_cycle_key(item=item, cycle_start=cycle_start, cycle_end=cycle_end),
                    currency=currency,
                )
            )
        cycle_start, cycle_end = billing_cycle(item=item, moment=cycle_end)
    return dues
