"""Reads of payments: orders waiting for finance."""

from __future__ import annotations

from django.db.models import QuerySet

from meterpay.apps.payments.models import Recharge


def pending_transfers(organisation_id: int) -> QuerySet[Recharge]:
    return Recharge.objects.filter(
        organisation_id=organisation_id, channel="bank_transfer", status=Recharge.Status.PENDING
    ).select_related("account__customer")
