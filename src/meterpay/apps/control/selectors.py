"""Reads for remote control: the command log and what the gateway should send next."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet

from meterpay.apps.control.models import MeterCommand, MeterSupplyState
from meterpay.apps.meters.models import Meter


def command_log(meter: Meter, *, limit: int | None = 50) -> QuerySet[MeterCommand]:
    qs = (
        MeterCommand.objects.filter(meter=meter)
        .select_related("requested_by_user")
        .order_by("-created_at", "-id")
    )
    return qs[:limit] if limit else qs


def supply_state(meter: Meter) -> MeterSupplyState | None:
    return MeterSupplyState.objects.filter(meter=meter).first()


def commands_due(
    *, gateway_identifiers: Iterable[str], now: datetime, limit: int = 100
) -> list[MeterCommand]:
    """Due pending commands of meters with no other command in flight, oldest first."""
    in_flight = MeterCommand.objects.filter(
        meter=OuterRef("meter"),
        status__in=(MeterCommand.Status.SENT, MeterCommand.Status.ACKNOWLEDGED),
    )
    qs = (
        MeterCommand.objects.filter(
            status=MeterCommand.Status.PENDING,
            next_attempt_at__lte=now,
            meter__gateway__identifier__in=list(gateway_identifiers),
        )
        .exclude(Exists(in_flight))
        .select_related("meter__gateway", "meter__organisation")
        .order_by("created_at", "id")
    )
    return list(qs[:limit])
