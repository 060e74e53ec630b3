"""Refunds: paying back part or all of a wallet, and paying out refunds recorded as owed."""

from __future__ import annotations

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
    channel_parse,
    entry_post,
    wallet_code,
    wallet_locked,
)
from meterpay.apps.supply.services import movement_post
from meterpay.core import ledger
from meterpay.core.ledger import IdempotencyConflict
from meterpay.core.money import to_minor

type Actor = Any


@transaction.atomic
def refund_payout(*, actor: Actor, entry: JournalEntry, channel: str) -> JournalEntry:
    """Pay out a refund that was recorded as owed (refunds payable), once.

    Dr refunds payable, Cr the channel. The payout's reference names the refund entry, and the
    refund row is locked, so a second click (with any channel) cannot pay twice.
    """
    refund = JournalEntry.objects.select_for_update().get(pk=entry.pk)
    payable = refund.postings.filter(ledger_account__code="refunds_payable").first()
    if refund.kind != JournalEntry.Kind.REFUND or payable is None:
        raise WalletError({"entry": "only a refund recorded as owed can be paid out"})
    reference = f"entry-{refund.pk}"
    paid: JournalEntry | None = JournalEntry.objects.filter(
        organisation_id=refund.organisation_id,
        kind=JournalEntry.Kind.REFUND_PAYOUT,
        reference=reference,
    ).first()
    if paid is not None:
        return paid
    chosen = channel_parse(channel)
    built = ledger.build_refund_payout(
        amount_minor=-payable.amount,
        channel=chosen,
        reference=reference,
        occurred_at=timezone.now(),
        currency=refund.currency,
    )
    posted = entry_post(
        actor=actor,
        organisation_id=refund.organisation_id,
        entry=built,
        kind=JournalEntry.Kind.REFUND_PAYOUT,
        account=refund.account,
        channel=chosen,
        reference=reference,
    )
    return posted.entry


@transaction.atomic
def refund_record(
    *,
    actor: Actor,
    account: Account,
    amount: Decimal | str | None,
    channel: str,
    idempotency_key: str,
    paid_out: bool = True,
    memo: str = "",
    evaluate: bool = True,
) -> JournalEntry:
    """Pay back part (``amount``) or all (``amount=None``) of the wallet.

    A refund can never exceed the balance. A replay of the same key returns the stored refund.
    """
    account = Account.objects.get(pk=account.pk)
    account_check_open(account, allow_closed=True)
    wallet = wallet_locked(account)
    chosen = channel_parse(channel)
    key = (idempotency_key or "").strip()
    if not key:
        raise WalletError({"idempotency_key": "a refund needs an idempotency key"})
    value = None if amount in (None, "") else amount_parse(amount, wallet.currency)
    ledger_key = ledger.make_idempotency_key(
        movement="refund", parts=[wallet_code(account.pk), key]
    )
    stored: JournalEntry | None = JournalEntry.objects.filter(
        organisation_id=account.organisation_id, idempotency_key=ledger_key
    ).first()
    if stored is not None:
        if value is not None and stored.wallet_amount != -to_minor(value, wallet.currency):
            raise IdempotencyConflict(f"refund {key!r} was recorded with another amount")
        return stored
    try:
        entry = ledger.build_refund(
            account_id=str(account.pk),
            available_minor=wallet.balance_minor,
            channel=chosen,
            reference=key,
            occurred_at=timezone.now(),
            amount=value,
            paid_out=paid_out,
            currency=wallet.currency,
            memo=memo,
        )
    except ledger.LedgerError as exc:
        raise WalletError({"amount": str(exc)}) from None
    posted = movement_post(
        actor=actor,
        entry=entry,
        kind=JournalEntry.Kind.REFUND,
        account=account,
        channel=chosen,
        reference=key,
        evaluate=evaluate,
    )
    return posted.entry
