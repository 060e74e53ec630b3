"""Postings of rated consumption and charges: deductions, rating credits, fees, reversals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.ledger.services import (
    WalletError,
    account_check_open,
    amount_parse,
    stored_entry,
    wallet_locked,
)
from meterpay.apps.supply.services import movement_post
from meterpay.core import ledger
from meterpay.core.ledger import ChargeType

type Actor = Any


@transaction.atomic
def deduction_post(
    *,
    actor: Actor,
    account: Account,
    lines: Sequence[tuple[ChargeType, Decimal]],
    reference: str,
    occurred_at: datetime,
    memo: str = "",
    evaluate: bool = True,
) -> JournalEntry | None:
    """Deduct rated consumption (one revenue line per charge); None if it rounds to nothing.

    ``reference`` names the rated period, so a retry of the same period posts once.
    """
    wallet = wallet_locked(account)
    try:
        entry = ledger.build_deduction(
            account_id=str(account.pk),
            lines=lines,
            reference=reference,
            occurred_at=occurred_at,
            currency=wallet.currency,
            memo=memo,
        )
    except ledger.NothingToPost:
        return None
    except ledger.LedgerError as exc:
        raise WalletError({"lines": str(exc)}) from None
    posted = movement_post(
        actor=actor,
        entry=entry,
        kind=JournalEntry.Kind.DEDUCTION,
        account=account,
        reference=reference,
        evaluate=evaluate,
    )
    return posted.entry


@transaction.atomic
def fee_charge(
    *,
    actor: Actor,
    account: Account,
    amount: Decimal | str,
    fee_code: str,
    reference: str,
    memo: str = "",
) -> JournalEntry:
    """Charge a fee (card replacement, late payment…) to the wallet."""
    wallet = wallet_locked(account)
    account_check_open(account)
    value = amount_parse(amount, wallet.currency)
    try:
        entry = ledger.build_fee(
            account_id=str(account.pk),
            amount=value,
            fee_code=fee_code,
            reference=reference,
            occurred_at=timezone.now(),
            currency=wallet.currency,
            memo=memo,
        )
    except ledger.LedgerError as exc:
        raise WalletError({"fee_code": str(exc)}) from None
    posted = movement_post(
        actor=actor,
        entry=entry,
        kind=JournalEntry.Kind.FEE,
        account=account,
        reference=reference,
    )
    return posted.entry


@transaction.atomic
def entry_reverse(*, actor: Actor, entry: JournalEntry, reason: str) -> JournalEntry:
    """Undo an entry with its mirror image (once); the original stays as it was."""
    entry = JournalEntry.objects.select_related("account").get(pk=entry.pk)
    if not reason.strip():
        raise WalletError({"reason": "a reversal needs a reason"})
    if entry.kind == JournalEntry.Kind.REVERSAL:
        raise WalletError({"entry": "a reversal is not reversed; post the right entry instead"})
    if entry.kind == JournalEntry.Kind.METER_CREDIT:
        raise WalletError({"entry": "money on the meter follows its download or energy refund"})
    reversal = ledger.build_reversal(
        original=stored_entry(entry), occurred_at=timezone.now(), reason=reason.strip()
    )
    posted = movement_post(
        actor=actor,
        organisation_id=entry.organisation_id,
        entry=reversal,
        kind=JournalEntry.Kind.REVERSAL,
        account=entry.account,
        channel=entry.channel,
        reference=entry.reference,
        reverses=entry,
    )
    return posted.entry
