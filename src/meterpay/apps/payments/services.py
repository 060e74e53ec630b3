"""Recharges at the counter: cash (posted at once) and bank transfers (posted when finance
confirms).

Online payments come through :mod:`meterpay.apps.payments.online`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.services import (
    Posted,
    WalletError,
    account_check_open,
    actor_label,
    actor_user,
    amount_parse,
    channel_parse,
    order_number,
    wallet_for,
)
from meterpay.apps.payments.meter_credit import recharge_download
from meterpay.apps.payments.models import Recharge
from meterpay.apps.supply.services import movement_post
from meterpay.core import ledger
from meterpay.core.ledger import Channel, IdempotencyConflict
from meterpay.core.money import from_minor, to_minor

type Actor = Any


COUNTER_CHANNELS = (Channel.CASH, Channel.BANK_TRANSFER)


@transaction.atomic
def recharge_record(
    *,
    actor: Actor,
    account: Account,
    amount: Decimal | str,
    channel: str,
    idempotency_key: str,
    reference: str = "",
) -> tuple[Recharge, bool]:
    """Record money paid in at the counter: cash (posted now) or bank transfer (pending).

    Returns ``(recharge, created)``. The same ``idempotency_key`` with the same account, amount
    and channel returns the stored recharge (``created`` False); with different content it
    raises :class:`IdempotencyConflict`. Online payments come through
    :mod:`meterpay.apps.payments.online` instead.
    """
    account = Account.objects.get(pk=account.pk)
    wallet = wallet_for(account)
    chosen = channel_parse(channel)
    if chosen not in COUNTER_CHANNELS:
        raise WalletError({"channel": "online payments are recorded by their notification"})
    value = amount_parse(amount, wallet.currency)
    minor = to_minor(value, wallet.currency)
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200:
        raise WalletError({"idempotency_key": "an idempotency key of 1 to 200 characters"})

    def replay() -> Recharge | None:
        stored = Recharge.objects.filter(
            organisation_id=account.organisation_id, idempotency_key=key
        ).first()
        if stored is None:
            return None
        if (stored.account_id, stored.amount_minor, stored.channel) != (account.pk, minor, chosen):
            raise IdempotencyConflict(f"idempotency key {key!r} was used for another recharge")
        return stored

    stored = replay()
    if stored is not None:
        return stored, False
    account_check_open(account)
    try:
        with transaction.atomic():
            recharge = Recharge.objects.create(
                organisation_id=account.organisation_id,
                number=order_number("C" if chosen is Channel.CASH else "B"),
                account=account,
                channel=chosen,
                amount_minor=minor,
                currency=wallet.currency,
                status=Recharge.Status.PENDING,
                idempotency_key=key,
                reference=reference.strip()[:120],
                created_by=actor_user(actor),
                actor_label=actor_label(actor),
            )
    except IntegrityError:
        stored = replay()
        if stored is None:
            raise
        return stored, False
    audit_record(
        actor=actor,
        action="recharge.record",
        obj=recharge,
        after={"amount": str(value), "channel": chosen.value, "account": account.pk},
    )
    if chosen is Channel.CASH:
        _recharge_post(actor=actor, recharge=recharge)
    return recharge, True


def _recharge_post(
    *, actor: Actor, recharge: Recharge, occurred_at: datetime | None = None
) -> None:
    entry = ledger.build_recharge(
        account_id=str(recharge.account_id),
        amount=from_minor(recharge.amount_minor, recharge.currency),
        channel=Channel(recharge.channel),
        reference=recharge.number,
        occurred_at=occurred_at or timezone.now(),
        currency=recharge.currency,
        memo=f"recharge {recharge.number} by {recharge.channel}",
    )
    recharge_credit(
        actor=actor,
        recharge=recharge,
        entry=entry,
        reference=recharge.reference or recharge.number,
        paid_at=entry.occurred_at,
    )


def recharge_credit(
    *,
    actor: Actor,
    recharge: Recharge,
    entry: ledger.JournalEntry,
    reference: str,
    paid_at: datetime | None,
    provider_fields: dict[str, str] | None = None,
) -> Posted:
    """Credit a recharge's money, at the counter or online: its entry posted once and the wallet
    evaluated, the order marked paid (the first time) with the balance after it, and a
    meter-side account's money downloaded to its meter. A replay changes nothing."""
    posted = movement_post(
        actor=actor,
        entry=entry,
        kind=JournalEntry.Kind.RECHARGE,
        account=recharge.account,
        channel=recharge.channel,
        reference=reference,
    )
    if not posted.created:
        return posted
    if recharge.entry_id is None:
        wallet = Wallet.objects.get(account_id=recharge.account_id)  # locked by the posting
        recharge.status = Recharge.Status.PAID
        recharge.entry = posted.entry
        recharge.paid_at = paid_at
        recharge.balance_after_minor = wallet.balance_minor
        fields = ["status", "entry", "paid_at", "balance_after_minor"]
        for name, value in (provider_fields or {}).items():
            setattr(recharge, name, value)
            fields.append(name)
        recharge.save(update_fields=fields)
    recharge_download(actor=actor, entry=posted.entry)
    return posted


@transaction.atomic
def recharge_confirm(*, actor: Actor, recharge: Recharge) -> Recharge:
    """Finance confirms a pending bank transfer: the wallet is credited now."""
    recharge = (
        Recharge.objects.select_for_update(of=("self",))
        .select_related("account")
        .get(pk=recharge.pk)
    )
    if recharge.status == Recharge.Status.PAID:
        return recharge
    if recharge.channel != Channel.BANK_TRANSFER or recharge.status != Recharge.Status.PENDING:
        raise WalletError({"recharge": "only a pending bank transfer can be confirmed"})
    recharge.confirmed_by = actor_user(actor)
    recharge.save(update_fields=["confirmed_by"])
    _recharge_post(actor=actor, recharge=recharge)
    audit_record(actor=actor, action="recharge.confirm", obj=recharge, after={"status": "paid"})
    return recharge


@transaction.atomic
def recharge_cancel(*, actor: Actor, recharge: Recharge, reason: str = "") -> Recharge:
    """A pending recharge (unconfirmed transfer, unpaid online order) is closed."""
    recharge = Recharge.objects.select_for_update().get(pk=recharge.pk)
    if recharge.status != Recharge.Status.PENDING:
        raise WalletError({"recharge": "only a pending recharge can be cancelled"})
    recharge.status = Recharge.Status.CLOSED
    recharge.provider_status = (reason or "cancelled")[:40]
    recharge.save(update_fields=["status", "provider_status"])
    audit_record(actor=actor, action="recharge.cancel", obj=recharge, after={"reason": reason})
    return recharge
