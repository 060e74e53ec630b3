"""Writes to the ledger: every money movement goes through :func:`entry_post`, which

* takes a validated :class:`meterpay.core.ledger.JournalEntry` (the pure builders make them),
* locks the wallets it touches (``select_for_update``, in primary-key order),
* stores the entry once per idempotency key (a retry with the same postings returns the stored
  entry; different postings raise :class:`IdempotencyConflict`),
* checks again that the stored postings sum to zero (PostgreSQL also checks it with a deferred
  constraint trigger), and updates the cached wallet balance in the same transaction.

The movements themselves (recharges, refunds, deductions, fees, reversals, settlement) live in
the apps that own them (payments, billing); they evaluate the wallet's supply rules through
:func:`meterpay.apps.supply.services.movement_post`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Sum
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, LedgerAccount, Posting, Wallet
from meterpay.apps.organisations.models import Organisation
from meterpay.core import ledger
from meterpay.core.ledger import Channel, IdempotencyConflict
from meterpay.core.money import MoneyError, parse_amount

type Actor = Any

__all__ = ["IdempotencyConflict"]


class WalletError(ValidationError):
    """A wallet operation that breaks a rule (bad amount, closed account, too large a refund)."""


def actor_user(actor: Actor) -> Any:
    return actor if isinstance(actor, models.Model) else None


def actor_label(actor: Actor) -> str:
    return (getattr(actor, "username", None) or str(actor))[:150]


def wallet_code(account_id: int) -> str:
    return ledger.wallet_account(str(account_id)).code


def ledger_account_get(organisation_id: int, code: str) -> LedgerAccount:
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
    code_account = ledger_account_get(account.organisation_id, wallet_code(account.pk))
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


def wallet_locked(account: Account) -> Wallet:
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
                created_by=actor_user(actor),
                actor_label=actor_label(actor),
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
                ledger_account=ledger_account_get(organisation_id, p.account),
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


def amount_parse(value: Decimal | str, currency: str, field: str = "amount") -> Decimal:
    if isinstance(value, float):
        raise WalletError({field: "money is never a float"})
    try:
        amount = parse_amount(str(value), currency)
    except MoneyError as exc:
        raise WalletError({field: str(exc)}) from None
    if amount <= 0:
        raise WalletError({field: "the amount must be positive"})
    return amount


def account_check_open(account: Account, *, allow_closed: bool = False) -> None:
    if account.status == Account.Status.PRESET:
        raise WalletError({"account": "the account is not open yet"})
    if account.status == Account.Status.CLOSED and not allow_closed:
        raise WalletError({"account": "the account is closed"})


def order_number(prefix: str = "MP") -> str:
    return f"{prefix}{timezone.now():%Y%m%d%H%M%S}{secrets.token_hex(4).upper()}"


def channel_parse(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        raise WalletError({"channel": f"unknown channel {value!r}"}) from None
