"""Reads of wallets and the ledger, shared by the console, the portal and the API."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet


def wallet_of(account: Account) -> Wallet | None:
    try:
        wallet: Wallet = account.wallet
        return wallet
    except Wallet.DoesNotExist:
        return None


def wallet_history(account: Account) -> QuerySet[JournalEntry]:
    return (
        JournalEntry.objects.filter(account=account)
        .select_related("created_by", "reverses")
        .order_by("-occurred_at", "-id")
    )


def ledger_mismatches(organisation_id: int | None = None) -> list[tuple[int, int, int]]:
    """(wallet id, cached balance, -sum of postings) for every wallet where they differ."""
    wallets = Wallet.objects.all()
    if organisation_id is not None:
        wallets = wallets.filter(organisation_id=organisation_id)
    sums = dict(
        Posting.objects.filter(ledger_account__wallet__isnull=False)
        .values_list("ledger_account__wallet")
        .annotate(total=Sum("amount"))
        .values_list("ledger_account__wallet", "total")
    )
    bad = []
    for pk, cached in wallets.values_list("pk", "balance_minor"):
        actual = -int(sums.get(pk) or 0)
        if actual != cached:
            bad.append((pk, cached, actual))
    return bad


def unbalanced_entries() -> list[tuple[int, int]]:
    return [
        (pk, total)
        for pk, total in Posting.objects.values_list("entry")
        .annotate(total=Sum("amount"), n=Count("id"))
        .exclude(total=0)
        .values_list("entry", "total")
    ]


def local_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the current time zone."""
    tz = timezone.get_current_timezone()
    return datetime.combine(start, time(0), tz), datetime.combine(
        end + timedelta(days=1), time(0), tz
    )


def entries_in(organisation_id: int, start: date, end: date) -> QuerySet[JournalEntry]:
    lo, hi = local_bounds(start, end)
    return JournalEntry.objects.filter(
        organisation_id=organisation_id, occurred_at__gte=lo, occurred_at__lt=hi
    )


def postings_by_account(organisation_id: int, start: date, end: date) -> dict[str, int]:
    lo, hi = local_bounds(start, end)
    rows: Any = (
        Posting.objects.filter(
            organisation_id=organisation_id, entry__occurred_at__gte=lo, entry__occurred_at__lt=hi
        )
        .values_list("ledger_account__code")
        .annotate(total=Sum("amount"))
    )
    return {code: int(total) for code, total in rows}
