"""Bill runs: the bills of a period for a site or a selection of accounts.

draft (made, and remade as often as needed: a remake replaces the drafts) → confirmed (finance
checked the review: each bill against the previous period, outliers flagged) → issued (every
bill booked and sent). A problem in the inputs (an allocation with no members, a per-m² charge
on an account without area, a grid reading below the one before) stops the run with every
problem named, and nothing is written. Scheduled runs (``BillSchedule``) make a site's run for
the month before on a day of the month, and may confirm and issue it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record
from meterpay.apps.billing.bills import (
    BillError,
    bill_number,
    bill_values,
    bills_issue,
    bills_store_values,
)
from meterpay.apps.billing.charges import charge_lines
from meterpay.apps.billing.consumption import AccountConsumption, accounts_consumption, ids_match
from meterpay.apps.billing.lines import LineDraft
from meterpay.apps.billing.models import Bill, BillRun, BillSchedule
from meterpay.apps.billing.sharing import account_areas, share_lines, share_totals
from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.supply.selectors import policy_row
from meterpay.core.billing.review import BillFigures, review_run

log = logging.getLogger(__name__)
type Actor = Any


def run_accounts(run: BillRun) -> list[Account]:
    """The run's selection, or every account of its site supplied during the period."""
    selected = list(run.accounts.all().order_by("number"))
    if selected:
        return selected
    start, end = run.period_start, run.period_end
    rows = (
        Account.objects.filter(organisation_id=run.organisation_id)
        .exclude(status=Account.Status.PRESET)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__date__gte=start))
        .filter(Q(opened_at__isnull=True) | Q(opened_at__date__lt=end))
    )
    if run.site_id is not None:
        rows = rows.filter(rooms__floor__building__site_id=run.site_id)
    return list(rows.distinct().order_by("number"))


def _sites(run: BillRun, accounts: Sequence[Account]) -> set[int]:
    if run.site_id is not None:
        return {run.site_id}
    from meterpay.apps.sites.models import Room

    return set(
        Room.objects.filter(ids_match("accounts", (a.pk for a in accounts))).values_list(
            "floor__building__site_id", flat=True
        )
    )


def _previous(accounts: Sequence[Account], start: date) -> dict[str, BillFigures]:
    """Each account's latest live bill before the period (for the review)."""
    found: dict[str, BillFigures] = {}
    rows = (
        Bill.objects.filter(
            ids_match("account_id", (a.pk for a in accounts)),
            kind=Bill.Kind.STATEMENT,
            status__in=("issued", "paid"),
            period_end__lte=start,
        )
        .order_by("account_id", "-period_end", "-pk")
        .values_list("account__number", "total_minor", "readings")
    )
    for number, total, readings in rows:
        if number in found:
            continue
        kwh = m3 = Decimal(0)
        for meter in readings or []:
            value = Decimal(meter.get("consumption") or 0)
            if meter.get("utility") == "water":
                m3 += value
            else:
                kwh += value
        found[number] = BillFigures(key=number, total_minor=total, kwh=kwh, m3=m3)
    return found


@transaction.atomic
def bill_run_create(
    *,
    actor: Actor,
    organisation_id: int,
    period_start: date,
    period_end: date,
    site: Any = None,
    accounts: Sequence[Account] = (),
    due_on: date | None = None,
    schedule: BillSchedule | None = None,
) -> BillRun:
    """Make a run and its draft bills."""
    if period_end <= period_start:
        raise BillError({"period_end": _("the period ends before it starts")})
    if site is not None and site.organisation_id != organisation_id:
        raise BillError({"site": _("not found")})
    if any(a.organisation_id != organisation_id for a in accounts):
        raise BillError({"accounts": _("not found")})
    if site is None and not accounts:
        raise BillError({"site": _("choose a site or the accounts to bill")})
    if due_on is None:
        due_on = period_end + timedelta(days=policy_row(organisation_id).postpaid_due_days)
    Organisation.objects.select_for_update().filter(pk=organisation_id).first()
    prefix = f"R{period_start:%Y%m}"
    count = BillRun.objects.filter(
        organisation_id=organisation_id, number__startswith=prefix
    ).count()
    run = BillRun.objects.create(
        organisation_id=organisation_id,
        number=f"{prefix}-{count + 1:03d}",
        site=site,
        period_start=period_start,
        period_end=period_end,
        due_on=due_on,
        schedule=schedule,
        created_by=actor if hasattr(actor, "pk") else None,
    )
    if accounts:
        run.accounts.set(accounts)
    bill_run_compute(actor=actor, run=run)
    audit_record(
        actor=actor,
        action="bill_run.create",
        obj=run,
        after={
            "number": run.number,
            "period": [str(period_start), str(period_end)],
            "site": getattr(site, "pk", None),
            "accounts": len(accounts),
        },
    )
    run.refresh_from_db()
    return run


@transaction.atomic
def bill_run_compute(*, actor: Actor, run: BillRun) -> BillRun:
    """(Re)make the draft bills of a draft run from what is stored now."""
    run = BillRun.objects.select_for_update().get(pk=run.pk)
    if run.status != BillRun.Status.DRAFT:
        raise BillError({"status": _("only a draft run is remade; un-confirm it first")})
    accounts = run_accounts(run)
    organisation = Organisation.objects.get(pk=run.organisation_id)
    currency = organisation.currency
    start, end = run.period_start, run.period_end
    consumption = accounts_consumption(accounts=accounts, start=start, end=end, currency=currency)
    areas = account_areas({a.pk for a in accounts})
    charges, problems = charge_lines(
        accounts=accounts,
        start=start,
        end=end,
        consumption=consumption,
        areas=areas,
        currency=currency,
        run_id=run.pk,
    )
    shared = share_lines(
        organisation_id=run.organisation_id,
        site_ids=_sites(run, accounts),
        accounts=accounts,
        start=start,
        end=end,
        consumption=consumption,
        areas=areas,
    )
    problems += shared.problems
    if problems:
        raise BillError({"__all__": problems})
    run.bills.filter(status=Bill.Status.DRAFT).delete()
    # an account billed for this period already (by this run or another) is not billed again
    billed = set(
        Bill.objects.filter(
            ids_match("account_id", (a.pk for a in accounts)),
            kind__in=(Bill.Kind.STATEMENT, Bill.Kind.FINAL),
            status__in=("draft", "confirmed", "issued", "paid"),
            period_start__lt=end,
            period_end__gt=start,
        ).values_list("account_id", flat=True)
    )
    drafts: list[tuple[Account, list[LineDraft], AccountConsumption]] = []
    for account in accounts:
        if account.pk in billed:
            continue
        use = consumption[account.pk]
        lines = [*use.lines, *charges.get(account.pk, []), *shared.lines.get(account.pk, [])]
        if not lines and account.status != Account.Status.OPEN:
            continue
        drafts.append((account, lines, use))
    reviews = {
        r.key: r
        for r in review_run(
            current=[
                BillFigures(
                    key=account.number,
                    total_minor=sum(line.amount_minor for line in lines),
                    kwh=use.kwh,
                    m3=use.m3,
                    account_open=account.status == Account.Status.OPEN,
                )
                for account, lines, use in drafts
            ],
            previous=_previous([a for a, _l, _u in drafts], start),
        )
    }
    numbers = bill_number(run.organisation_id, f"B{start:%Y%m}", len(drafts))
    rows = []
    for (account, lines, use), number in zip(drafts, numbers, strict=True):
        review = reviews[account.number]
        kwh, m3 = use.kwh, use.m3
        bill = bill_values(
            account=account,
            kind=Bill.Kind.STATEMENT,
            period_start=start,
            period_end=end,
            due_on=run.due_on,
            lines=lines,
            number=number,
            run_id=run.pk,
            readings=[meter.to_json() for meter in use.meters],
            review={
                "previous_total_minor": review.previous_total_minor,
                "change_minor": review.change_minor,
                "change_percent": None
                if review.change_percent is None
                else str(review.change_percent),
                "flags": list(review.flags),
                "kwh": str(kwh),
                "m3": str(m3),
            },
            currency=currency,
        )
        rows.append((bill, lines))
    bills_store_values(rows)
    run.findings = {
        "groups": shared.findings,
        "totals": share_totals(shared.findings),
        "computed_at": timezone.now().isoformat(),
    }
    run.save(update_fields=["findings"])
    return run


def _set_status(run: BillRun, status: str, *, actor: Actor) -> None:
    before = run.status
    run.status = status
    fields = ["status"]
    if status == BillRun.Status.CONFIRMED:
        run.confirmed_at = timezone.now()
        fields.append("confirmed_at")
    if status == BillRun.Status.ISSUED:
        run.issued_at = timezone.now()
        fields.append("issued_at")
    run.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=f"bill_run.{status}",
        obj=run,
        before={"status": before},
        after={"status": status},
    )


@transaction.atomic
def bill_run_confirm(*, actor: Actor, run: BillRun) -> BillRun:
    """Finance has checked the drafts: they are confirmed together."""
    run = BillRun.objects.select_for_update().get(pk=run.pk)
    if run.status != BillRun.Status.DRAFT:
        raise BillError({"status": _("only a draft run can be confirmed")})
    now = timezone.now()
    run.bills.filter(status=Bill.Status.DRAFT).update(
        status=Bill.Status.CONFIRMED, confirmed_at=now
    )
    _set_status(run, BillRun.Status.CONFIRMED, actor=actor)
    return run


@transaction.atomic
def bill_run_unconfirm(*, actor: Actor, run: BillRun) -> BillRun:
    run = BillRun.objects.select_for_update().get(pk=run.pk)
    if run.status != BillRun.Status.CONFIRMED:
        raise BillError({"status": _("only a confirmed run can go back to draft")})
    run.bills.filter(status=Bill.Status.CONFIRMED).update(
        status=Bill.Status.DRAFT, confirmed_at=None
    )
    _set_status(run, BillRun.Status.DRAFT, actor=actor)
    return run


@transaction.atomic
def bill_run_issue(*, actor: Actor, run: BillRun, notify: bool = True) -> BillRun:
    """Issue every confirmed bill of the run: booked, sent, and settled from what is paid."""
    run = BillRun.objects.select_for_update().get(pk=run.pk)
    if run.status != BillRun.Status.CONFIRMED:
        raise BillError({"status": _("confirm the run before issuing it")})
    bills_issue(
        actor=actor,
        bills=list(run.bills.filter(status=Bill.Status.CONFIRMED).only("pk").order_by("pk")),
        notify=notify,
    )
    _set_status(run, BillRun.Status.ISSUED, actor=actor)
    return run


@transaction.atomic
def bill_run_void(*, actor: Actor, run: BillRun) -> BillRun:
    """Discard a run that is not issued: its bills are discarded with it."""
    run = BillRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in (BillRun.Status.DRAFT, BillRun.Status.CONFIRMED):
        raise BillError({"status": _("an issued run is corrected bill by bill (credit notes)")})
    run.bills.filter(status__in=(Bill.Status.DRAFT, Bill.Status.CONFIRMED)).update(
        status=Bill.Status.VOID
    )
    _set_status(run, BillRun.Status.VOID, actor=actor)
    return run


@transaction.atomic
def bill_schedule_save(
    *, actor: Actor, site: Any, day_of_month: int, issue: bool, active: bool = True
) -> BillSchedule:
    if not 1 <= day_of_month <= 28:
        raise BillError({"day_of_month": _("a day from 1 to 28 (every month has it)")})
    row, _created = BillSchedule.objects.update_or_create(
        site=site,
        defaults={
            "organisation_id": site.organisation_id,
            "day_of_month": day_of_month,
            "issue": issue,
            "active": active,
        },
    )
    audit_record(
        actor=actor,
        action="bill_schedule.save",
        obj=row,
        after={"day_of_month": day_of_month, "issue": issue, "active": active},
    )
    return row


def previous_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end


def bill_runs_scheduled(*, today: date | None = None) -> list[BillRun]:
    """Make (and, where the schedule says so, confirm and issue) the runs that are due."""
    today = today or timezone.localdate()
    start, end = previous_month(today)
    made = []
    due = BillSchedule.objects.filter(active=True, day_of_month__lte=today.day).filter(
        Q(last_period_start__isnull=True) | Q(last_period_start__lt=start)
    )
    for schedule in due.select_related("site"):
        try:
            with transaction.atomic():
                run = bill_run_create(
                    actor="schedule",
                    organisation_id=schedule.organisation_id,
                    period_start=start,
                    period_end=end,
                    site=schedule.site,
                    schedule=schedule,
                )
                if schedule.issue:
                    bill_run_confirm(actor="schedule", run=run)
                    bill_run_issue(actor="schedule", run=run)
                schedule.last_period_start = start
                schedule.save(update_fields=["last_period_start"])
                run.refresh_from_db()
                made.append(run)
        except BillError as exc:
            log.warning("scheduled bill run for %s not made: %s", schedule.site, exc.messages)
    return made
