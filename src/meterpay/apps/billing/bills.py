"""Postpaid bills: what a postpaid wallet owed at the end of a period, due on a date."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.models import PostpaidBill
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.supply.selectors import policy_row


@transaction.atomic
def postpaid_bill_issue(
    *, actor: Any, account: Account, period_end: date, due_on: date | None = None
) -> PostpaidBill | None:
    """A postpaid statement of what the wallet owes at ``period_end``; None if nothing is owed.

    Without ``due_on`` the bill is due the policy's ``postpaid_due_days`` after the period end.
    """
    if account.billing_mode != Account.BillingMode.POSTPAID:
        raise ValidationError({"account": "only postpaid accounts get bills"})
    if due_on is None:
        due_on = period_end + timedelta(days=policy_row(account.organisation_id).postpaid_due_days)
    wallet = Wallet.objects.select_for_update().get(account=account)
    owed = -wallet.balance_minor - (
        PostpaidBill.objects.filter(account=account, status=PostpaidBill.Status.OPEN).aggregate(
            s=Sum("amount_minor")
        )["s"]
        or 0
    )
    if owed <= 0:
        return None
    bill, _ = PostpaidBill.objects.get_or_create(
        account=account,
        period_end=period_end,
        defaults={
            "organisation_id": account.organisation_id,
            "amount_minor": owed,
            "due_on": due_on,
            "status": PostpaidBill.Status.OPEN,
        },
    )
    audit_record(
        actor=actor, action="bill.issue", obj=bill, after={"amount": owed, "due_on": str(due_on)}
    )
    return bill


def postpaid_arrears(*, wallet: Wallet, now: datetime, grace_days: int) -> bool:
    """The supply rules' arrears source: open bills the balance covers are paid; is any
    still open past its due date and the grace days?"""
    today = timezone.localtime(now).date()
    open_bills = PostpaidBill.objects.filter(
        account_id=wallet.account_id, status=PostpaidBill.Status.OPEN
    )
    if wallet.balance_minor >= 0 and open_bills.exists():
        open_bills.update(status=PostpaidBill.Status.PAID, paid_at=now)
        return False
    return open_bills.filter(due_on__lt=today - timedelta(days=grace_days)).exists()
