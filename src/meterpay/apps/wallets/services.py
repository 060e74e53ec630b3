"""Writes to the ledger and wallets: recharge, refund, deduction, fee, reversal, settlement.

Every money movement goes through :func:`entry_post`, which

* takes a validated :class:`meterpay.core.ledger.JournalEntry` (the pure builders make them),
* locks the wallets it touches (``select_for_update``, in primary-key order),
* stores the entry once per idempotency key (a retry with the same postings returns the stored
  entry; different postings raise :class:`IdempotencyConflict`),
* checks again that the stored postings sum to zero (PostgreSQL also checks it with a deferred
  constraint trigger), and updates the cached wallet balance in the same transaction.

The functions here call :func:`meterpay.apps.wallets.supply.wallet_evaluate` after a wallet
changes, so alarms and cut-off / restore commands are written in the same transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Sum
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers import services as customer_services
from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.wallets.models import (
    JournalEntry,
    LedgerAccount,
    Posting,
    Recharge,
    Wallet,
)
from meterpay.core import ledger
from meterpay.core.ledger import Channel, ChargeType, IdempotencyConflict
from meterpay.core.money import MoneyError, from_minor, parse_amount, to_minor

type Actor = Any

__all__ = [
    "IdempotencyConflict",
    "WalletError",
    "account_settle",
    "account_settle_and_close",
    "deduction_credit",
    "deduction_post",
    "entry_post",
    "entry_reverse",
    "fee_charge",
    "recharge_cancel",
    "recharge_confirm",
    "recharge_record",
    "refund_payout",
    "refund_record",
    "settle_on_close",
    "wallet_for",
]


class WalletError(ValidationError):
    """A wallet operation that breaks a rule (bad amount, closed account, too large a refund)."""


def _user(actor: Actor) -> Any:
    return actor if isinstance(actor, models.Model) else None


def _label(actor: Actor) -> str:
    return (getattr(actor, "username", None) or str(actor))[:150]


def wallet_code(account_id: int) -> str:
    return ledger.wallet_account(str(account_id)).code


def _ledger_account(organisation_id: int, code: str) -> LedgerAccount:
    parsed = ledger.parse_account(code)
    found = LedgerAccount.objects.filter(organisation_id=organisation_id, code=code).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(
                organisation_id=organisation_id, code=code, kind=str(parsed.kind)
            )
    except IntegrityError:  # created concurrently
        return LedgerAccount.objects.get(organisation_id=organisation_id, code=code)


def wallet_for(account: Account) -> Wallet:
    """The account's wallet, created (empty) on first use."""
    wallet = Wallet.objects.filter(account_id=account.pk).first()
    if wallet is not None:
        return wallet
    organisation = Organisation.objects.get(pk=account.organisation_id)
    code_account = _ledger_account(account.organisation_id, wallet_code(account.pk))
    try:
        with transaction.atomic():
            return Wallet.objects.create(
                organisation_id=account.organisation_id,
                account_id=account.pk,
                ledger_account=code_account,
                currency=organisation.currency,
            )
    except IntegrityError:
        return Wallet.objects.get(account_id=account.pk)


def _locked_wallet(account: Account) -> Wallet:
    wallet = wallet_for(account)
    return (
        Wallet.objects.select_for_update(of=("self",)).select_related("account").get(pk=wallet.pk)
    )


def stored_entry(row: JournalEntry) -> ledger.JournalEntry:
    """The pure-core view of a stored entry (for check_replay and reversals)."""
    return ledger.JournalEntry(
        idempotency_key=row.idempotency_key,
        occurred_at=row.occurred_at,
        memo=row.memo,
        postings=tuple(
            ledger.Posting(p.ledger_account.code, int(p.amount), row.currency)
            for p in row.postings.select_related("ledger_account").order_by("pk")
        ),
    )


@dataclass(frozen=True, slots=True)
class Posted:
    entry: JournalEntry
    created: bool  # False: the same entry was stored before (a harmless retry)


def entry_post(
    *,
    actor: Actor,
    organisation_id: int,
    entry: ledger.JournalEntry,
    kind: str,
    account: Account | None = None,
    channel: str = "",
    reference: str = "",
    reverses: JournalEntry | None = None,
) -> Posted:
    """Store one balanced entry once and update the wallets it touches. See the module doc."""
    ledger.validate_postings(entry.postings)  # the core already did; the service checks too
    wallet_codes = sorted({p.account for p in entry.postings if p.account.startswith("wallet:")})
    wallets: list[Wallet] = []
    for code in wallet_codes:
        owner = Account.objects.filter(
            organisation_id=organisation_id, pk=int(code.split(":", 1)[1])
        ).first()
        if owner is None:
            raise WalletError({"account": f"no account for {code} in this organisation"})
        wallets.append(wallet_for(owner))
    wallets = list(
        Wallet.objects.select_for_update()
        .filter(pk__in=[w.pk for w in wallets])
        .select_related("ledger_account")
        .order_by("pk")
    )

    def replay() -> Posted | None:
        stored = JournalEntry.objects.filter(
            organisation_id=organisation_id, idempotency_key=entry.idempotency_key
        ).first()
        if stored is None:
            return None
        ledger.check_replay(stored=stored_entry(stored), proposed=entry)
        return Posted(stored, False)

    found = replay()
    if found is not None:
        return found
    wallet_amount = -sum(p.amount for p in entry.postings if p.account in wallet_codes)
    try:
        with transaction.atomic():
            row = JournalEntry.objects.create(
                organisation_id=organisation_id,
                idempotency_key=entry.idempotency_key,
                occurred_at=entry.occurred_at,
                memo=entry.memo[:255],
                kind=kind,
                channel=channel,
                reference=reference[:120],
                account=account,
                wallet_amount=wallet_amount,
                currency=entry.currency,
                created_by=_user(actor),
                actor_label=_label(actor),
                reverses=reverses,
            )
    except IntegrityError:  # the same key committed concurrently
        found = replay()
        if found is None:
            raise
        return found
    Posting.objects.bulk_create(
        [
            Posting(
                organisation_id=organisation_id,
                entry=row,
                ledger_account=_ledger_account(organisation_id, p.account),
                amount=p.amount,
            )
            for p in entry.postings
        ]
    )
    total = Posting.objects.filter(entry=row).aggregate(total=Sum("amount"))["total"]
    if total != 0:  # pragma: no cover - the core makes this impossible; belt and braces
        raise ledger.UnbalancedEntry(f"entry {entry.idempotency_key} sums to {total}")
    for wallet in wallets:
        delta = sum(p.amount for p in entry.postings if p.account == wallet.ledger_account.code)
        wallet.balance_minor -= delta
        wallet.save(update_fields=["balance_minor", "updated_at"])
    audit_record(
        actor=actor,
        action=f"ledger.{kind}",
        obj=row,
        after={
            "key": row.idempotency_key,
            "postings": [[p.account, p.amount] for p in entry.postings],
            "memo": row.memo,
        },
    )
    return Posted(row, True)


def _evaluate(wallet: Wallet, *, now: datetime | None = None) -> None:
    from meterpay.apps.wallets.supply import wallet_evaluate

    wallet_evaluate(wallet=wallet, now=now or timezone.now())


def _amount(value: Decimal | str, currency: str, field: str = "amount") -> Decimal:
    if isinstance(value, float):
        raise WalletError({field: "money is never a float"})
    try:
        amount = parse_amount(str(value), currency)
    except MoneyError as exc:
        raise WalletError({field: str(exc)}) from None
    if amount <= 0:
        raise WalletError({field: "the amount must be positive"})
    return amount


def _check_open(account: Account, *, allow_closed: bool = False) -> None:
    if account.status == Account.Status.PRESET:
        raise WalletError({"account": "the account is not open yet"})
    if account.status == Account.Status.CLOSED and not allow_closed:
        raise WalletError({"account": "the account is closed"})


def _order_number(prefix: str = "MP") -> str:
    return f"{prefix}{timezone.now():%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise WalletError({"channel": f"unknown channel {value!r}"}) from None


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
    :mod:`meterpay.apps.wallets.payments` instead.
    """
    account = Account.objects.get(pk=account.pk)
    wallet = wallet_for(account)
    chosen = _channel(channel)
    if chosen not in COUNTER_CHANNELS:
        raise WalletError({"channel": "online payments are recorded by their notification"})
    value = _amount(amount, wallet.currency)
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
    _check_open(account)
    try:
        with transaction.atomic():
            recharge = Recharge.objects.create(
                organisation_id=account.organisation_id,
                number=_order_number("C" if chosen is Channel.CASH else "B"),
                account=account,
                channel=chosen,
                amount_minor=minor,
                currency=wallet.currency,
                status=Recharge.Status.PENDING,
                idempotency_key=key,
                reference=reference.strip()[:120],
                created_by=_user(actor),
                actor_label=_label(actor),
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
    posted = entry_post(
        actor=actor,
        organisation_id=recharge.organisation_id,
        entry=entry,
        kind=JournalEntry.Kind.RECHARGE,
        account=recharge.account,
        channel=recharge.channel,
        reference=recharge.reference or recharge.number,
    )
    wallet = Wallet.objects.select_for_update().get(account_id=recharge.account_id)
    recharge.status = Recharge.Status.PAID
    recharge.entry = posted.entry
    recharge.paid_at = entry.occurred_at
    recharge.balance_after_minor = wallet.balance_minor
    recharge.save(update_fields=["status", "entry", "paid_at", "balance_after_minor"])
    if posted.created:
        from meterpay.apps.wallets.meter_side import recharge_download

        recharge_download(actor=actor, entry=posted.entry)
    _evaluate(wallet)


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
    recharge.confirmed_by = _user(actor)
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
    paid = JournalEntry.objects.filter(
        organisation_id=refund.organisation_id,
        kind=JournalEntry.Kind.REFUND_PAYOUT,
        reference=reference,
    ).first()
    if paid is not None:
        return paid
    chosen = _channel(channel)
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
    _check_open(account, allow_closed=True)
    wallet = _locked_wallet(account)
    chosen = _channel(channel)
    key = (idempotency_key or "").strip()
    if not key:
        raise WalletError({"idempotency_key": "a refund needs an idempotency key"})
    value = None if amount in (None, "") else _amount(amount, wallet.currency)  # type: ignore[arg-type]
    ledger_key = ledger.make_idempotency_key(
        movement="refund", parts=[wallet_code(account.pk), key]
    )
    stored = JournalEntry.objects.filter(
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
    posted = entry_post(
        actor=actor,
        organisation_id=account.organisation_id,
        entry=entry,
        kind=JournalEntry.Kind.REFUND,
        account=account,
        channel=chosen,
        reference=key,
    )
    if evaluate:
        _evaluate(Wallet.objects.select_for_update().get(pk=wallet.pk))
    return posted.entry


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
    wallet = _locked_wallet(account)
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
    posted = entry_post(
        actor=actor,
        organisation_id=account.organisation_id,
        entry=entry,
        kind=JournalEntry.Kind.DEDUCTION,
        account=account,
        reference=reference,
    )
    if evaluate and posted.created:
        _evaluate(Wallet.objects.select_for_update().get(pk=wallet.pk), now=None)
    return posted.entry


@transaction.atomic
def deduction_credit(
    *,
    actor: Actor,
    account: Account,
    charge_type: ChargeType,
    amount: Decimal,
    reference: str,
    occurred_at: datetime,
    memo: str = "",
) -> JournalEntry:
    """A negative rated amount (e.g. a better monthly power factor): Dr revenue, Cr wallet."""
    wallet = _locked_wallet(account)
    minor = to_minor(amount, wallet.currency)
    if minor <= 0:
        raise WalletError({"amount": "a deduction credit is positive"})
    entry = ledger.JournalEntry(
        idempotency_key=ledger.make_idempotency_key(
            movement="deduction-credit", parts=[wallet_code(account.pk), reference]
        ),
        occurred_at=occurred_at,
        memo=memo or "rating credit",
        postings=(
            ledger.Posting(ledger.revenue_account(charge_type).code, minor, wallet.currency),
            ledger.Posting(wallet_code(account.pk), -minor, wallet.currency),
        ),
    )
    posted = entry_post(
        actor=actor,
        organisation_id=account.organisation_id,
        entry=entry,
        kind=JournalEntry.Kind.DEDUCTION,
        account=account,
        reference=reference,
    )
    _evaluate(Wallet.objects.select_for_update().get(pk=wallet.pk))
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
    wallet = _locked_wallet(account)
    _check_open(account)
    value = _amount(amount, wallet.currency)
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
    posted = entry_post(
        actor=actor,
        organisation_id=account.organisation_id,
        entry=entry,
        kind=JournalEntry.Kind.FEE,
        account=account,
        reference=reference,
    )
    if posted.created:
        _evaluate(Wallet.objects.select_for_update().get(pk=wallet.pk))
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
    posted = entry_post(
        actor=actor,
        organisation_id=entry.organisation_id,
        entry=reversal,
        kind=JournalEntry.Kind.REVERSAL,
        account=entry.account,
        channel=entry.channel,
        reference=entry.reference,
        reverses=entry,
    )
    if entry.account is not None and posted.created:
        _evaluate(Wallet.objects.select_for_update().get(account_id=entry.account_id))
    return posted.entry


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
    wallet = _locked_wallet(account)
    channel = _channel(refund_channel)
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
    from meterpay.apps.wallets.deduction import account_deduct_pending

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
    from meterpay.apps.wallets.deduction import account_deduct_pending

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
