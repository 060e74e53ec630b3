"""The payment and arrears lists of the month end as XLSX workbooks.

Amounts are exact: written as numbers from integer minor units divided by 100 with a
two-decimal number format (a fen-exact value in a double), and also as the text of the
amount where finance needs it for matching. Text cells that would start a formula (``=``,
``+``, ``-``, ``@``, tab, carriage return) are written with a leading apostrophe so no cell of
a customer's name ever runs as a formula.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

import xlsxwriter
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.billing.models import Bill
from meterpay.apps.ledger.models import JournalEntry

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: object) -> str:
    """Text for a cell that can never be read as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _workbook(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "remove_timezone": True, "strings_to_formulas": False}
    )
    sheet = book.add_worksheet(title[:31])
    bold = book.add_format({"bold": True, "bg_color": "#E8EEF7", "border": 1})
    amount = book.add_format({"num_format": "#,##0.00"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for column, name in enumerate(header):
        sheet.write_string(0, column, name, bold)
        sheet.set_column(column, column, max(12, len(name) + 4))
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row):
            if isinstance(value, Minor):
                sheet.write_number(r, c, value.minor / 100, amount)
            elif isinstance(value, date | datetime):
                sheet.write_datetime(
                    r,
                    c,
                    value if isinstance(value, datetime) else datetime.combine(value, time()),
                    day,
                )
            elif isinstance(value, int):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, safe_text(value))
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(1, len(rows)), len(header) - 1)
    book.close()
    return buffer.getvalue()


class Minor:
    """An amount in minor units, written as a money cell."""

    __slots__ = ("minor",)

    def __init__(self, minor: int) -> None:
        self.minor = int(minor)


def payments_rows(*, organisation_id: int, start: date, end: date) -> list[list[Any]]:
    """Payments towards bills in ``[start, end]``: payments of requested charges and the
    recharges of postpaid accounts (which pay their bills)."""
    zone = timezone.get_current_timezone()
    since = datetime.combine(start, time(), tzinfo=zone)
    until = datetime.combine(end, time.max, tzinfo=zone)
    entries = (
        JournalEntry.objects.filter(
            organisation_id=organisation_id, occurred_at__range=(since, until)
        )
        .filter(
            Q(kind=JournalEntry.Kind.BILL_PAYMENT)
            | Q(kind=JournalEntry.Kind.RECHARGE, account__billing_mode="postpaid")
        )
        .select_related("account__customer")
        .order_by("occurred_at", "pk")
    )
    rows: list[list[Any]] = []
    for entry in entries:
        paid = entry.wallet_amount
        if entry.kind == JournalEntry.Kind.BILL_PAYMENT:
            paid = sum(
                -p.amount
                for p in entry.postings.all()
                if p.ledger_account.code.startswith("receivable:")
            )
        account = entry.account
        rows.append(
            [
                timezone.localtime(entry.occurred_at).replace(tzinfo=None),
                account.number if account else "",
                account.customer.name if account else "",
                entry.get_channel_display() if entry.channel else "",
                entry.reference.removeprefix("bill:"),
                Minor(paid),
                entry.get_kind_display(),
            ]
        )
    return rows


def payments_xlsx(*, organisation_id: int, start: date, end: date) -> bytes:
    header = [
        _("Paid at"),
        _("Account"),
        _("Customer"),
        _("Channel"),
        _("Reference"),
        _("Amount"),
        _("Kind"),
    ]
    return _workbook(
        _("Payments"), header, payments_rows(organisation_id=organisation_id, start=start, end=end)
    )


def arrears_rows(*, organisation_id: int, today: date) -> list[list[Any]]:
    bills = (
        Bill.objects.filter(
            organisation_id=organisation_id,
            status=Bill.Status.ISSUED,
            unpaid_minor__gt=0,
            due_on__lt=today,
        )
        .select_related("account__customer")
        .order_by("due_on", "number")
    )
    return [
        [
            bill.account.number,
            bill.account.customer.name,
            bill.account.customer.phone,
            bill.number,
            bill.period_end,
            bill.due_on,
            (today - bill.due_on).days,
            Minor(bill.due_minor),
            Minor(bill.unpaid_minor),
            bill.reminders_sent,
        ]
        for bill in bills
    ]


def arrears_xlsx(*, organisation_id: int, today: date) -> bytes:
    header = [
        _("Account"),
        _("Customer"),
        _("Phone"),
        _("Bill"),
        _("Period end"),
        _("Due on"),
        _("Days overdue"),
        _("Amount due"),
        _("Unpaid"),
        _("Reminders sent"),
    ]
    return _workbook(
        _("Arrears"), header, arrears_rows(organisation_id=organisation_id, today=today)
    )
