"""Finance pages: orders, income, reconciliation, cashier shifts, and an account's wallet
(counter recharge with receipt, refund, reversal, ledger history). Thin: reads through
``meterpay.apps.wallets.selectors``, writes through one service each."""

from __future__ import annotations

import io
import json
import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.billing.services import entry_reverse
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Posting
from meterpay.apps.ledger.selectors import local_bounds, wallet_history
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.payments.meter_credit import (
    energy_refund_request,
    meter_side_view,
    wallet_download,
)
from meterpay.apps.payments.models import Recharge, StatementImport
from meterpay.apps.payments.reconciliation import StatementRejected, statement_import
from meterpay.apps.payments.refunds import refund_payout, refund_record
from meterpay.apps.payments.selectors import pending_transfers
from meterpay.apps.payments.services import recharge_confirm, recharge_record
from meterpay.apps.supply.selectors import wallet_view
from meterpay.apps.users.models import User
from meterpay.core.ledger import IdempotencyConflict
from meterpay.core.money import from_minor
from meterpay.core.roles import Permission
from meterpay.web.views.base import (
    deny,
    page,
    querystring_without_page,
    redirect_next,
    staff_view,
)

CHANNELS = [c for c, _ in Recharge._meta.get_field("channel").choices or []]


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _span(request: HttpRequest, days: int = 30) -> tuple[date, date]:
    today = timezone.localdate()
    end = _day(request.GET.get("to"), today)
    start = _day(request.GET.get("from"), end - timedelta(days=days - 1))
    return (start, end) if start <= end else (end, start)


def _money(minor: int | None) -> str:
    return str(from_minor(int(minor or 0)))


@staff_view(Permission.VIEW_FINANCE)
def finance_orders(request: HttpRequest) -> HttpResponse:
    """Every money movement: recharges, refunds, deductions, fees, reversals; XLSX export."""
    user: Any = request.user
    start, end = _span(request)
    lo, hi = local_bounds(start, end)
    entries = (
        org_objects(user, JournalEntry)
        .filter(occurred_at__gte=lo, occurred_at__lt=hi)
        .select_related("account__customer", "created_by")
        .order_by("-occurred_at", "-id")
    )
    kind = request.GET.get("kind", "")
    channel = request.GET.get("channel", "")
    q = request.GET.get("q", "").strip()
    if kind:
        entries = entries.filter(kind=kind)
    if channel:
        entries = entries.filter(channel=channel)
    if q:
        entries = entries.filter(
            Q(account__number__icontains=q)
            | Q(account__customer__name__icontains=q)
            | Q(reference__icontains=q)
        )
    if request.GET.get("export") == "xlsx":
        return _orders_xlsx(entries, start, end)
    totals = (
        entries.values("kind").annotate(n=Count("id"), total=Sum("wallet_amount")).order_by("kind")
    )
    return render(
        request,
        "web/finance/orders.html",
        {
            "section": "finance",
            "entries": page(request, entries),
            "totals": [{**t, "total": _money(t["total"])} for t in totals],
            "pending": pending_transfers(user.organisation_id),
            "start": start,
            "end": end,
            "kind": kind,
            "channel": channel,
            "q": q,
            "kinds": JournalEntry.Kind.choices,
            "channels": Recharge._meta.get_field("channel").choices,
            "query": querystring_without_page(request),
        },
    )


def _orders_xlsx(entries: Any, start: date, end: date) -> HttpResponse:
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet("orders")
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    header = ["time", "kind", "channel", "account", "customer", "amount", "reference", "key", "by"]
    sheet.write_row(0, 0, header, bold)
    for row, e in enumerate(entries.iterator(), start=1):
        sheet.write_datetime(row, 0, timezone.localtime(e.occurred_at).replace(tzinfo=None), when)
        sheet.write(row, 1, e.kind)
        sheet.write(row, 2, e.channel)
        sheet.write(row, 3, e.account.number if e.account else "")
        sheet.write(row, 4, e.account.customer.name if e.account else "")
        # exact: the cell holds the decimal text's value; minor units are integers
        sheet.write_number(row, 5, float(from_minor(e.wallet_amount, e.currency)), money)
        sheet.write(row, 6, e.reference)
        sheet.write(row, 7, e.idempotency_key)
        sheet.write(row, 8, e.actor_label)
    sheet.set_column(0, 0, 17)
    sheet.set_column(3, 4, 16)
    sheet.set_column(6, 7, 30)
    book.close()
    response = HttpResponse(
        buffer.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = f'attachment; filename="orders-{start}-{end}.xlsx"'
    return response


def _bucket(day: date, group: str) -> str:
    return {"year": f"{day:%Y}", "month": f"{day:%Y-%m}"}.get(group, day.isoformat())


@staff_view(Permission.VIEW_FINANCE)
def finance_income(request: HttpRequest) -> HttpResponse:
    """Earned revenue by charge type and money received by channel, per day / month / year."""
    user: Any = request.user
    start, end = _span(request)
    group = request.GET.get("group", "day")
    lo, hi = local_bounds(start, end)
    postings = (
        org_objects(user, Posting)
        .filter(entry__occurred_at__gte=lo, entry__occurred_at__lt=hi)
        .values_list(
            "entry__occurred_at", "ledger_account__code", "amount", "entry__kind", "entry__channel"
        )
    )
    revenue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    received: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for at, code, amount, kind, channel in postings.iterator():
        bucket = _bucket(timezone.localtime(at).date(), group)
        if code.startswith("revenue:"):
            revenue[bucket][code.removeprefix("revenue:")] -= amount
        elif code.startswith("wallet:") and kind == "recharge":
            received[bucket][channel or "other"] -= amount
    buckets = sorted(set(revenue) | set(received))
    charge_types = sorted({t for b in revenue.values() for t in b})
    channels = sorted({c for b in received.values() for c in b})
    rows = [
        {
            "bucket": b,
            "revenue": [_money(revenue[b].get(t, 0)) for t in charge_types],
            "revenue_total": _money(sum(revenue[b].values())),
            "received": [_money(received[b].get(c, 0)) for c in channels],
            "received_total": _money(sum(received[b].values())),
        }
        for b in buckets
    ]
    chart = {
        "buckets": buckets,
        "series": [
            {
                "name": t,
                "type": "bar",
                "stack": "revenue",
                "data": [str(from_minor(revenue[b].get(t, 0))) for b in buckets],
            }
            for t in charge_types
        ]
        + [
            {
                "name": f"received: {c}",
                "type": "line",
                "data": [str(from_minor(received[b].get(c, 0))) for b in buckets],
            }
            for c in channels
        ],
        "composition": [
            {"name": t, "value": str(from_minor(sum(revenue[b].get(t, 0) for b in buckets)))}
            for t in charge_types
        ],
    }
    return render(
        request,
        "web/finance/income.html",
        {
            "section": "finance",
            "rows": rows,
            "charge_types": charge_types,
            "channels": channels,
            "start": start,
            "end": end,
            "group": group,
            "chart": json.dumps(chart),
            "revenue_total": _money(sum(sum(v.values()) for v in revenue.values())),
            "received_total": _money(sum(sum(v.values()) for v in received.values())),
        },
    )


@staff_view(Permission.VIEW_FINANCE)
def finance_reconciliation(request: HttpRequest) -> HttpResponse:
    """Per day and channel: ledger totals, and provider statements matched line by line."""
    user: Any = request.user
    day = _day(
        request.GET.get("day") or request.POST.get("day"), timezone.localdate() - timedelta(days=1)
    )
    lo, hi = local_bounds(day, day)
    by_channel = (
        org_objects(user, JournalEntry)
        .filter(occurred_at__gte=lo, occurred_at__lt=hi)
        .exclude(channel="")
        .values("channel", "kind")
        .annotate(n=Count("id"), total=Sum("wallet_amount"))
        .order_by("channel", "kind")
    )
    row_errors: list[str] = []
    if request.method == "POST":
        if not user.can(Permission.RECORD_PAYMENTS):
            deny()
        upload = request.FILES.get("statement")
        if upload is None:
            row_errors = [_("Choose a statement file.")]
        else:
            try:
                statement = statement_import(
                    actor=user,
                    organisation=user.organisation,
                    channel=request.POST.get("channel", ""),
                    day=day,
                    filename=upload.name or "statement.csv",
                    content=upload.read(),
                )
            except StatementRejected as exc:
                row_errors = list(exc.messages)
            except ValidationError as exc:
                row_errors = list(exc.messages)
            else:
                messages.success(
                    request,
                    _("Statement imported: %(m)s of %(n)s rows matched.")
                    % {"m": statement.matched, "n": statement.row_count},
                )
                return redirect(f"{request.path}?day={day}&statement={statement.pk}")
    statements = org_objects(user, StatementImport).filter(day=day)
    chosen = None
    if request.GET.get("statement"):
        chosen = access_object(user, StatementImport, request.GET["statement"])
    return render(
        request,
        "web/finance/reconciliation.html",
        {
            "section": "finance",
            "day": day,
            "by_channel": [{**r, "total": _money(r["total"])} for r in by_channel],
            "statements": statements,
            "chosen": chosen,
            "lines": chosen.lines.all() if chosen else [],
            "row_errors": row_errors,
            "channels": [
                ("wechat", "WeChat Pay"),
                ("alipay", "Alipay"),
                ("forwarding", _("Forwarding")),
                ("bank_transfer", _("Bank transfer")),
            ],
        },
    )


@staff_view(Permission.VIEW_FINANCE)
def finance_shift(request: HttpRequest) -> HttpResponse:
    """A cashier's shift: the counter money they took in and paid out, by channel."""
    user: Any = request.user
    day = _day(request.GET.get("day"), timezone.localdate())
    lo, hi = local_bounds(day, day)
    cashiers = (
        org_objects(user, User)
        .filter(role__in=["owner", "finance", "operator"])
        .order_by("username")
    )
    cashier_id = request.GET.get("cashier") or str(user.pk)
    cashier = cashiers.filter(pk=cashier_id).first() if cashier_id.isdigit() else None
    entries = (
        org_objects(user, JournalEntry)
        .filter(occurred_at__gte=lo, occurred_at__lt=hi, created_by=cashier)
        .select_related("account__customer")
        .order_by("occurred_at")
    )
    summary = (
        entries.values("kind", "channel")
        .annotate(n=Count("id"), total=Sum("wallet_amount"))
        .order_by("channel", "kind")
    )
    cash = entries.filter(channel="cash").aggregate(total=Sum("wallet_amount"))["total"] or 0
    return render(
        request,
        "web/finance/shift.html",
        {
            "section": "finance",
            "day": day,
            "cashiers": cashiers,
            "cashier": cashier,
            "entries": entries,
            "summary": [{**s, "total": _money(s["total"])} for s in summary],
            "cash_in_drawer": _money(cash),
        },
    )


@staff_view(Permission.VIEW_FINANCE)
def finance_account(request: HttpRequest, account_id: int) -> HttpResponse:
    """An account's wallet: balance, counter recharge, refund, reversal, ledger history."""
    user: Any = request.user
    account = access_object(user, Account.objects.select_related("customer"), account_id)
    if request.method == "POST":
        if not user.can(Permission.RECORD_PAYMENTS):
            deny()
        action = request.POST.get("action", "")
        key = request.POST.get("idempotency_key") or uuid.uuid4().hex
        try:
            if action == "recharge":
                recharge, _created = recharge_record(
                    actor=user,
                    account=account,
                    amount=request.POST.get("amount", ""),
                    channel=request.POST.get("channel", "cash"),
                    idempotency_key=key,
                    reference=request.POST.get("reference", ""),
                )
                if recharge.status == Recharge.Status.PAID:
                    return redirect("console:finance_receipt", recharge.pk)
                messages.success(
                    request, _("Bank transfer recorded; it is credited once confirmed.")
                )
            elif action == "refund":
                refund_record(
                    actor=user,
                    account=account,
                    amount=request.POST.get("amount") or None,
                    channel=request.POST.get("channel", "cash"),
                    idempotency_key=key,
                )
                messages.success(request, _("Refund recorded."))
            elif action == "energy_refund":
                energy_refund_request(actor=user, account=account, idempotency_key=key)
                messages.success(
                    request,
                    _("Energy refund sent to the meter; the wallet is credited once it confirms."),
                )
            elif action == "download_wallet":
                wallet_download(actor=user, account=account, idempotency_key=key)
                messages.success(request, _("The wallet balance is being downloaded to the meter."))
            elif action == "reverse":
                entry = access_object(user, JournalEntry, request.POST.get("entry"))
                if entry.account_id != account.pk:
                    deny()
                entry_reverse(actor=user, entry=entry, reason=request.POST.get("reason", ""))
                messages.success(request, _("Entry reversed."))
            elif action == "payout":
                entry = access_object(user, JournalEntry, request.POST.get("entry"))
                if entry.account_id != account.pk:
                    deny()
                refund_payout(actor=user, entry=entry, channel=request.POST.get("channel", "cash"))
                messages.success(request, _("Refund paid out."))
            else:
                messages.error(request, _("Unknown action."))
        except IdempotencyConflict:
            messages.error(request, _("This form was already submitted with other values."))
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        return redirect("console:finance_account", account.pk)
    return render(
        request,
        "web/finance/account.html",
        {
            "section": "finance",
            "account": account,
            "wallet": wallet_view(account),
            "entries": page(request, wallet_history(account), 30),
            "form_key": uuid.uuid4().hex,
            "pending": Recharge.objects.filter(account=account, status=Recharge.Status.PENDING),
            "owed": _refunds_owed(account),
            "meter_side": meter_side_view(account),
        },
    )


def _refunds_owed(account: Account) -> list[JournalEntry]:
    """Refunds recorded as payable (e.g. at move-out) and not paid out yet."""
    payable = JournalEntry.objects.filter(
        account=account,
        kind=JournalEntry.Kind.REFUND,
        postings__ledger_account__code="refunds_payable",
    )
    paid = set(
        JournalEntry.objects.filter(
            account=account, kind=JournalEntry.Kind.REFUND_PAYOUT
        ).values_list("reference", flat=True)
    )
    return [e for e in payable if f"entry-{e.pk}" not in paid]


@staff_view(Permission.VIEW_FINANCE)
def finance_receipt(request: HttpRequest, recharge_id: int) -> HttpResponse:
    """A printable receipt of a counter recharge."""
    user: Any = request.user
    recharge = access_object(
        user, Recharge.objects.select_related("account__customer", "entry"), recharge_id
    )
    return render(
        request,
        "web/finance/receipt.html",
        {
            "section": "finance",
            "recharge": recharge,
            "amount": from_minor(recharge.amount_minor, recharge.currency),
            "balance_after": None
            if recharge.balance_after_minor is None
            else from_minor(recharge.balance_after_minor, recharge.currency),
            "organisation": user.organisation,
        },
    )


@staff_view(Permission.RECORD_PAYMENTS)
def finance_confirm(request: HttpRequest, recharge_id: int) -> HttpResponse:
    """POST: finance confirms a bank transfer arrived; the wallet is credited."""
    user: Any = request.user
    recharge = access_object(user, Recharge, recharge_id)
    if request.method != "POST":
        return redirect("console:finance_orders")
    try:
        recharge_confirm(actor=user, recharge=recharge)
        messages.success(request, _("Transfer %(n)s confirmed.") % {"n": recharge.number})
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect_next(request, "console:finance_orders")
