"""The demo's month end: two months of a mall's and an office tower's metering, billed, that a
visitor can walk — bills in every state, the public-area and line-loss findings, a ledger that
adds up and bills that print."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from meterpay.apps.billing import documents
from meterpay.apps.billing.demo_month_end import (
    hourly_moments,
    meter_history,
    period_table,
    read_cadence,
    shop_profile,
)
from meterpay.apps.billing.models import (
    Bill,
    BillBranding,
    BillLine,
    BillRun,
    BillSchedule,
    GridReading,
)
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.meters.models import Meter
from meterpay.apps.notifications.models import Notification
from meterpay.apps.readings.models import Interval, RegisterRead
from meterpay.apps.tariffs.demo import MALL_COMMERCIAL_TOU
from meterpay.apps.users.models import User
from meterpay.cli.demo_data import seed_demo

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The whole demo, seeded once for this module (read-only here)."""
    with django_db_blocker.unblock():
        summary = seed_demo()
    yield summary
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def months() -> tuple[Any, Any, Any]:
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    return (last_month - timedelta(days=1)).replace(day=1), last_month, this_month


def test_bills_in_every_state_and_kind(demo: Any) -> None:
    org = demo.organisation
    bills = Bill.objects.filter(organisation=org)
    assert {"draft", "confirmed", "issued", "paid", "credited"} <= set(
        bills.values_list("status", flat=True)
    )
    assert {"statement", "credit_note", "final"} <= set(bills.values_list("kind", flat=True))
    runs = BillRun.objects.filter(organisation=org)
    assert set(runs.values_list("status", flat=True)) == {"draft", "confirmed", "issued"}
    before_last, last_month, _this = months()
    assert set(runs.values_list("period_start", flat=True)) == {before_last, last_month}
    # paid in part: issued, with less left to pay than it asked
    assert bills.filter(status="issued", unpaid_minor__gt=0).exclude(unpaid_minor=F("due_minor"))
    # the corrected bill replaces the credited one, with its adjustment
    credited = bills.get(status="credited")
    note = bills.get(kind="credit_note", credits=credited)
    booked = sum(line.amount_minor for line in credited.lines.filter(posted=True))
    assert note.total_minor == -booked  # the metered lines were deducted, not billed
    corrected = bills.get(replaces=credited)
    assert corrected.status == "paid"
    assert corrected.lines.filter(section="adjustment", amount_minor__lt=0).exists()
    # the shop that moved out: closed, with its final bill settled
    final = bills.get(kind="final")
    assert final.account.status == Account.Status.CLOSED and final.status == "paid"
    assert final.lines.filter(section="public_share").exists()
    assert final.lines.filter(section="line_loss").exists()
    # the postpaid tower: last month's bills issued, paid and partly paid; overdue reminded
    tower = bills.filter(run__site__kind="office", period_start=last_month)
    assert {"issued", "paid"} <= set(tower.values_list("status", flat=True))
    assert all(b.account.billing_mode == "postpaid" for b in tower)
    overdue = bills.filter(overdue_since__isnull=False)
    assert overdue.exists() and all(b.reminders_sent >= 1 for b in overdue)
    assert Notification.objects.filter(kind="bill_due").exists()


def test_bills_have_metered_lines_shares_and_charges(demo: Any) -> None:
    before_last, _last, _this = months()
    run = BillRun.objects.get(
        organisation=demo.organisation, period_start=before_last, site__kind="mall"
    )
    lines = BillLine.objects.filter(bill__run=run, bill__account__billing_side="platform")
    sections = set(lines.values_list("section", flat=True))
    assert {"energy", "charges", "public_share", "line_loss"} <= sections
    # time-of-use: the energy is rated by period from the hourly readings
    energy = lines.filter(section="energy", quantity__gt=0)
    labels = " ".join(energy.values_list("label", flat=True)).lower()
    assert "valley" in labels and "peak" in labels
    groups = run.findings["groups"]
    publics = [g for g in groups if g["kind"] == "public"]
    assert len(publics) == 3 and all(Decimal(g["quantity"]) > 0 for g in publics)
    assert all(g["rule"] == "area" for g in publics)
    [loss] = [g for g in groups if g["kind"] == "loss"]
    assert Decimal("0.03") <= Decimal(loss["loss_rate"]) <= Decimal("0.06")
    assert loss["amount_minor"] > 0 and loss["lines"]
    readings = GridReading.objects.filter(organisation=demo.organisation)
    assert readings.count() == 4 and all(r.notes for r in readings)


def test_ledger_adds_up_and_readings_are_clean(demo: Any) -> None:
    org = demo.organisation
    assert ledger_mismatches(org.pk) == []
    reads = RegisterRead.objects.filter(organisation=org)
    assert reads.count() > 30_000
    assert reads.filter(peak__isnull=False).exists()  # time-of-use registers too
    intervals = Interval.objects.filter(organisation=org)
    assert intervals.exists() and not intervals.filter(booked=False).exists()
    assert not intervals.exclude(status="ok").exists()
    deductions = JournalEntry.objects.filter(
        organisation=org, kind="deduction", reference__startswith="meter-"
    )
    assert deductions.count() > 500
    # the prepaid shops paid in enough: none is cut off for its balance
    shops = Wallet.objects.filter(
        organisation=org,
        account__rooms__kind="shop",
        account__status="open",
        account__billing_side="platform",
    )
    assert shops.exists() and not shops.filter(supply="cut_for_balance").exists()
    assert shops.filter(balance_minor__lt=5000).exists()  # a few run low: alarms to see


def test_set_up_a_visitor_finds(demo: Any) -> None:
    org = demo.organisation
    _before, last_month, _this = months()
    schedule = BillSchedule.objects.get(organisation=org)
    assert (schedule.day_of_month, schedule.issue, schedule.last_period_start) == (
        3,
        False,
        last_month,
    )
    assert BillRun.objects.get(schedule=schedule).status == "draft"
    branding = BillBranding.objects.get(organisation=org)
    assert branding.logo and branding.seal and branding.bank_account
    assert branding.payment_instructions


def test_a_bill_prints(demo: Any) -> None:
    org = demo.organisation
    bill = (
        Bill.objects.filter(organisation=org, kind="statement", run__site__kind="mall")
        .order_by("number")
        .first()
    )
    assert bill is not None
    for language in ("zh-hans", "en"):
        pdf = documents.bill_pdf_bytes(bill=bill, language=language)
        assert pdf.startswith(b"%PDF") and len(pdf) > 5000
    final = Bill.objects.get(organisation=org, kind="final")
    assert documents.bill_pdf_bytes(bill=final, language="en").startswith(b"%PDF")


def test_console_billing_pages(client: Any, demo: Any) -> None:
    client.force_login(User.objects.get(username="finance"))
    org = demo.organisation
    run = BillRun.objects.filter(organisation=org, status="issued").order_by("pk").first()
    bill = Bill.objects.filter(organisation=org, kind="final").get()
    for url in (
        reverse("console:bill_run_list"),
        reverse("console:bill_list"),
        reverse("console:bill_run_detail", args=[run.pk]),
        reverse("console:bill_detail", args=[bill.pk]),
    ):
        assert client.get(url).status_code == 200, url


def test_seeding_again_changes_nothing(demo: Any) -> None:
    bills = Bill.objects.count()
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "exists already" in out.getvalue()
    assert Bill.objects.count() == bills


def test_time_of_use_table_follows_the_mall_tariff() -> None:
    table = period_table(MALL_COMMERCIAL_TOU)
    assert table[(10, 3)] == "valley"
    assert table[(10, 9)] == "peak" and table[(10, 18)] == "peak"
    assert table[(10, 14)] == "flat" and table[(10, 23)] == "flat"
    assert table[(12, 19)] == "sharp" and table[(8, 20)] == "sharp"
    assert table[(11, 19)] == "peak"


def test_meters_are_read_every_two_hours_and_at_each_change_of_period() -> None:
    table = period_table(MALL_COMMERCIAL_TOU)
    read = read_cadence(table)

    def hours(month: int) -> set[int]:
        return {h for h in range(24) if read(timezone.datetime(2026, month, 2, h))}

    even = set(range(0, 24, 2))
    assert hours(10) == even | {11, 17}
    assert hours(8) == even | {11, 17, 19, 21}  # the summer critical peak, 19:00-21:00


def test_a_history_is_deterministic_and_ends_where_the_meter_goes_on() -> None:
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(timezone.datetime(2026, 10, 1), zone)
    moments = hourly_moments(start, start + timedelta(days=3), zone)
    meter = Meter(pk=7, kind="electricity_1p", multiplier=1)

    def history(end: Decimal | None, seed: int = 5) -> Any:
        return meter_history(
            meter,
            moments,
            len(moments) - 1,
            peak_kw=12.0,
            profile=shop_profile,
            periods=period_table(MALL_COMMERCIAL_TOU),
            end_register=end,
            rng=random.Random(seed),
        )

    one, again = history(Decimal("5000")), history(Decimal("5000"))
    assert one.steps == again.steps and one.reads == again.reads
    assert len(one.reads) == len(moments) and one.reads[-1].total == Decimal("5000.00")
    for read in (one.reads[0], one.reads[-1]):  # the registers add up to the total
        assert read.sharp + read.peak + read.flat + read.valley == read.total
    # a register with little on it: a quieter tenant, never below zero
    small = history(Decimal("30"))
    assert small.reads[-1].total == Decimal("30.00") and small.reads[0].total >= 0
