"""Meter-side accounts: the money lives on the prepaid meter, the platform downloads it there.

* A recharge credits the wallet as for every account and, in the same transaction, moves the
  amount on to the ``on_meter:<account>`` ledger account and writes a credit download to the
  control outbox (:func:`recharge_download`). The download is keyed by the recharge's entry,
  so a replayed recharge never downloads twice.
* A download that finally fails (refused, timed out) moves its money back to the wallet
  (:func:`credit_finished`); "download the wallet" sends it again.
* An energy refund takes back what the meter holds (:func:`energy_refund_request`); once the
  meter confirms it, the confirmed amount goes back to the wallet and is recorded as a refund
  owed, which finance pays out like any other refund.

The platform neither deducts from nor cuts off a meter-side account: the meter deducts and
trips itself at zero. The meter's own figures are mirrored and compared in
:mod:`meterpay.apps.control.credit`.

"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from meterpay.apps.control import credit
from meterpay.apps.control import selectors as control_selectors
from meterpay.apps.control.models import BalanceDiscrepancy, MeterBalance, MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
from meterpay.apps.ledger.selectors import wallet_of
from meterpay.apps.ledger.services import (
    WalletError,
    entry_post,
    wallet_for,
)
from meterpay.apps.meters.models import Gateway, Meter, Protocol
from meterpay.apps.payments.refunds import refund_record
from meterpay.core import ledger
from meterpay.core.money import from_minor

log = logging.getLogger(__name__)

type Actor = Any


def is_meter_side(account: Account) -> bool:
    return account.billing_side == Account.BillingSide.METER


def prepaid_meter(account: Account) -> Meter | None:
    """The meter a meter-side account's money is downloaded to: its installed DL/T 645
    electricity meter behind a DTU or serial server (the lowest id when there are several)."""
    return (
        Meter.objects.filter(
            account_id=account.pk,
            removed_on__isnull=True,
            gateway__kind__in=(Gateway.Kind.DTU_4G, Gateway.Kind.SERIAL_SERVER),
            protocol=Protocol.DLT645,
        )
        .exclude(kind=Meter.Kind.WATER)
        .order_by("pk")
        .first()
    )


def on_meter_minor(account: Account) -> int:
    """What the ledger says is on the meter (downloaded, not yet taken back), minor units."""
    code = ledger.on_meter_account(str(account.pk)).code
    total = Posting.objects.filter(
        organisation_id=account.organisation_id, ledger_account__code=code
    ).aggregate(total=Sum("amount"))["total"]
    return -(total or 0)


def _meter_credit_post(
    *,
    actor: Actor,
    command: MeterCommand,
    account: Account,
    currency: str,
    amount_minor: int,
    to_meter: bool,
    reference: str,
    memo: str = "",
) -> None:
    """Move money between the wallet and the meter, booked against the credit command."""
    entry = ledger.build_meter_credit(
        account_id=str(account.pk),
        amount_minor=amount_minor,
        to_meter=to_meter,
        reference=reference,
        occurred_at=timezone.now(),
        currency=currency,
        memo=memo,
    )
    entry_post(
        actor=actor,
        organisation_id=account.organisation_id,
        entry=entry,
        kind=JournalEntry.Kind.METER_CREDIT,
        account=account,
        reference=f"command:{command.command_id}",
    )


def _download(
    *, actor: Actor, account: Account, amount_minor: int, key: str, requested_by: str, reason: str
) -> MeterCommand | None:
    meter = prepaid_meter(account)
    if meter is None:
        log.warning("account %s is meter-side but has no prepaid meter to download to", account.pk)
        return None
    command = credit.meter_credit_request(
        actor=actor,
        meter=meter,
        kind=MeterCommand.Kind.CREDIT_DOWNLOAD,
        amount_minor=amount_minor,
        requested_by=requested_by,
        idempotency_key=key,
        reason=reason,
    )
    _meter_credit_post(
        actor=actor,
        command=command,
        account=account,
        currency=wallet_for(account).currency,
        amount_minor=amount_minor,
        to_meter=True,
        reference=str(command.command_id),
    )
    return command


def recharge_download(*, actor: Actor, entry: JournalEntry) -> MeterCommand | None:
    """After a recharge of a meter-side account: download what it put in the wallet."""
    account = entry.account
    if account is None or not is_meter_side(account) or entry.wallet_amount <= 0:
        return None
    try:
        with transaction.atomic():  # a download that cannot be written must not lose the payment
            return _download(
                actor=actor,
                account=account,
                amount_minor=entry.wallet_amount,
                key=f"download:entry-{entry.pk}",
                requested_by=MeterCommand.Requester.RECHARGE,
                reason=f"recharge {entry.reference}"[:200],
            )
    except ValidationError as exc:
        log.warning("recharge %s stays in the wallet: %s", entry.pk, "; ".join(exc.messages))
        return None


@transaction.atomic
def wallet_download(*, actor: Actor, account: Account, idempotency_key: str) -> MeterCommand:
    """Download the whole wallet balance (after a failed download, or an older balance)."""
    account = Account.objects.get(pk=account.pk)
    if not is_meter_side(account):
        raise WalletError({"account": "only a meter-side account's money goes to the meter"})
    if account.status != Account.Status.OPEN:
        raise WalletError({"account": "the account is not open"})
    wallet = Wallet.objects.select_for_update().get(pk=wallet_for(account).pk)
    if wallet.balance_minor <= 0:
        raise WalletError({"amount": "the wallet holds nothing to download"})
    command = _download(
        actor=actor,
        account=account,
        amount_minor=wallet.balance_minor,
        key=f"download:{idempotency_key.strip()[:80]}",
        requested_by=MeterCommand.Requester.OPERATOR,
        reason="wallet downloaded to the meter",
    )
    if command is None:
        raise WalletError({"meter": "the account has no DL/T 645 prepaid meter behind a gateway"})
    return command


@transaction.atomic
def energy_refund_request(*, actor: Actor, account: Account, idempotency_key: str) -> MeterCommand:
    """Take back what the meter holds; it reaches the wallet once the meter confirms it."""
    account = Account.objects.get(pk=account.pk)
    if not is_meter_side(account):
        raise WalletError({"account": "an energy refund is for meter-side accounts"})
    if account.status == Account.Status.PRESET:
        raise WalletError({"account": "the account is not open yet"})
    meter = prepaid_meter(account)
    if meter is None:
        raise WalletError({"meter": "the account has no DL/T 645 prepaid meter behind a gateway"})
    return credit.meter_credit_request(
        actor=actor,
        meter=meter,
        kind=MeterCommand.Kind.CREDIT_REFUND,
        amount_minor=0,
        requested_by=MeterCommand.Requester.OPERATOR,
        idempotency_key=f"energy-refund:{idempotency_key.strip()[:80]}",
        reason="energy refund",
    )


def _account_of(command: MeterCommand) -> Account | None:
    moved = (
        JournalEntry.objects.filter(
            organisation_id=command.organisation_id,
            kind=JournalEntry.Kind.METER_CREDIT,
            reference=f"command:{command.command_id}",
        )
        .select_related("account")
        .first()
    )
    if moved is not None:
        owner: Account | None = moved.account
        return owner
    meter = Meter.objects.select_related("account").get(pk=command.meter_id)
    return meter.account


def _landed_late(*, command: MeterCommand, account: Account, currency: str, actor: Actor) -> None:
    """A download whose money came back (it timed out) was confirmed later: move it again.

    The wallet may go below zero if its balance was spent meanwhile; that is what happened."""
    came_back = JournalEntry.objects.filter(
        organisation_id=command.organisation_id,
        kind=JournalEntry.Kind.METER_CREDIT,
        reference=f"command:{command.command_id}",
        wallet_amount__gt=0,
    ).exists()
    if not came_back:
        return
    _meter_credit_post(
        actor=actor,
        command=command,
        account=account,
        currency=currency,
        amount_minor=command.amount_minor or 0,
        to_meter=True,
        reference=f"{command.command_id}-confirmed-late",
        memo="download confirmed after it timed out: on the meter after all",
    )


def credit_finished(*, command: MeterCommand, actor: Actor) -> None:
    """The control hook: move the money that goes with a finished credit command."""
    account = _account_of(command)
    if account is None:
        log.error("credit command %s finished with no account to book it to", command.command_id)
        return
    currency = wallet_for(account).currency
    reference = str(command.command_id)
    if command.kind == MeterCommand.Kind.CREDIT_DOWNLOAD:
        if not command.amount_minor:
            return
        if command.status == MeterCommand.Status.CONFIRMED:
            _landed_late(command=command, account=account, currency=currency, actor=actor)
            return
        _meter_credit_post(
            actor=actor,
            command=command,
            account=account,
            currency=currency,
            amount_minor=command.amount_minor,
            to_meter=False,
            reference=reference,
            memo=f"download {command.get_status_display()}: back to the wallet",
        )
        return
    taken = command.confirmed_amount_minor or 0
    if command.status != MeterCommand.Status.CONFIRMED or taken <= 0:
        return
    _meter_credit_post(
        actor=actor,
        command=command,
        account=account,
        currency=currency,
        amount_minor=taken,
        to_meter=False,
        reference=reference,
        memo="energy refund: back from the meter",
    )
    try:
        refund_record(
            actor=actor,
            account=account,
            amount=from_minor(taken, currency),
            channel=ledger.Channel.CASH,
            idempotency_key=f"energy-refund-{command.command_id}",
            paid_out=False,
            memo="energy refund from the meter",
            evaluate=False,
        )
    except ValidationError as exc:  # the money stays in the wallet, visible there
        log.warning("energy refund %s not recorded: %s", command.command_id, exc.messages)


@dataclass(frozen=True, slots=True)
class MeterSideView:
    """What the console and API show of a meter-side account's money on its meter."""

    meter: Meter | None
    balance: MeterBalance | None
    on_meter: Decimal  # downloaded and not taken back, by the ledger
    currency: str
    open_commands: list[MeterCommand]
    recent_commands: list[MeterCommand]
    discrepancies: list[BalanceDiscrepancy]

    @property
    def meter_balance(self) -> Decimal | None:
        """The remaining money the meter last reported."""
        if self.balance is None or self.balance.remaining_minor is None:
            return None
        return from_minor(self.balance.remaining_minor, self.currency)


def meter_side_view(account: Account) -> MeterSideView | None:
    """None for a platform-side account."""
    if not is_meter_side(account):
        return None
    meter = prepaid_meter(account)
    meters = list(account.meters.all())  # prefetched by lists
    wallet = wallet_of(account)
    currency = wallet.currency if wallet is not None else "CNY"
    credit_commands = MeterCommand.objects.filter(
        meter__in=meters, kind__in=MeterCommand.CREDIT_KINDS
    ).order_by("-id")
    return MeterSideView(
        meter=meter,
        balance=None if meter is None else control_selectors.meter_balance(meter),
        on_meter=from_minor(on_meter_minor(account), currency),
        currency=currency,
        open_commands=list(control_selectors.open_credit_commands(meters)),
        recent_commands=list(credit_commands[:10]),
        discrepancies=list(control_selectors.discrepancies(meters=meters)),
    )
