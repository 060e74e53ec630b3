"""Builders for the reports' database tests: a TOU tariff and readings at any pace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.readings.models import Interval
from meterpay.apps.readings.services import ReadInput, register_reads_record_batch

TOU_TARIFF: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "test-tou",
    "name": "Commercial TOU",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2024-01-01T00:00:00",
            "energy": {
                "periods": [
                    {"name": "sharp", "price": "1.3000"},
                    {"name": "peak", "price": "1.0000"},
                    {"name": "flat", "price": "0.6500"},
                    {"name": "valley", "price": "0.3000"},
                ],
                "schedule": [
                    {
                        "months": "1-12",
                        "windows": [
                            {"start": "00:00", "end": "08:00", "period": "valley"},
                            {"start": "08:00", "end": "10:00", "period": "peak"},
                            {"start": "10:00", "end": "11:00", "period": "sharp"},
                            {"start": "11:00", "end": "12:30", "period": "peak"},
                            {"start": "18:00", "end": "22:00", "period": "peak"},
                            {"start": "23:00", "end": "24:00", "period": "valley"},
                        ],
                        "default_period": "flat",
                    }
                ],
            },
        }
    ],
}


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour, minute))


def profile(moment: datetime) -> Decimal:
    """kWh of a quarter hour: busy by day, a little base load at night, quieter weekends."""
    at = timezone.localtime(moment)
    base = Decimal("0.25") if at.hour < 6 or at.hour >= 22 else Decimal("1.5")
    if at.weekday() >= 5:
        base = base / 2
    return base + Decimal(at.minute) / 100


def read_series(
    meter: Any,
    *,
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(minutes=15),
    first_total: Decimal = Decimal("1000"),
    skip: Sequence[datetime] = (),
    scale: Decimal = Decimal(1),
) -> Decimal:
    """Reads from ``start`` to ``end`` every ``step`` (leaving out ``skip``); the last total."""
    reads = []
    total = first_total
    moment = start
    while moment <= end:
        if moment not in skip:
            reads.append(
                ReadInput(meter_id=meter.pk, read_at=moment, total=total, expected_interval=step)
            )
        moment += step
        total += profile(moment) * scale
    for index in range(0, len(reads), 2000):
        register_reads_record_batch(reads=reads[index : index + 2000])
    return total


def booked(meter_ids: Sequence[int], since: datetime, until: datetime) -> Decimal:
    """Booked consumption of intervals ending in ``(since, until]``."""
    total = Interval.objects.filter(
        meter_id__in=meter_ids, booked=True, end_at__gt=since, end_at__lte=until
    ).aggregate(s=Sum("consumption"))["s"]
    return Decimal(total or 0).quantize(Decimal("0.0001"))


def deducted(account_id: int, since: datetime, until: datetime) -> int:
    """What the ledger's deductions took from the account in ``(since, until]``."""
    total = JournalEntry.objects.filter(
        account_id=account_id, kind="deduction", occurred_at__gt=since, occurred_at__lte=until
    ).aggregate(s=Sum("wallet_amount"))["s"]
    return -int(total or 0)
