"""Reads of the readings pipeline: history for charts and APIs, consumption per period."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from meterpay.apps.meters.models import Meter
from meterpay.apps.readings.models import Interval, MeterLink, RegisterRead

FOUR_PLACES = Decimal("0.0001")


def register_reads(
    meter: Meter, *, since: datetime | None = None, limit: int | None = None
) -> QuerySet[RegisterRead]:
    """The meter's reads, newest first."""
    qs = RegisterRead.objects.filter(meter=meter).order_by("-read_at")
    if since is not None:
        qs = qs.filter(read_at__gte=since)
    return qs[:limit] if limit else qs


def intervals(meter: Meter, *, since: datetime | None = None) -> QuerySet[Interval]:
    qs = Interval.objects.filter(meter=meter).order_by("end_at")
    return qs.filter(end_at__gt=since) if since is not None else qs


def consumption_by_bucket(
    meter: Meter,
    *,
    since: datetime,
    until: datetime | None = None,
    bucket: timedelta = timedelta(hours=1),
) -> list[tuple[datetime, Decimal]]:
    """Booked consumption per bucket, each interval spread evenly over its span (the gap rule).

    Buckets start at ``since`` and are ``bucket`` long; every bucket up to ``until`` is listed.
    """
    until = until or timezone.now()
    totals: dict[int, Decimal] = defaultdict(Decimal)
    bucket_seconds = Decimal(bucket.total_seconds())
    for interval in intervals(meter, since=since).filter(booked=True, start_at__lt=until):
        span = Decimal((interval.end_at - interval.start_at).total_seconds())
        if span <= 0:
            continue
        start = max(interval.start_at, since)
        end = min(interval.end_at, until)
        index = int(Decimal((start - since).total_seconds()) // bucket_seconds)
        while start < end:
            bucket_end = min(since + bucket * (index + 1), end)
            share = Decimal((bucket_end - start).total_seconds()) / span
            totals[index] += interval.consumption * share
            start, index = bucket_end, index + 1
    count = int(Decimal((until - since).total_seconds()) // bucket_seconds) + 1
    return [(since + bucket * i, totals[i].quantize(FOUR_PLACES)) for i in range(count)]


def meter_link(meter: Meter) -> MeterLink | None:
    return MeterLink.objects.filter(meter=meter).first()


def flagged_intervals(meter: Meter, *, limit: int = 20) -> QuerySet[Interval]:
    return Interval.objects.filter(meter=meter, booked=False).order_by("-end_at")[:limit]


def rooms_with_link_state(rooms: QuerySet[Any]) -> QuerySet[Any]:
    """Annotate rooms with ``meters_offline`` / ``meters_online`` (installed meters only)."""
    meters = Meter.objects.filter(room=OuterRef("pk"), removed_on__isnull=True)
    return rooms.annotate(
        meters_offline=Exists(meters.filter(link__online=False)),
        meters_online=Exists(meters.filter(link__online=True)),
    )
