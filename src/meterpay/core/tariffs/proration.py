"""Pro-rating of periodic charges on move-in and move-out (pure date arithmetic).

Rules:
* The service period is ``[move_in 00:00, move_out + 1 day 00:00)``: the move-in day and the
  move-out day are both billed. Without ``move_in``/``move_out`` the service is open-ended.
* A charge for a cycle (month, quarter, year) is multiplied by
  ``seconds of service inside the cycle / seconds of the cycle``, which equals billed days /
  days in the cycle when boundaries fall on midnights.
* Quarterly and yearly items are billed once per cycle, in the month in which service in
  that cycle begins: the first month of the calendar quarter/year, or the move-in month.
* One-time items are billed in the move-in month (or, without a move-in date, in the first
  month rated), unprorated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from meterpay.core.tariffs.model import CustomItem

_UNIT_BY_FREQUENCY = {
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
    "one_time": "once",
}


def month_key(moment: datetime | date) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def month_bounds(key: str) -> tuple[datetime, datetime]:
    year, month = int(key[:4]), int(key[5:7])
    start = datetime(year, month, 1)
    end = datetime(year + 1, 1, 1) if month == 12 else datetime(year, month + 1, 1)
    return start, end


def service_bounds(
    *, move_in: date | None, move_out: date | None
) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(move_in, time()) if move_in is not None else None
    end = datetime.combine(move_out + timedelta(days=1), time()) if move_out is not None else None
    return start, end


def overlap_share(
    *,
    cycle_start: datetime,
    cycle_end: datetime,
    part_start: datetime | None,
    part_end: datetime | None,
) -> Decimal:
    """Fraction of ``[cycle_start, cycle_end)`` covered by ``[part_start, part_end)``."""
    start = cycle_start if part_start is None else max(cycle_start, part_start)
    end = cycle_end if part_end is None else min(cycle_end, part_end)
    if end <= start:
        return Decimal(0)
    if start == cycle_start and end == cycle_end:
        return Decimal(1)
    covered = Decimal(int((end - start).total_seconds()))
    return covered / Decimal(int((cycle_end - cycle_start).total_seconds()))


def _cycle(frequency: str, month_start: datetime) -> tuple[datetime, datetime]:
    if frequency == "quarterly":
        first_month = (month_start.month - 1) // 3 * 3 + 1
        start = datetime(month_start.year, first_month, 1)
        end_month = first_month + 3
        end = (
            datetime(start.year + 1, 1, 1) if end_month > 12 else datetime(start.year, end_month, 1)
        )
        return start, end
    if frequency == "yearly":
        return datetime(month_start.year, 1, 1), datetime(month_start.year + 1, 1, 1)
    return month_bounds(month_key(month_start))


@dataclass(frozen=True, slots=True)
class ProratedCharge:
    """``quantity x unit_price x proration`` is the charge (before rounding)."""

    quantity: Decimal
    unit: str
    unit_price: Decimal
    proration: Decimal


def custom_item_charge(
    *,
    item: CustomItem,
    month: str,
    move_in: date | None = None,
    move_out: date | None = None,
    room_area_m2: Decimal | None = None,
    first_rated_month: str | None = None,
) -> ProratedCharge | None:
    """The charge for ``item`` billed in ``month`` ("YYYY-MM"), or ``None`` if none is due."""
    month_start, month_end = month_bounds(month)
    service_start, service_end = service_bounds(move_in=move_in, move_out=move_out)
    if item.basis == "per_area":
        if room_area_m2 is None:
            raise ValueError(f"custom item {item.name!r} is per m² but the room area is unknown")
        quantity, unit = room_area_m2, "m2"
    else:
        quantity, unit = Decimal(1), _UNIT_BY_FREQUENCY[item.frequency]
    if item.frequency == "one_time":
        billing_month = month_key(move_in) if move_in is not None else first_rated_month
        if billing_month != month:
            return None
        return ProratedCharge(quantity, unit, item.amount, Decimal(1))
    cycle_start, cycle_end = _cycle(item.frequency, month_start)
    share = overlap_share(
        cycle_start=cycle_start, cycle_end=cycle_end, part_start=service_start, part_end=service_end
    )
    if share == 0:
        return None
    billed_from = cycle_start if service_start is None else max(cycle_start, service_start)
    if not month_start <= billed_from < month_end:
        return None
    return ProratedCharge(quantity, unit, item.amount, share if item.prorate else Decimal(1))
