"""Settlement at move-out: what is left is rated, open orders are cancelled, the wallet is
refunded or its arrears booked as receivable, so it ends at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.deductions import account_deduct_pending
from meterpay.apps.customers import services as customer_services
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.services import (
    WalletError,
    channel_parse,
    entry_post,
    wallet_locked,
)
from meterpay.apps.payments.models import Recharge
from meterpay.apps.payments.services import recharge_cancel
from meterpay.core import ledger
from meterpay.core.ledger import Channel, ChargeType

type Actor = Any


@dataclass(frozen=True, slots=True)
class SettlementResult:
    entries: tuple[JournalEntry, ...]
    refund_minor: int
    arrears_minor: int


@transaction.atomic
def account_settle(
    *,
    actor: Actor,
    account: Account,
    final_charges: Sequence[tuple[ChargeType, Decimal]] = (),
    refund_channel: str = Channel.CASH,
    refund_paid_out: bool = True,
    reference: str = "closure",
) -> SettlementResult:
    """Final charges, then refund of the remainder or arrears to receivable: wallet ends at 0."""
    wallet = wallet_locked(account)
    channel = channel_parse(refund_channel)
    if channel is Channel.FORWARDING:
        raise WalletError({"refund_channel": "refund a forwarding payment through its provider"})
    settlement = ledger.build_settlement(
        account_id=str(account.pk),
        available_minor=wallet.balance_minor,
        final_charges=final_charges,
        reference=reference,
        occurred_at=timezone.now(),
        refund_channel=channel,
        refund_paid_out=refund_paid_out,
        currency=wallet.currency,
    )
    kinds = {
        "deduction": JournalEntry.Kind.DEDUCTION,
        "refund": JournalEntry.Kind.REFUND,
        "arrears": JournalEntry.Kind.ARREARS,
    }
    rows = []
    for entry in settlement.entries:
        movement = entry.idempotency_key.split("/", 1)[0]
        rows.append(
            entry_post(
                actor=actor,
                organisation_id=account.organisation_id,
                entry=entry,
                kind=kinds[movement],
                account=account,
                channel=channel if movement == "refund" else "",
                reference=f"settlement:{reference}",
            ).entry
        )
    wallet.refresh_from_db()
    if wallet.balance_minor != 0:  # pragma: no cover - build_settlement guarantees it
        raise WalletError({"account": "settlement left a balance"})
    if rows:
        audit_record(
            actor=actor,
            action="wallet.settle",
            obj=account,
            after={"refund": settlement.refund_minor, "arrears": settlement.arrears_minor},
        )
    return SettlementResult(tuple(rows), settlement.refund_minor, settlement.arrears_minor)


def settle_on_close(*, actor: Actor, account: Account) -> SettlementResult | None:
    """The ``account_close`` hook: rate what is left, cancel open orders, settle the wallet.

    A remainder is recorded as refunds payable (finance pays it out with
    :func:`refund_payout`); use :func:`account_settle_and_close` to refund at once through a
    chosen channel or to add final charges.
    """
    if (
        account.status == Account.Status.PRESET
        and not Wallet.objects.filter(account=account).exists()
    ):
        return None
    if account.status == Account.Status.OPEN:
        account_deduct_pending(account=account, actor=actor)
    for pending in Recharge.objects.filter(account=account, status=Recharge.Status.PENDING):
        recharge_cancel(actor=actor, recharge=pending, reason="account closed")
    return account_settle(actor=actor, account=account, reference=f"closure-{account.pk}")


@transaction.atomic
def account_settle_and_close(
    *,
    actor: Actor,
    account: Account,
    final_charges: Sequence[tuple[ChargeType, Decimal]] = (),
    refund_channel: str = Channel.CASH,
    refund_paid_out: bool = True,
) -> tuple[Account, SettlementResult]:
    """Move-out with a chosen refund channel and final charges, then close the account."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.status == Account.Status.CLOSED:
        raise WalletError({"status": "the account is closed already"})
    if account.status == Account.Status.OPEN:
        account_deduct_pending(account=account, actor=actor)
    result = account_settle(
        actor=actor,
        account=account,
        final_charges=final_charges,
        refund_channel=refund_channel,
        refund_paid_out=refund_paid_out,
        reference=f"closure-{account.pk}",
    )
    closed = customer_services.account_close(actor=actor, account=account)  # hook: nothing left
    return closed, result
