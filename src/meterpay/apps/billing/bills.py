"""The life of a bill after it is made: issue, payment, overdue and reminders, credit notes
and re-issue. Bill runs (``runs.py``) make the drafts and take them through confirmation.

A bill's booked lines (charges, shares, line loss, adjustments) are posted when it is issued,
in one entry per place they are owed: the wallet (deducted from a prepaid wallet, or added to a
postpaid account's running account) or the account's receivable (a payment request). What a
bill still asks for (``unpaid_minor``) follows from what is owed there: the customer's debt is
laid on the newest bills first, so every payment settles the oldest bills first
(``meterpay.core.billing.lifecycle.payment_allocation``). An issued bill is never edited: a
credit note reverses what it booked and a corrected bill replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.lines import LineDraft, Section
from meterpay.apps.billing.models import Bill, BillLine
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
from meterpay.apps.ledger.services import channel_parse, entry_post, wallet_for
from meterpay.apps.notifications.models import Notification
from meterpay.apps.notifications.services import notification_create
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.supply.selectors import policy_row
from meterpay.apps.supply.services import movement_post, wallet_evaluate
from meterpay.core import ledger
from meterpay.core.billing.lifecycle import (
    BillStatus,
    TransitionError,
    check_transition,
    payment_allocation,
)
from meterpay.core.ledger import BillTarget, Channel, ChargeType
from meterpay.core.money import format_amount, from_minor, to_minor

type Actor = Any

#: Statuses whose bills ask to be paid (the payment allocation runs over them).
LIVE = (Bill.Status.ISSUED, Bill.Status.PAID)
#: An overdue bill is reminded at most this often.
REMINDER_GAP = timedelta(days=7)


class BillError(ValidationError):
    """A bill operation that breaks a rule (wrong status, bad amount…)."""


def _transition(bill: Bill, target: str) -> None:
    try:
        check_transition(current=BillStatus(bill.status), target=BillStatus(target))
    except TransitionError as exc:
        raise BillError({"status": str(exc)}) from None


def bill_number(organisation_id: int, prefix: str, count: int = 1) -> list[str]:
    """``count`` new numbers ``<prefix>-00001`` …, unique in the organisation.

    The organisation row is locked while numbering, so two runs never take the same numbers.
    """
    Organisation.objects.select_for_update().filter(pk=organisation_id).first()
    last = (
        Bill.objects.filter(organisation_id=organisation_id, number__startswith=f"{prefix}-")
        .aggregate(n=Max("number"))
        .get("n")
    )
    start = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return [f"{prefix}-{n:05d}" for n in range(start, start + count)]


def bill_row(
    *,
    account: Account,
    kind: str,
    period_start: date | None,
    period_end: date,
    due_on: date,
    lines: Sequence[LineDraft],
    number: str,
    run_id: int | None = None,
    status: str = Bill.Status.DRAFT,
    readings: list[dict[str, Any]] | None = None,
    review: dict[str, Any] | None = None,
    replaces: Bill | None = None,
    credits: Bill | None = None,
    notes: str = "",
    currency: str = "CNY",
) -> Bill:
    """An unsaved bill of these lines (what it totals, asks for and where it is owed)."""
    return Bill(
        organisation_id=account.organisation_id,
        number=number,
        run_id=run_id,
        account=account,
        kind=kind,
        status=status,
        settles=bill_settles(account, lines),
        period_start=period_start,
        period_end=period_end,
        currency=currency,
        total_minor=sum(line.amount_minor for line in lines),
        due_minor=bill_due(account, lines),
        unpaid_minor=0,
        due_on=due_on,
        readings=readings or [],
        review=review or {},
        replaces=replaces,
        credits=credits,
        notes=notes,
    )


def bills_store(items: Sequence[tuple[Bill, Sequence[LineDraft]]], batch_size: int = 2000) -> None:
    """Store many bills and their lines in bulk (no ledger posting: that happens at issue)."""
    for offset in range(0, len(items), batch_size):
        chunk = items[offset : offset + batch_size]
        bills = Bill.objects.bulk_create([bill for bill, _lines in chunk])
        BillLine.objects.bulk_create(
            [
                line.row(bill_id=bill.pk, position=n)
                for bill, (_row, lines) in zip(bills, chunk, strict=True)
                for n, line in enumerate(lines, 1)
            ],
            batch_size=5000,
        )


def bill_store(*, lines: Sequence[LineDraft], **fields: Any) -> Bill:
    """Store one bill with its lines (see :func:`bill_row` for the fields)."""
    bill = bill_row(lines=lines, **fields)
    bills_store([(bill, lines)])
    return bill


def bill_settles(account: Account, lines: Sequence[LineDraft]) -> str:
    if account.billing_mode == Account.BillingMode.POSTPAID:
        return Bill.Settles.WALLET
    if any(line.settles == BillTarget.RECEIVABLE for line in lines):
        return Bill.Settles.RECEIVABLE
    return Bill.Settles.WALLET


def bill_due(account: Account, lines: Sequence[LineDraft]) -> int:
    """What a bill asks to be paid: everything for a postpaid account; for a prepaid one only
    the requested lines (the rest was, or is, taken from the prepaid wallet)."""
    if account.billing_mode == Account.BillingMode.POSTPAID:
        return sum(line.amount_minor for line in lines)
    return sum(line.amount_minor for line in lines if line.settles == BillTarget.RECEIVABLE)


def _booked(bill: Bill) -> dict[str, list[tuple[ChargeType, int]]]:
    """The bill's lines it books itself, by where they are owed."""
    booked: dict[str, list[tuple[ChargeType, int]]] = {}
    postpaid = bill.account.billing_mode == Account.BillingMode.POSTPAID
    for line in bill.lines.filter(posted=True).order_by("position"):
        target = BillTarget.WALLET if postpaid else BillTarget(line.settles)
        booked.setdefault(target, []).append((ChargeType(line.charge_type), line.amount_minor))
    return booked


def bill_post(*, actor: Actor, bill: Bill, evaluate: bool = True) -> list[JournalEntry]:
    """Book the bill's own lines: one entry per place they are owed (idempotent by number)."""
    entries = []
    now = timezone.now()
    for target, lines in sorted(_booked(bill).items()):
        try:
            entry = ledger.build_bill_charges(
                account_id=str(bill.account_id),
                lines=lines,
                target=BillTarget(target),
                reference=bill.number,
                occurred_at=now,
                currency=bill.currency,
                memo=f"bill {bill.number}",
            )
        except ledger.NothingToPost:
            continue
        posted = movement_post(
            actor=actor,
            entry=entry,
            kind=JournalEntry.Kind.BILL,
            account=bill.account,
            reference=f"bill:{bill.number}",
            evaluate=evaluate and target == BillTarget.WALLET,
        )
        entries.append(posted.entry)
    return entries


@transaction.atomic
def bill_issue(*, actor: Actor, bill: Bill, notify: bool = True) -> Bill:
    """Issue a confirmed bill: book its lines, tell the customer, and settle what is paid."""
    bill = Bill.objects.select_for_update().select_related("account__customer").get(pk=bill.pk)
    _transition(bill, Bill.Status.ISSUED)
    wallet_for(bill.account)
    entries = bill_post(actor=actor, bill=bill)
    bill.status = Bill.Status.ISSUED
    bill.issued_at = timezone.now()
    bill.unpaid_minor = bill.due_minor
    if entries:
        bill.entry = entries[-1]
    bill.save(update_fields=["status", "issued_at", "unpaid_minor", "entry"])
    bills_settle(account=bill.account)
    bill.refresh_from_db()
    if notify and bill.due_minor > 0:
        amount = format_amount(from_minor(bill.due_minor, bill.currency), bill.currency)
        notification_create(
            account=bill.account,
            kind=Notification.Kind.BILL_ISSUED,
            subject=_("Bill %(number)s: %(amount)s due on %(due)s")
            % {"number": bill.number, "amount": amount, "due": bill.due_on},
            body=_("Your bill %(number)s for %(start)s to %(end)s is %(amount)s, due on %(due)s.")
            % {
                "number": bill.number,
                "start": bill.period_start or "",
                "end": bill.period_end,
                "amount": amount,
                "due": bill.due_on,
            },
        )
    audit_record(
        actor=actor,
        action="bill.issue",
        obj=bill,
        after={"number": bill.number, "total": bill.total_minor, "due": bill.due_minor},
    )
    return bill


def _covered_until(account: Account) -> datetime | None:
    """The end of what the account's live wallet bills cover (a balance statement covers what
    was owed when it was issued)."""
    zone = timezone.get_current_timezone()
    ends: list[datetime] = []
    for start, end, issued in Bill.objects.filter(
        account=account, settles=Bill.Settles.WALLET, status__in=LIVE, due_minor__gt=0
    ).values_list("period_start", "period_end", "issued_at"):
        if start is not None:
            ends.append(datetime.combine(end, datetime.min.time(), tzinfo=zone))
        elif issued is not None:
            ends.append(issued)
    return max(ends) if ends else None


def owed(account: Account, settles: str) -> int:
    """What the customer owes on its bills where they are owed (≥ 0).

    A postpaid wallet's debt also holds consumption not billed yet (deductions and fees after
    what the bills cover); that part is not laid on the bills.
    """
    if settles == Bill.Settles.WALLET:
        wallet = Wallet.objects.filter(account_id=account.pk).first()
        debt = -(wallet.balance_minor if wallet else 0)
        covered = _covered_until(account)
        if covered is not None:
            unbilled = JournalEntry.objects.filter(
                account=account,
                kind__in=(JournalEntry.Kind.DEDUCTION, JournalEntry.Kind.FEE),
                occurred_at__gt=covered,
            ).aggregate(s=Sum("wallet_amount"))["s"]
            debt += int(unbilled or 0)
        return max(0, debt)
    code = ledger.receivable_account(str(account.pk)).code
    total = Posting.objects.filter(
        entry__organisation_id=account.organisation_id, ledger_account__code=code
    ).aggregate(s=Sum("amount"))["s"]
    return max(0, int(total or 0))


def bills_settle(*, account: Account, now: datetime | None = None) -> list[Bill]:
    """Bring the unpaid part of the account's live bills in line with what it owes."""
    now = now or timezone.now()
    changed = []
    for settles in (Bill.Settles.WALLET, Bill.Settles.RECEIVABLE):
        bills = list(
            Bill.objects.filter(account=account, settles=settles, status__in=LIVE, due_minor__gt=0)
            .order_by("due_on", "pk")
            .select_for_update()
        )
        if not bills:
            continue
        unpaid = payment_allocation(
            owed_minor=owed(account, settles), bills=[(b.number, b.due_minor) for b in bills]
        )
        for bill in bills:
            left = unpaid[bill.number]
            status = Bill.Status.PAID if left == 0 else Bill.Status.ISSUED
            if (left, status) != (bill.unpaid_minor, bill.status):
                bill.unpaid_minor = left
                bill.status = status
                bill.paid_at = now if status == Bill.Status.PAID else None
                if status == Bill.Status.PAID:
                    bill.overdue_since = None
                bill.save(update_fields=["unpaid_minor", "status", "paid_at", "overdue_since"])
                changed.append(bill)
    return changed


@transaction.atomic
def bill_pay(
    *,
    actor: Actor,
    bill: Bill,
    amount: Decimal | str,
    channel: str,
    idempotency_key: str,
    reference: str = "",
) -> Bill:
    """A payment at the counter or by transfer towards a bill (partial payments welcome).

    A bill owed to the wallet is paid into the wallet (a recharge: supply is restored by the
    same rules); a payment request is paid to the receivable. The idempotency key makes a
    repeated request pay once.
    """
    bill = Bill.objects.select_related("account").get(pk=bill.pk)
    if bill.status not in LIVE:
        raise BillError({"bill": _("only an issued bill can be paid")})
    chosen = channel_parse(channel)
    if chosen not in (Channel.CASH, Channel.BANK_TRANSFER):
        raise BillError({"channel": _("online payments arrive through their provider")})
    if bill.settles == Bill.Settles.WALLET:
        recharge, _created = recharge_record(
            actor=actor,
            account=bill.account,
            amount=amount,
            channel=chosen,
            idempotency_key=idempotency_key,
            reference=reference or bill.number,
        )
        if chosen is Channel.BANK_TRANSFER:
            from meterpay.apps.payments.services import recharge_confirm

            recharge_confirm(actor=actor, recharge=recharge)
    else:
        try:
            value = Decimal(str(amount))
            minor = to_minor(value, bill.currency)
        except (ArithmeticError, ValueError) as exc:
            raise BillError({"amount": str(exc)}) from None
        key = (idempotency_key or "").strip()
        if not key or len(key) > 200:
            raise BillError({"idempotency_key": "an idempotency key of 1 to 200 characters"})
        try:
            entry = ledger.build_bill_payment(
                account_id=str(bill.account_id),
                amount_minor=minor,
                channel=chosen,
                reference=key,
                occurred_at=timezone.now(),
                currency=bill.currency,
                memo=f"payment of bill {bill.number}",
            )
        except ledger.LedgerError as exc:
            raise BillError({"amount": str(exc)}) from None
        entry_post(
            actor=actor,
            organisation_id=bill.organisation_id,
            entry=entry,
            kind=JournalEntry.Kind.BILL_PAYMENT,
            account=bill.account,
            channel=chosen,
            reference=f"bill:{bill.number}",
        )
    bills_settle(account=bill.account)
    bill.refresh_from_db()
    audit_record(
        actor=actor,
        action="bill.pay",
        obj=bill,
        after={"amount": str(amount), "channel": str(chosen), "unpaid": bill.unpaid_minor},
    )
    return bill


@transaction.atomic
def bill_credit(*, actor: Actor, bill: Bill, reason: str) -> Bill:
    """Cancel an issued bill with a credit note: what it booked is reversed, the note lists
    it negated, and the bill is ``credited`` (it no longer asks for anything)."""
    bill = Bill.objects.select_for_update().select_related("account").get(pk=bill.pk)
    reason = reason.strip()
    if not reason:
        raise BillError({"reason": _("a credit note needs a reason")})
    _transition(bill, Bill.Status.CREDITED)
    from meterpay.apps.billing.services import entry_reverse

    for entry in JournalEntry.objects.filter(
        organisation_id=bill.organisation_id,
        kind=JournalEntry.Kind.BILL,
        reference=f"bill:{bill.number}",
    ):
        entry_reverse(actor=actor, entry=entry, reason=f"credit note for {bill.number}: {reason}")
    lines = [
        LineDraft(
            section=line.section,
            label=line.label,
            amount_minor=-line.amount_minor,
            charge_type=ChargeType(line.charge_type),
            settles=line.settles,
            posted=False,  # the reversal above booked it
            quantity=line.quantity,
            unit=line.unit,
            unit_price_micro=line.unit_price_micro,
            meter_id=line.meter_id,
            detail=line.detail,
        )
        for line in bill.lines.filter(posted=True).order_by("position")
    ]
    [number] = bill_number(bill.organisation_id, "CN")
    note = bill_store(
        account=bill.account,
        kind=Bill.Kind.CREDIT_NOTE,
        period_start=bill.period_start,
        period_end=bill.period_end,
        due_on=timezone.localdate(),
        lines=lines,
        number=number,
        status=Bill.Status.ISSUED,
        credits=bill,
        notes=reason,
        currency=bill.currency,
    )
    Bill.objects.filter(pk=note.pk).update(issued_at=timezone.now(), due_minor=0)
    bill.status = Bill.Status.CREDITED
    bill.unpaid_minor = 0
    bill.save(update_fields=["status", "unpaid_minor"])
    bills_settle(account=bill.account)
    audit_record(
        actor=actor,
        action="bill.credit",
        obj=bill,
        after={"credit_note": number, "reason": reason[:200]},
    )
    return Bill.objects.get(pk=note.pk)


@transaction.atomic
def bill_reissue(
    *,
    actor: Actor,
    bill: Bill,
    reason: str,
    adjustments: Sequence[tuple[str, Decimal]] = (),
) -> Bill:
    """Credit an issued bill and make its corrected replacement as a draft: the same lines,
    plus the clerk's adjustments (label, amount; negative in the customer's favour)."""
    bill = Bill.objects.select_related("account").get(pk=bill.pk)
    if bill.status == Bill.Status.CREDITED:
        raise BillError({"bill": _("this bill was credited already")})
    bill_credit(actor=actor, bill=bill, reason=reason)
    target = BillTarget.WALLET if bill.settles == Bill.Settles.WALLET else BillTarget.RECEIVABLE
    lines = [
        LineDraft(
            section=line.section,
            label=line.label,
            amount_minor=line.amount_minor,
            charge_type=ChargeType(line.charge_type),
            settles=line.settles,
            posted=line.posted,
            quantity=line.quantity,
            unit=line.unit,
            unit_price_micro=line.unit_price_micro,
            meter_id=line.meter_id,
            detail=line.detail,
        )
        for line in bill.lines.order_by("position")
    ]
    for label, amount in adjustments:
        if not label.strip():
            raise BillError({"adjustments": _("every adjustment needs a label")})
        lines.append(
            LineDraft(
                section=Section.ADJUSTMENT,
                label=label.strip(),
                amount_minor=to_minor(Decimal(amount), bill.currency),
                charge_type=ChargeType.ADJUSTMENT,
                settles=target,
                posted=True,
            )
        )
    [number] = bill_number(bill.organisation_id, bill.number.split("-", 1)[0])
    replacement = bill_store(
        account=bill.account,
        kind=bill.kind,
        period_start=bill.period_start,
        period_end=bill.period_end,
        due_on=bill.due_on,
        lines=lines,
        number=number,
        readings=bill.readings,
        review=bill.review,
        replaces=bill,
        notes=reason,
        currency=bill.currency,
    )
    audit_record(
        actor=actor, action="bill.reissue", obj=replacement, after={"replaces": bill.number}
    )
    return replacement


@transaction.atomic
def bill_confirm(*, actor: Actor, bill: Bill) -> Bill:
    bill = Bill.objects.select_for_update().get(pk=bill.pk)
    _transition(bill, Bill.Status.CONFIRMED)
    bill.status = Bill.Status.CONFIRMED
    bill.confirmed_at = timezone.now()
    bill.save(update_fields=["status", "confirmed_at"])
    audit_record(actor=actor, action="bill.confirm", obj=bill, after={"number": bill.number})
    return bill


def overdue_bills(*, organisation_id: int | None = None, today: date | None = None) -> Any:
    today = today or timezone.localdate()
    rows = Bill.objects.filter(status=Bill.Status.ISSUED, unpaid_minor__gt=0, due_on__lt=today)
    if organisation_id is not None:
        rows = rows.filter(organisation_id=organisation_id)
    return rows


def bills_overdue_run(*, now: datetime | None = None) -> int:
    """Daily: mark bills overdue, remind their customers (at most weekly), and let the supply
    rules cut postpaid accounts whose bills are past the grace days (and restore paid ones)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    reminded = 0
    account_ids = set(overdue_bills(today=today).values_list("account_id", flat=True))
    for account_id in sorted(account_ids):
        with transaction.atomic():
            account = Account.objects.get(pk=account_id)
            bills_settle(account=account, now=now)
            for bill in overdue_bills(today=today).filter(account=account).select_for_update():
                fields = []
                if bill.overdue_since is None:
                    bill.overdue_since = bill.due_on + timedelta(days=1)
                    fields.append("overdue_since")
                last = bill.last_reminder_on
                if last is None or today - last >= REMINDER_GAP:
                    amount = format_amount(
                        from_minor(bill.unpaid_minor, bill.currency), bill.currency
                    )
                    notification_create(
                        account=account,
                        kind=Notification.Kind.BILL_DUE,
                        subject=_("Bill %(number)s is overdue: %(amount)s")
                        % {"number": bill.number, "amount": amount},
                        body=_(
                            "Your bill %(number)s was due on %(due)s; %(amount)s is still "
                            "unpaid. Please pay it to keep your supply."
                        )
                        % {"number": bill.number, "due": bill.due_on, "amount": amount},
                    )
                    bill.reminders_sent += 1
                    bill.last_reminder_on = today
                    fields += ["reminders_sent", "last_reminder_on"]
                    reminded += 1
                if fields:
                    bill.save(update_fields=fields)
            wallet = Wallet.objects.filter(account=account).first()
            if wallet is not None and account.billing_mode == Account.BillingMode.POSTPAID:
                wallet_evaluate(wallet=wallet, now=now)
    return reminded


def postpaid_arrears(*, wallet: Wallet, now: datetime, grace_days: int) -> bool:
    """The supply rules' arrears source: settle the account's bills from its balance; is any
    bill owed to the wallet still unpaid past its due date and the grace days?"""
    account = Account.objects.get(pk=wallet.account_id)
    bills_settle(account=account, now=now)
    today = timezone.localdate(now)
    return Bill.objects.filter(
        account_id=wallet.account_id,
        settles=Bill.Settles.WALLET,
        status=Bill.Status.ISSUED,
        unpaid_minor__gt=0,
        due_on__lt=today - timedelta(days=grace_days),
    ).exists()


@transaction.atomic
def postpaid_bill_issue(
    *, actor: Any, account: Account, period_end: date, due_on: date | None = None
) -> Bill | None:
    """A balance statement of what a postpaid wallet owes at ``period_end`` beyond its open
    bills; None if nothing more is owed. Without ``due_on`` it is due the policy's
    ``postpaid_due_days`` after the period end. (Month-end bills come from bill runs.)"""
    if account.billing_mode != Account.BillingMode.POSTPAID:
        raise ValidationError({"account": "only postpaid accounts get bills"})
    if due_on is None:
        due_on = period_end + timedelta(days=policy_row(account.organisation_id).postpaid_due_days)
    wallet = Wallet.objects.select_for_update().get(account=account)
    open_total = (
        Bill.objects.filter(
            account=account, settles=Bill.Settles.WALLET, status=Bill.Status.ISSUED
        ).aggregate(s=Sum("unpaid_minor"))["s"]
        or 0
    )
    amount = -wallet.balance_minor - open_total
    if amount <= 0:
        return None
    [number] = bill_number(account.organisation_id, f"S{period_end:%Y%m}")
    bill = bill_store(
        account=account,
        kind=Bill.Kind.STATEMENT,
        period_start=None,
        period_end=period_end,
        due_on=due_on,
        lines=[
            LineDraft(
                section=Section.BALANCE,
                label=_("Balance owed"),
                amount_minor=amount,
                charge_type=ChargeType.FEES,
                settles=BillTarget.WALLET,
                posted=False,
            )
        ],
        number=number,
        status=Bill.Status.ISSUED,
        currency=wallet.currency,
    )
    Bill.objects.filter(pk=bill.pk).update(issued_at=timezone.now(), unpaid_minor=amount)
    bill.refresh_from_db()
    audit_record(
        actor=actor,
        action="bill.issue",
        obj=bill,
        after={"amount": amount, "due_on": str(due_on)},
    )
    return bill
