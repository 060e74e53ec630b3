"""Reads for remote control: the command log and what the gateway should send next."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from meterpay.apps.control.models import (
    BalanceDiscrepancy,
    MeterBalance,
    MeterCommand,
    MeterSupplyState,
)
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
    """Due pending commands of meters with no other command in flight, oldest first.

    Credit commands of a meter go one after the other, in the order they were requested.
    """
    in_flight = MeterCommand.objects.filter(
        meter=OuterRef("meter"),
        status__in=(MeterCommand.Status.SENT, MeterCommand.Status.ACKNOWLEDGED),
    )
    older_credit = MeterCommand.objects.filter(
        meter=OuterRef("meter"),
        kind__in=MeterCommand.CREDIT_KINDS,
        status__in=MeterCommand.OPEN_STATUSES,
        id__lt=OuterRef("id"),
    )
    qs = (
        MeterCommand.objects.filter(
            status=MeterCommand.Status.PENDING,
            next_attempt_at__lte=now,
            meter__gateway__identifier__in=list(gateway_identifiers),
        )
        .exclude(Exists(in_flight))
        .exclude(Q(kind__in=MeterCommand.CREDIT_KINDS) & Q(Exists(older_credit)))
        .select_related("meter__gateway", "meter__organisation")
        .order_by("created_at", "id")
    )
    return list(qs[:limit])


def meter_balance(meter: Meter) -> MeterBalance | None:
    return MeterBalance.objects.filter(meter=meter).first()


def open_credit_commands(meters: Iterable[Meter]) -> QuerySet[MeterCommand]:
    """Credit downloads and energy refunds not finished yet, oldest first."""
    return MeterCommand.objects.filter(
        meter__in=list(meters),
        kind__in=MeterCommand.CREDIT_KINDS,
        status__in=MeterCommand.OPEN_STATUSES,
    ).order_by("id")


def discrepancies(
    *,
    base: QuerySet[BalanceDiscrepancy] | None = None,
    meters: Iterable[Meter] | None = None,
    open_only: bool = True,
) -> QuerySet[BalanceDiscrepancy]:
    """Newest first; of ``base`` (e.g. one organisation's) when given."""
    qs = (BalanceDiscrepancy.objects.all() if base is None else base).select_related(
        "meter", "cleared_by"
    )
    if meters is not None:
        qs = qs.filter(meter__in=list(meters))
    if open_only:
        qs = qs.filter(cleared_at__isnull=True)
    return qs.order_by("-detected_at", "-id")
