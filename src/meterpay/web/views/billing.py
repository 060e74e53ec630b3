"""The month end in the console: bill runs (make, check, confirm, issue, discard), bills
(payments, credit notes, corrected bills, PDFs), the bills, payments and arrears lists with
their XLSX exports. Thin: objects come through ``organisations.access``, the role is checked
first, and every write is one ``apps.billing`` service whose errors are shown as they are.
The set-up pages (charge items, shared consumption, templates, schedules) are in
``billing_setup``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from meterpay.apps.billing import documents, exports
from meterpay.apps.billing.bills import (
    bill_confirm,
    bill_credit,
    bill_issue,
    bill_pay,
    bill_reissue,
    overdue_bills,
)
from meterpay.apps.billing.lines import micro_price
from meterpay.apps.billing.models import AllocationRule, Bill, BillLine, BillRun
from meterpay.apps.billing.runs import (
    bill_run_compute,
    bill_run_confirm,
    bill_run_create,
    bill_run_issue,
    bill_run_unconfirm,
    bill_run_void,
    previous_month,
)
from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.sites.models import Site
from meterpay.apps.supply.selectors import policy_row
from meterpay.core.ledger import IdempotencyConflict
from meterpay.core.money import MoneyError, from_minor, parse_amount
from meterpay.core.roles import Permission
from meterpay.web.views.base import deny, page, querystring_without_page, staff_view

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ONE_DAY = timedelta(days=1)

#: Status and section names as the billing pages say them (the words are shared with other
#: models' labels, so they have their own context here).
BILL_STATUS = {
    "draft": pgettext_lazy("bill status", "Draft"),
    "confirmed": pgettext_lazy("bill status", "Confirmed"),
    "issued": pgettext_lazy("bill status", "Issued"),
    "paid": pgettext_lazy("bill status", "Paid"),
    "credited": pgettext_lazy("bill status", "Credited"),
    "void": pgettext_lazy("bill status", "Discarded"),
}
RUN_STATUS = {
    "draft": pgettext_lazy("bill run status", "Draft"),
    "confirmed": pgettext_lazy("bill run status", "Confirmed"),
    "issued": pgettext_lazy("bill run status", "Issued"),
    "void": pgettext_lazy("bill run status", "Discarded"),
}
SECTIONS = {
    "energy": pgettext_lazy("bill section", "Electricity"),
    "basic": pgettext_lazy("bill section", "Basic charge"),
    "power_factor": pgettext_lazy("bill section", "Power-factor adjustment"),
    "water": pgettext_lazy("bill section", "Water and sewage"),
    "charges": pgettext_lazy("bill section", "Rent and fees"),
    "public_share": pgettext_lazy("bill section", "Public-area share"),
    "line_loss": pgettext_lazy("bill section", "Line loss"),
    "adjustment": pgettext_lazy("bill section", "Adjustments"),
    "balance": pgettext_lazy("bill section", "Balance"),
}

#: The review's flags, as finance reads them (``meterpay.core.billing.review``).
FLAGS = {
    "jump": gettext_lazy("jump"),
    "drop": gettext_lazy("drop"),
    "outlier": gettext_lazy("outlier"),
    "zero_consumption": gettext_lazy("no consumption"),
    "no_previous": gettext_lazy("no previous bill"),
    "negative_total": gettext_lazy("negative total"),
}
#: Flags that inform without asking for a look (a first bill has nothing to compare with).
INFORMATIVE = {"no_previous"}
FLAG_HELP = {
    "jump": gettext_lazy("The total rose by at least 50 % and 50.00 on the previous bill."),
    "drop": gettext_lazy("The total fell by at least 50 % and 50.00 on the previous bill."),
    "outlier": gettext_lazy("Far above the other bills of the run."),
    "zero_consumption": gettext_lazy("An open account that used nothing."),
    "no_previous": gettext_lazy("The account's first bill."),
    "negative_total": gettext_lazy("The bill owes the customer money."),
}


def money(minor: int | None, currency: str = "CNY") -> str:
    """Minor units as ``1,234.56`` (the printed bills' format)."""
    return documents.money(int(minor or 0), currency)


def quantity_text(value: Decimal | str | None) -> str:
    """``1300.0000`` → ``1,300``, ``62.5000`` → ``62.5``; empty for none."""
    if value in (None, ""):
        return ""
    text = f"{Decimal(str(value)):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def price_text(micro: int | None) -> str:
    """A unit price in millionths as a decimal with at least two places: ``0.68``, ``60.00``."""
    if micro is None:
        return ""
    price = micro_price(micro).normalize()
    if -price.as_tuple().exponent < 2:  # type: ignore[operator]
        price = price.quantize(Decimal("0.01"))
    return f"{price:f}"


UNITS = {
    "m2": "m²",
    "m3": "m³",
    "month": pgettext_lazy("charge unit", "month"),
    "quarter": pgettext_lazy("charge unit", "quarter"),
    "year": pgettext_lazy("charge unit", "year"),
    "once": pgettext_lazy("charge unit", "once"),
}


def unit_text(unit: str | None) -> str:
    return str(UNITS.get(unit or "", unit or ""))


def percent_text(ratio: Decimal | str | None, places: str = "0.01") -> str:
    if ratio in (None, ""):
        return ""
    return f"{(Decimal(str(ratio)) * 100).quantize(Decimal(places))} %"


def last_day(end: date) -> date:
    """The last day of a period whose end is exclusive."""
    return end - ONE_DAY


def problems(exc: ValidationError) -> list[str]:
    """A service's error as a list of sentences (a run's problems are one each)."""
    return [str(message) for message in exc.messages]


def _language(request: HttpRequest) -> str:
    chosen = request.GET.get("language", "")
    if chosen in ("zh-hans", "en"):
        return chosen
    return "en" if (translation.get_language() or "").startswith("en") else "zh-hans"


def _site_of(account: Account) -> str:
    rooms = list(account.rooms.all())
    return rooms[0].floor.building.site.name if rooms else ""


def _rooms_of(account: Account) -> str:
    return ", ".join(room.number for room in account.rooms.all())


def _with_review(bill: Bill) -> Bill:
    """Attach what the review table shows (formatted money, change, flags)."""
    review = bill.review or {}
    previous = review.get("previous_total_minor")
    change = review.get("change_minor")
    bill.status_label = BILL_STATUS.get(bill.status, bill.status)  # type: ignore[attr-defined]
    bill.last_day = (  # type: ignore[attr-defined]
        last_day(bill.period_end) if bill.period_start else bill.period_end
    )
    bill.total_text = money(bill.total_minor, bill.currency)  # type: ignore[attr-defined]
    bill.due_text = money(bill.due_minor, bill.currency)  # type: ignore[attr-defined]
    bill.unpaid_text = money(bill.unpaid_minor, bill.currency)  # type: ignore[attr-defined]
    bill.unpaid_plain = str(from_minor(bill.unpaid_minor, bill.currency))  # type: ignore[attr-defined]
    bill.previous_text = (  # type: ignore[attr-defined]
        "" if previous is None else money(previous, bill.currency)
    )
    bill.change_text = (  # type: ignore[attr-defined]
        "" if change is None else ("+" if change > 0 else "") + money(change, bill.currency)
    )
    percent = review.get("change_percent")
    bill.percent_text = (  # type: ignore[attr-defined]
        ""
        if percent in (None, "")
        else ("+" if Decimal(percent) > 0 else "") + f"{Decimal(percent):.1f} %"
    )
    bill.flags = [  # type: ignore[attr-defined]
        {"code": flag, "label": FLAGS.get(flag, flag), "help": FLAG_HELP.get(flag, "")}
        for flag in review.get("flags") or []
    ]
    bill.to_check = any(  # type: ignore[attr-defined]
        flag not in INFORMATIVE for flag in review.get("flags") or []
    )
    return bill


# --- bill runs ---------------------------------------------------------------------------------


@staff_view()
def bill_run_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    live = ~Q(bills__status=Bill.Status.VOID)
    runs = (
        org_objects(user, BillRun)
        .select_related("site", "created_by")
        .annotate(
            bill_count=Count("bills", filter=live),
            total=Sum("bills__total_minor", filter=live),
            due=Sum("bills__due_minor", filter=live),
            unpaid=Sum("bills__unpaid_minor", filter=live),
        )
        .order_by("-period_start", "-id")
    )
    status = request.GET.get("status", "")
    site_id = request.GET.get("site", "")
    if status in BillRun.Status.values:
        runs = runs.filter(status=status)
    if site_id.isdigit():
        runs = runs.filter(site_id=int(site_id))
    listed = page(request, runs)
    for run in listed:
        run.status_label = RUN_STATUS.get(run.status, run.status)
        run.last_day = last_day(run.period_end)
        run.total_text = money(run.total)
        run.due_text = money(run.due)
        run.unpaid_text = money(run.unpaid)
    return render(
        request,
        "web/billing/runs.html",
        {
            "section": "billing",
            "tab": "runs",
            "runs": listed,
            "statuses": list(RUN_STATUS.items()),
            "sites": org_objects(user, Site).order_by("name"),
            "status": status,
            "site_id": site_id,
            "query": querystring_without_page(request),
        },
    )


class RunForm(forms.Form):
    site = forms.ModelChoiceField(
        label=gettext_lazy("site"),
        queryset=Site.objects.none(),
        required=False,
        empty_label=gettext_lazy("(every site: choose the accounts)"),
    )
    accounts = forms.ModelMultipleChoiceField(
        label=gettext_lazy("only these accounts"),
        queryset=Account.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 12}),
        help_text=gettext_lazy(
            "Leave empty to bill every account of the site. Ctrl- or Cmd-click to pick several."
        ),
    )
    period_start = forms.DateField(
        label=gettext_lazy("period from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    period_last = forms.DateField(
        label=gettext_lazy("period to (inclusive)"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    due_on = forms.DateField(
        label=gettext_lazy("due on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("Empty: the period's end plus the postpaid due days of the policy."),
    )

    def __init__(self, *args: Any, user: Any, site_id: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = org_objects(user, Site).order_by("name")  # type: ignore[attr-defined]
        accounts = (
            org_objects(user, Account)
            .exclude(status=Account.Status.PRESET)
            .select_related("customer")
            .order_by("number")
        )
        if site_id.isdigit():
            accounts = accounts.filter(rooms__floor__building__site_id=int(site_id)).distinct()
        self.fields["accounts"].queryset = accounts  # type: ignore[attr-defined]
        self.fields["accounts"].label_from_instance = lambda a: (  # type: ignore[attr-defined]
            f"{a.number} · {a.customer.name}"
        )


@staff_view(Permission.RUN_BILLS)
def bill_run_new(request: HttpRequest) -> HttpResponse:
    """Make a run: a site (or some of its accounts) and a period; its bills are drafts."""
    user: Any = request.user
    start, end = previous_month(timezone.localdate())
    due_days = policy_row(user.organisation_id).postpaid_due_days
    site_id = request.POST.get("site") or request.GET.get("site", "")
    sites = org_objects(user, Site).order_by("name")
    if not site_id and sites.count() == 1:
        site_id = str(sites.get().pk)
    form = RunForm(
        request.POST if request.method == "POST" else None,
        user=user,
        site_id=site_id,
        initial={
            "site": site_id or None,
            "period_start": start,
            "period_last": last_day(end),
            "due_on": end + timedelta(days=due_days),
        },
    )
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = bill_run_create(
                actor=user,
                organisation_id=user.organisation_id,
                period_start=data["period_start"],
                period_end=data["period_last"] + ONE_DAY,
                site=data["site"],
                accounts=list(data["accounts"]),
                due_on=data["due_on"],
            )
        except ValidationError as exc:
            errors = problems(exc)
        else:
            count = run.bills.count()
            messages.success(
                request,
                ngettext(
                    "Run %(number)s made: %(count)s draft bill to check.",
                    "Run %(number)s made: %(count)s draft bills to check.",
                    count,
                )
                % {"number": run.number, "count": count},
            )
            return redirect("console:bill_run_detail", run.pk)
    return render(
        request,
        "web/billing/run_new.html",
        {
            "section": "billing",
            "tab": "runs",
            "form": form,
            "errors": errors,
            "due_days": due_days,
        },
    )


#: Who may take a run through each step (checked before anything else).
RUN_ACTIONS = {
    "remake": Permission.RUN_BILLS,
    "confirm": Permission.ISSUE_BILLS,
    "unconfirm": Permission.ISSUE_BILLS,
    "issue": Permission.ISSUE_BILLS,
    "discard": Permission.RUN_BILLS,
}


def _section_totals(bills: Any) -> list[dict[str, Any]]:
    titles = SECTIONS
    rows = (
        BillLine.objects.filter(bill__in=bills)
        .values("section")
        .annotate(total=Sum("amount_minor"), n=Count("bill", distinct=True))
    )
    order = list(titles)
    return [
        {"title": titles.get(r["section"], r["section"]), "total": money(r["total"]), "n": r["n"]}
        for r in sorted(
            rows, key=lambda r: order.index(r["section"]) if r["section"] in order else 99
        )
    ]


def _findings(run: BillRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The public-area groups and the line-loss groups of the run, formatted for the page."""
    rules = dict(AllocationRule.choices)
    public, loss = [], []
    for finding in (run.findings or {}).get("groups", []):
        unit = unit_text(finding.get("unit"))
        if finding.get("kind") == "public":
            public.append(
                {
                    "group": finding.get("group"),
                    "group_id": finding.get("group_id"),
                    "meter": finding.get("meter"),
                    "rule": rules.get(finding.get("rule"), finding.get("rule")),
                    "quantity": quantity_text(finding.get("quantity")),
                    "unit": unit,
                    "amount": money(finding.get("amount_minor")),
                    "members": [
                        {
                            "account": m.get("account"),
                            "weight": quantity_text(m.get("weight")),
                            "ratio": percent_text(m.get("ratio")),
                            "quantity": quantity_text(m.get("quantity")),
                            "amount": money(m.get("amount_minor")),
                            "billed": m.get("billed"),
                        }
                        for m in finding.get("members", [])
                    ],
                }
            )
        elif finding.get("kind") == "loss":
            readings = finding.get("readings") or ["", ""]
            loss.append(
                {
                    "group": finding.get("group"),
                    "group_id": finding.get("group_id"),
                    "unit": unit,
                    "start": quantity_text(readings[0]),
                    "end": quantity_text(readings[1]),
                    "grid": quantity_text(finding.get("grid")),
                    "metered": quantity_text(finding.get("metered")),
                    "loss": quantity_text(finding.get("loss")),
                    "rate": percent_text(finding.get("loss_rate")),
                    "negative": bool(finding.get("negative")),
                    "computed": "grid" in finding,
                    "reason": finding.get("reason") or "",
                    "amount": money(finding.get("amount_minor")),
                    "lines": [
                        {
                            "account": line.get("account"),
                            "usage": quantity_text(line.get("usage")),
                            "ratio": percent_text(line.get("ratio")),
                            "loss": quantity_text(line.get("loss")),
                            "amount": money(line.get("amount_minor")),
                            "billed": line.get("billed"),
                        }
                        for line in finding.get("lines", [])
                    ],
                }
            )
    return public, loss


@staff_view()
def bill_run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run: its summary, the review of every bill, the shared consumption, and its steps."""
    user: Any = request.user
    run = access_object(user, BillRun.objects.select_related("site", "created_by"), run_id)
    if request.method == "POST":
        action = request.POST.get("action", "")
        needed = RUN_ACTIONS.get(action)
        if action == "discard" and run.status == BillRun.Status.CONFIRMED:
            needed = Permission.ISSUE_BILLS
        if needed is None or not user.can(needed):
            deny()
        step = {
            "remake": bill_run_compute,
            "confirm": bill_run_confirm,
            "unconfirm": bill_run_unconfirm,
            "issue": bill_run_issue,
            "discard": bill_run_void,
        }[action]
        try:
            step(actor=user, run=run)
        except ValidationError as exc:
            for problem in problems(exc):
                messages.error(request, problem)
        else:
            done = {
                "remake": _("The draft bills were made again from the current data."),
                "confirm": _("Run confirmed: its bills can be issued."),
                "unconfirm": _("The run is a draft again."),
                "issue": _("Run issued: the bills are booked and sent."),
                "discard": _("Run discarded with its bills."),
            }[action]
            messages.success(request, done)
        return redirect("console:bill_run_detail", run.pk)
    bills = run.bills.exclude(status=Bill.Status.VOID)
    rows = [
        _with_review(bill)
        for bill in run.bills.select_related("account__customer").order_by("account__number", "pk")
    ]
    flagged = request.GET.get("flagged") == "1"
    if flagged:
        rows = [bill for bill in rows if bill.to_check]  # type: ignore[attr-defined]
    totals = bills.aggregate(
        n=Count("pk"), total=Sum("total_minor"), due=Sum("due_minor"), unpaid=Sum("unpaid_minor")
    )
    by_status = dict(bills.values_list("status").annotate(n=Count("pk")))
    public, loss = _findings(run)
    flag_counts: dict[str, int] = {}
    for bill in run.bills.exclude(status=Bill.Status.VOID).values_list("review", flat=True):
        for flag in (bill or {}).get("flags") or []:
            flag_counts[flag] = flag_counts.get(flag, 0) + 1
    statuses = BILL_STATUS
    run.status_label = RUN_STATUS.get(run.status, run.status)  # type: ignore[attr-defined]
    return render(
        request,
        "web/billing/run.html",
        {
            "section": "billing",
            "tab": "runs",
            "run": run,
            "last_day": last_day(run.period_end),
            "bills": rows,
            "flagged": flagged,
            "count": totals["n"] or 0,
            "total": money(totals["total"]),
            "due": money(totals["due"]),
            "unpaid": money(totals["unpaid"]),
            "by_status": [(statuses.get(s, s), n) for s, n in by_status.items()],
            "sections": _section_totals(bills),
            "flag_counts": [
                {"code": code, "label": FLAGS.get(code, code), "n": n}
                for code, n in sorted(flag_counts.items())
            ],
            "public": public,
            "loss": loss,
            "accounts": list(run.accounts.values_list("number", flat=True)),
            "can_run": user.can(Permission.RUN_BILLS),
            "can_issue": user.can(Permission.ISSUE_BILLS),
            "language": _language(request),
        },
    )


def _download(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_view()
def bill_run_pdf(request: HttpRequest, run_id: int) -> HttpResponse:
    """Every bill of the run in one PDF file, to print."""
    run = access_object(request.user, BillRun, run_id)
    language = _language(request)
    content = documents.run_pdf_bytes(run=run, language=language)
    return _download(content, "application/pdf", f"{run.number}-{language}.pdf")


@staff_view()
def bill_run_zip(request: HttpRequest, run_id: int) -> HttpResponse:
    """One PDF per bill of the run, in a zip file."""
    run = access_object(request.user, BillRun, run_id)
    language = _language(request)
    content = documents.run_zip_bytes(run=run, language=language)
    return _download(content, "application/zip", f"{run.number}-{language}.zip")


# --- bills -----------------------------------------------------------------------------------


def _overdue_q(today: date) -> Q:
    return Q(status=Bill.Status.ISSUED, unpaid_minor__gt=0, due_on__lt=today)


@staff_view()
def bill_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    today = timezone.localdate()
    bills = (
        org_objects(user, Bill)
        .select_related("account__customer", "run")
        .order_by("-period_end", "-number")
    )
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    site_id = request.GET.get("site", "")
    overdue = request.GET.get("overdue") == "1"
    q = request.GET.get("q", "").strip()
    if status in Bill.Status.values:
        bills = bills.filter(status=status)
    if kind in Bill.Kind.values:
        bills = bills.filter(kind=kind)
    if site_id.isdigit():
        in_site = Account.objects.filter(rooms__floor__building__site_id=int(site_id))
        bills = bills.filter(account__in=in_site.values("pk"))
    if overdue:
        bills = bills.filter(_overdue_q(today))
    if q:
        bills = bills.filter(
            Q(number__icontains=q)
            | Q(account__number__icontains=q)
            | Q(account__customer__name__icontains=q)
        )
    totals = bills.aggregate(
        n=Count("pk"), total=Sum("total_minor"), due=Sum("due_minor"), unpaid=Sum("unpaid_minor")
    )
    listed = page(request, bills)
    for bill in listed:
        _with_review(bill)
        bill.is_overdue = (  # type: ignore[attr-defined]
            bill.status == Bill.Status.ISSUED and bill.unpaid_minor > 0 and bill.due_on < today
        )
    return render(
        request,
        "web/billing/bills.html",
        {
            "section": "billing",
            "tab": "bills",
            "bills": listed,
            "statuses": list(BILL_STATUS.items()),
            "kinds": Bill.Kind.choices,
            "sites": org_objects(user, Site).order_by("name"),
            "status": status,
            "kind": kind,
            "site_id": site_id,
            "overdue": overdue,
            "q": q,
            "count": totals["n"] or 0,
            "total": money(totals["total"]),
            "due": money(totals["due"]),
            "unpaid": money(totals["unpaid"]),
            "query": querystring_without_page(request),
        },
    )


def _sections(lines: Iterable[BillLine], currency: str) -> list[dict[str, Any]]:
    """The bill's lines grouped by section (in the order they come), with subtotals."""
    titles = SECTIONS
    sections: list[dict[str, Any]] = []
    for line in lines:
        if not sections or sections[-1]["code"] != line.section:
            sections.append(
                {
                    "code": line.section,
                    "title": titles.get(line.section, line.section),
                    "lines": [],
                    "minor": 0,
                }
            )
        section = sections[-1]
        section["minor"] += line.amount_minor
        section["lines"].append(
            {
                "label": line.label,
                "quantity": quantity_text(line.quantity),
                "unit": unit_text(line.unit),
                "price": price_text(line.unit_price_micro),
                "amount": money(line.amount_minor, currency),
                "negative": line.amount_minor < 0,
                "posted": line.posted,
            }
        )
    for section in sections:
        section["subtotal"] = money(section["minor"], currency)
    return sections


def _readings(bill: Bill) -> list[dict[str, Any]]:
    kinds = {
        "electricity_1p": _("Electricity, single-phase"),
        "electricity_3p": _("Electricity, three-phase"),
        "water": _("Water"),
    }
    return [
        {
            "address": m.get("address", ""),
            "kind": kinds.get(m.get("kind", ""), m.get("kind", "")),
            "first": quantity_text(m.get("first_reading")) or "—",
            "last": quantity_text(m.get("last_reading")) or "—",
            "multiplier": m.get("multiplier", 1),
            "consumption": quantity_text(m.get("consumption")),
            "unit": "m³" if m.get("utility") == "water" else "kWh",
        }
        for m in bill.readings or []
    ]


def _adjustments(request: HttpRequest) -> list[tuple[str, Decimal]]:
    """The adjustment rows of the re-issue form; a row with only one of its two parts is an
    error the clerk sees."""
    rows = []
    labels = request.POST.getlist("adjustment_label")
    amounts = request.POST.getlist("adjustment_amount")
    for label, amount in zip(labels, amounts, strict=False):
        label, amount = label.strip(), amount.strip()
        if not label and not amount:
            continue
        if not amount:
            raise ValidationError(_("Adjustment %(label)s: give an amount.") % {"label": label})
        try:
            value = parse_amount(amount)
        except MoneyError:
            raise ValidationError(
                _("%(value)s is not an amount like -50.00.") % {"value": amount}
            ) from None
        if not label:
            raise ValidationError(_("Every adjustment needs a label."))
        rows.append((label, value))
    return rows


#: Who may do what on a bill page.
BILL_ACTIONS = {
    "confirm": Permission.ISSUE_BILLS,
    "issue": Permission.ISSUE_BILLS,
    "pay": Permission.RECORD_PAYMENTS,
    "credit": Permission.ISSUE_BILLS,
    "reissue": Permission.ISSUE_BILLS,
}


def _bill_action(request: HttpRequest, user: Any, bill: Bill, action: str) -> HttpResponse:
    target = bill
    if action == "confirm":
        bill_confirm(actor=user, bill=bill)
        messages.success(request, _("Bill confirmed."))
    elif action == "issue":
        bill_issue(actor=user, bill=bill)
        messages.success(request, _("Bill issued: it is booked and sent to the customer."))
    elif action == "pay":
        paid = bill_pay(
            actor=user,
            bill=bill,
            amount=request.POST.get("amount", "").replace(",", "").strip(),
            channel=request.POST.get("channel", "cash"),
            idempotency_key=request.POST.get("idempotency_key") or uuid.uuid4().hex,
            reference=request.POST.get("reference", "").strip(),
        )
        if paid.status == Bill.Status.PAID:
            messages.success(request, _("Payment recorded: the bill is paid."))
        else:
            messages.success(
                request,
                _("Payment recorded: %(unpaid)s is still unpaid.")
                % {"unpaid": money(paid.unpaid_minor, paid.currency)},
            )
    elif action == "credit":
        note = bill_credit(actor=user, bill=bill, reason=request.POST.get("reason", ""))
        messages.success(request, _("Credit note %(number)s issued.") % {"number": note.number})
        target = note
    elif action == "reissue":
        adjustments = _adjustments(request)
        replacement = bill_reissue(
            actor=user, bill=bill, reason=request.POST.get("reason", ""), adjustments=adjustments
        )
        messages.success(
            request,
            _("Bill credited; the corrected bill %(number)s is a draft to confirm and issue.")
            % {"number": replacement.number},
        )
        target = replacement
    return redirect("console:bill_detail", target.pk)


@staff_view()
def bill_detail(request: HttpRequest, bill_id: int) -> HttpResponse:
    """A bill: readings, lines by section, what is due and unpaid; its actions by status."""
    user: Any = request.user
    bill = access_object(
        user,
        Bill.objects.select_related("account__customer", "run", "replaces", "credits", "entry"),
        bill_id,
    )
    if request.method == "POST":
        action = request.POST.get("action", "")
        needed = BILL_ACTIONS.get(action)
        if needed is None or not user.can(needed):
            deny()
        try:
            return _bill_action(request, user, bill, action)
        except IdempotencyConflict:
            messages.error(request, _("This form was already submitted with other values."))
        except ValidationError as exc:
            for problem in problems(exc):
                messages.error(request, problem)
        return redirect("console:bill_detail", bill.pk)
    today = timezone.localdate()
    lines = list(bill.lines.order_by("position"))
    _with_review(bill)
    replaced_by = list(bill.replaced_by.order_by("pk"))
    for other in replaced_by:
        other.status_label = BILL_STATUS.get(other.status, other.status)  # type: ignore[attr-defined]
    live = bill.status in (Bill.Status.ISSUED, Bill.Status.PAID)
    return render(
        request,
        "web/billing/bill.html",
        {
            "section": "billing",
            "tab": "bills",
            "bill": bill,
            "account": bill.account,
            "rooms": _rooms_of(bill.account),
            "site": _site_of(bill.account),
            "sections": _sections(lines, bill.currency),
            "readings": _readings(bill),
            "paid": money(bill.due_minor - bill.unpaid_minor if live else 0, bill.currency),
            "is_overdue": bill.status == Bill.Status.ISSUED
            and bill.unpaid_minor > 0
            and bill.due_on < today,
            "days_overdue": (today - bill.due_on).days,
            "credit_notes": list(bill.credit_notes.order_by("pk")),
            "replaced_by": replaced_by,
            "can_pay": live and bill.unpaid_minor > 0 and user.can(Permission.RECORD_PAYMENTS),
            "can_correct": live
            and bill.kind != Bill.Kind.CREDIT_NOTE
            and user.can(Permission.ISSUE_BILLS),
            "can_issue": user.can(Permission.ISSUE_BILLS),
            "form_key": uuid.uuid4().hex,
            "language": _language(request),
            "adjustment_rows": range(3),
        },
    )


@staff_view()
def bill_pdf(request: HttpRequest, bill_id: int) -> HttpResponse:
    """The printed bill, in the language asked for (else the user's)."""
    bill = access_object(request.user, Bill, bill_id)
    language = _language(request)
    content = documents.bill_pdf_bytes(bill=bill, language=language)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{bill.number}-{language}.pdf"'
    return response


# --- payments and arrears --------------------------------------------------------------------


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


@staff_view(Permission.VIEW_FINANCE)
def bill_payments(request: HttpRequest) -> HttpResponse:
    """Payments towards bills: payments of requested charges, and recharges of postpaid
    accounts (which pay their bills), in a span of days."""
    user: Any = request.user
    today = timezone.localdate()
    end = _day(request.GET.get("to"), today)
    start = _day(request.GET.get("from"), end - timedelta(days=29))
    if start > end:
        start, end = end, start
    if request.GET.get("export") == "xlsx":
        content = exports.payments_xlsx(organisation_id=user.organisation_id, start=start, end=end)
        return _download(content, XLSX, f"payments-{start}-{end}.xlsx")
    rows = exports.payments_rows(organisation_id=user.organisation_id, start=start, end=end)
    rows.reverse()  # newest first on the page
    total = sum(row[5].minor for row in rows)
    listed = page(request, rows)
    return render(
        request,
        "web/billing/payments.html",
        {
            "section": "billing",
            "tab": "payments",
            "rows": [
                {
                    "at": row[0],
                    "account": row[1],
                    "customer": row[2],
                    "channel": row[3],
                    "reference": row[4],
                    "amount": money(row[5].minor),
                    "kind": row[6],
                }
                for row in listed
            ],
            "page_obj": listed,
            "count": len(rows),
            "total": money(total),
            "start": start,
            "end": end,
            "query": querystring_without_page(request),
        },
    )


@staff_view()
def bill_arrears(request: HttpRequest) -> HttpResponse:
    """Issued bills still unpaid after their due date, oldest first."""
    user: Any = request.user
    today = timezone.localdate()
    if request.GET.get("export") == "xlsx":
        content = exports.arrears_xlsx(organisation_id=user.organisation_id, today=today)
        return _download(content, XLSX, f"arrears-{today}.xlsx")
    bills = (
        overdue_bills(organisation_id=user.organisation_id, today=today)
        .select_related("account__customer")
        .order_by("due_on", "number")
    )
    totals = bills.aggregate(n=Count("pk"), unpaid=Sum("unpaid_minor"))
    listed = page(request, bills)
    for bill in listed:
        bill.unpaid_text = money(bill.unpaid_minor, bill.currency)
        bill.days = (today - bill.due_on).days
    return render(
        request,
        "web/billing/arrears.html",
        {
            "section": "billing",
            "tab": "arrears",
            "bills": listed,
            "count": totals["n"] or 0,
            "unpaid": money(totals["unpaid"]),
            "today": today,
            "query": querystring_without_page(request),
        },
    )
