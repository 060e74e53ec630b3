"""Settlement at move-out: what is left is rated, open orders are cancelled, the wallet is
refunded or its arrears booked as receivable, so it ends at zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.bills import BillError, bill_number, bill_post, bill_store, bills_settle
from meterpay.apps.billing.charges import charge_lines
from meterpay.apps.billing.consumption import accounts_consumption
from meterpay.apps.billing.deductions import account_deduct_pending
from meterpay.apps.billing.models import Bill
from meterpay.apps.billing.sharing import account_areas, share_lines
from meterpay.apps.customers import services as customer_services
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.services import (
    WalletError,
    channel_parse,
    entry_post,
    wallet_locked,
)
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments.models import Recharge
from meterpay.apps.payments.services import recharge_cancel
from meterpay.apps.readings.models import Interval, RegisterRead
from meterpay.apps.readings.services import register_read_record
from meterpay.core import ledger
from meterpay.core.ledger import BillTarget, Channel, ChargeType
from meterpay.core.money import format_amount, from_minor

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


@dataclass(frozen=True, slots=True)
class MoveOut:
    account: Account
    bill: Bill
    settlement: SettlementResult


def _final_readings(
    *, actor: Actor, account: Account, readings: Mapping[int, Decimal], read_at: datetime
) -> None:
    """Store the final readings entered by hand; one below the meter's last reading is
    refused with the numbers (the meter would have run backwards)."""
    meters = {m.pk: m for m in Meter.objects.filter(account=account)}
    for meter_id, total in readings.items():
        meter = meters.get(meter_id)
        if meter is None:
            raise BillError(
                {"readings": _("meter %(id)s is not this account's") % {"id": meter_id}}
            )
        last = (
            RegisterRead.objects.filter(meter=meter, read_at__lte=read_at)
            .order_by("-read_at")
            .values_list("total", flat=True)
            .first()
        )
        if last is not None and Decimal(total) < Decimal(last):
            raise BillError(
                {
                    "readings": _(
                        "meter %(meter)s: the final reading %(total)s is below its last "
                        "reading %(last)s"
                    )
                    % {"meter": meter.address, "total": total, "last": last}
                }
            )
        register_read_record(
            meter=meter, read_at=read_at, source="manual", total=Decimal(total), actor=actor
        )


def _final_period_start(account: Account) -> date:
    last = (
        Bill.objects.filter(
            account=account,
            kind__in=(Bill.Kind.STATEMENT, Bill.Kind.FINAL),
            status__in=("issued", "paid", "confirmed", "draft"),
            period_start__isnull=False,
        )
        .order_by("-period_end")
        .values_list("period_end", flat=True)
        .first()
    )
    if last is not None:
        return last
    if account.move_in_on is not None:
        return account.move_in_on
    opened = account.opened_at or account.created_at
    return timezone.localdate(opened)


@transaction.atomic
def account_move_out(
    *,
    actor: Actor,
    account: Account,
    move_out_on: date,
    final_readings: Mapping[int, Decimal] | None = None,
    read_at: datetime | None = None,
    refund_channel: str = Channel.CASH,
    refund_paid_out: bool = True,
) -> MoveOut:
    """Move-out settlement: the final readings (entered by hand, or the latest the gateway
    read), the final bill from the last billed day to the move-out day (consumption, charges
    prorated to the move-out day, public-area and line-loss shares of the part of the month),
    then the wallet refunded or what is owed booked as a bill to pay, and the account closed.

    Everything happens in one transaction: a problem (a reading below the last one, a group
    that cannot be shared) leaves the account as it was.
    """
    account = Account.objects.select_for_update().get(pk=account.pk)
    if account.status == Account.Status.CLOSED:
        raise WalletError({"status": "the account is closed already"})
    if account.move_in_on is not None and move_out_on < account.move_in_on:
        raise BillError({"move_out_on": _("the move-out is before the move-in")})
    now = timezone.now()
    if final_readings:
        _final_readings(
            actor=actor, account=account, readings=final_readings, read_at=read_at or now
        )
    account.move_out_on = move_out_on
    account.save(update_fields=["move_out_on"])
    if account.status == Account.Status.OPEN:
        account_deduct_pending(account=account, actor=actor)
    start = _final_period_start(account)
    end = move_out_on + timedelta(days=1)
    organisation = Organisation.objects.get(pk=account.organisation_id)
    currency = organisation.currency
    latest = (
        Interval.objects.filter(meter__account=account, booked=True)
        .order_by("-end_at")
        .values_list("end_at", flat=True)
        .first()
    )
    consumption = accounts_consumption(
        accounts=[account], start=start, end=end, currency=currency, until=latest
    )
    areas = account_areas({account.pk})
    charges, problems = charge_lines(
        accounts=[account],
        start=start,
        end=end,
        consumption=consumption,
        areas=areas,
        currency=currency,
    )
    site_ids = set(account.rooms.values_list("floor__building__site_id", flat=True))
    shared = share_lines(
        organisation_id=account.organisation_id,
        site_ids=site_ids,
        accounts=[account],
        start=start,
        end=end,
        consumption=consumption,
        areas=areas,
    )
    problems += shared.problems
    if problems:
        raise BillError({"__all__": problems})
    # at move-out everything is settled through the wallet, which then ends at zero
    lines = [
        replace(line, settles=BillTarget.WALLET)
        for line in (
            *consumption[account.pk].lines,
            *charges.get(account.pk, []),
            *shared.lines.get(account.pk, []),
        )
    ]
    [number] = bill_number(account.organisation_id, f"F{move_out_on:%Y%m}")
    bill = bill_store(
        account=account,
        kind=Bill.Kind.FINAL,
        period_start=start,
        period_end=end,
        due_on=timezone.localdate(now),
        lines=lines,
        number=number,
        status=Bill.Status.CONFIRMED,
        readings=[m.to_json() for m in consumption[account.pk].meters],
        currency=currency,
    )
    bill_post(actor=actor, bill=bill, evaluate=False)
    for pending in Recharge.objects.filter(account=account, status=Recharge.Status.PENDING):
        recharge_cancel(actor=actor, recharge=pending, reason="account closed")
    result = account_settle(
        actor=actor,
        account=account,
        refund_channel=refund_channel,
        refund_paid_out=refund_paid_out,
        reference=f"closure-{account.pk}",
    )
    bill.status = Bill.Status.ISSUED if result.arrears_minor else Bill.Status.PAID
    bill.paid_at = None if result.arrears_minor else now
    bill.issued_at = now
    bill.settles = Bill.Settles.RECEIVABLE
    bill.due_minor = bill.unpaid_minor = result.arrears_minor
    if result.refund_minor:
        bill.notes = _("Refunded at move-out: %(amount)s") % {
            "amount": format_amount(from_minor(result.refund_minor, currency), currency)
        }
    elif result.arrears_minor:
        bill.notes = _("Owed at move-out: %(amount)s") % {
            "amount": format_amount(from_minor(result.arrears_minor, currency), currency)
        }
    bill.save(
        update_fields=[
            "status",
            "paid_at",
            "issued_at",
            "settles",
            "due_minor",
            "unpaid_minor",
            "notes",
        ]
    )
    closed = customer_services.account_close(actor=actor, account=account, move_out_on=move_out_on)
    bills_settle(account=closed)
    bill.refresh_from_db()
    audit_record(
        actor=actor,
        action="account.move_out",
        obj=closed,
        after={
            "bill": bill.number,
            "refund": result.refund_minor,
            "arrears": result.arrears_minor,
            "move_out_on": str(move_out_on),
        },
    )
    return MoveOut(closed, bill, result)
