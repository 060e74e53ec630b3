"""The month end on the database: a mall's November with rent, a property fee, a public-area
meter shared by area, a grid meter's line loss shared by usage, one prepaid and one postpaid
shop; the run is made, checked, issued, paid, reminded, credited and re-issued, and the
ledger stays the sum of its postings throughout."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from meterpay.apps.billing.bills import (
    BillError,
    bill_credit,
    bill_pay,
    bill_reissue,
    bills_overdue_run,
    owed,
)
from meterpay.apps.billing.charges import charge_item_save, charge_subscribe
from meterpay.apps.billing.deductions import deductions_run
from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF
from meterpay.apps.billing.models import Bill, BillRun, GridReading
from meterpay.apps.billing.runs import (
    bill_run_compute,
    bill_run_confirm,
    bill_run_create,
    bill_run_issue,
)
from meterpay.apps.billing.sharing import (
    SharingError,
    allocation_group_save,
    allocation_members_set,
    grid_reading_enter,
    loss_group_save,
)
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.meters import services as meters
from meterpay.apps.notifications.models import Notification
from meterpay.apps.readings import services as readings
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs.services import default_tariffs_create

pytestmark = pytest.mark.django_db

NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)


def local(day: date, hour: int = 0) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour))


def daily_reads(meter: Any, start_total: str, per_day: str, days: int = 30) -> None:
    total = Decimal(start_total)
    for n in range(days + 1):
        readings.register_read_record(
            meter=meter,
            read_at=local(NOV) + timedelta(days=n),
            source="poll",
            total=total,
            expected_interval=timedelta(days=1),
        )
        total += Decimal(per_day)


class Mall:
    def __init__(self, org: Any) -> None:
        self.org = org
        actor = "t"
        BalancePolicy.objects.create(
            organisation=org.org,
            alarm_thresholds_minor=[5000, 2000, 500],
            night_start=None,
            night_end=None,
            protect_weekends=False,
            protect_holidays=False,
            postpaid_grace_days=0,
        )
        default_tariffs_create(
            actor=actor, organisation=org.org, electricity=DEMO_ELECTRICITY_TARIFF
        )
        self.shop_a = org.account  # prepaid, room 101, 50 m²
        room_b = sites.room_create(
            actor=actor, floor=org.floor, number="103", kind="shop", area_m2=Decimal("30.00")
        )
        self.meter_b = meters.meter_create(
            actor=actor,
            organisation=org.org,
            kind="electricity_1p",
            protocol="dlt645",
            address="000000000903",
            gateway=org.gateway,
            room=room_b,
        )
        customer_b = customers.customer_create(actor=actor, organisation=org.org, name="Shop B")
        self.shop_b = customers.account_open_new(
            actor=actor,
            customer=customer_b,
            rooms=[room_b],
            meters=[self.meter_b],
            billing_mode="postpaid",
        )
        public = sites.room_create(
            actor=actor, floor=org.floor, number="P1", kind="public_area", area_m2=Decimal("0")
        )
        self.master = meters.meter_create(
            actor=actor,
            organisation=org.org,
            kind="electricity_3p",
            protocol="dlt645",
            address="000000000999",
            gateway=org.gateway,
            room=public,
        )
        Account.objects.filter(pk__in=[self.shop_a.pk, self.shop_b.pk]).update(
            opened_at=local(date(2026, 10, 1)), move_in_on=date(2026, 10, 1)
        )
        self.shop_a.refresh_from_db()
        self.shop_b.refresh_from_db()
        daily_reads(org.meter, "1000", "10")  # 300 kWh x 0.68 = 204.00
        daily_reads(self.meter_b, "500", "5")  # 150 kWh = 102.00
        daily_reads(self.master, "0", "4")  # 120 kWh = 81.60
        deductions_run()
        rent = charge_item_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "code": "rent",
                "name": "Rent",
                "basis": "per_area",
                "unit_price": "60",
                "frequency": "monthly",
                "settlement": "bill",
                "revenue": "rent",
            },
        )
        fee = charge_item_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "code": "property",
                "name": "Property fee",
                "basis": "fixed",
                "unit_price": "300",
                "frequency": "monthly",
                "settlement": "deduct",
                "revenue": "property_fee",
            },
        )
        for item in (rent, fee):
            charge_subscribe(actor=actor, item=item, accounts=[self.shop_a, self.shop_b])
        self.group = allocation_group_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "name": "Mall lighting",
                "site": org.site,
                "master_meter": self.master,
                "rule": "area",
            },
        )
        allocation_members_set(
            actor=actor, group=self.group, members=[(self.shop_a, None), (self.shop_b, None)]
        )
        self.loss = loss_group_save(
            actor=actor,
            organisation_id=org.org.pk,
            values={
                "name": "Grid meter 1",
                "site": org.site,
                "unit_price": "0.80",
                "rule": "usage",
            },
        )
        # Σ sub-meters = 300 + 150 + 120 = 570 kWh; grid 600 kWh: 30 kWh lost (5 %)
        grid_reading_enter(actor=actor, group=self.loss, read_on=NOV, reading="10000")
        grid_reading_enter(
            actor=actor, group=self.loss, read_on=DEC, reading="10600", notes="photo on file"
        )

    def run(self) -> BillRun:
        return bill_run_create(
            actor="t",
            organisation_id=self.org.org.pk,
            period_start=NOV,
            period_end=DEC,
            site=self.org.site,
            due_on=date(2026, 12, 5),
        )


@pytest.fixture
def mall(org: Any) -> Mall:
    return Mall(org)


def lines(bill: Bill) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in bill.lines.all():
        found[line.section] = found.get(line.section, 0) + line.amount_minor
    return found


def test_a_month_end_run_exact_to_the_cent(mall: Mall) -> None:
    run = mall.run()
    bills = {b.account_id: b for b in run.bills.all()}
    a, b = bills[mall.shop_a.pk], bills[mall.shop_b.pk]
    # public 120 kWh x 0.68 = 81.60 shared 50:30 by area -> 51.00 + 30.60
    # loss 30 kWh x 0.80 = 24.00 shared 300:150(:0 for the unowned master) by usage
    assert lines(a) == {
        "energy": 20400,
        "charges": 300000 + 30000,
        "public_share": 5100,
        "line_loss": 1600,
    }
    assert lines(b) == {
        "energy": 10200,
        "charges": 180000 + 30000,
        "public_share": 3060,
        "line_loss": 800,
    }
    assert a.status == b.status == "draft"
    # what each asks: prepaid A only its payment requests (rent, shares, loss); postpaid B all
    assert a.due_minor == 300000 + 5100 + 1600 and a.settles == "receivable"
    assert b.due_minor == b.total_minor == 10200 + 210000 + 3060 + 800
    loss = next(f for f in run.findings["groups"] if f["kind"] == "loss")
    assert (loss["grid"], loss["metered"], loss["loss"], loss["loss_rate"]) == (
        "600.0000",
        "570.0000",
        "30.0000",
        "0.0500",
    )

    # remaking the draft changes nothing
    again = bill_run_compute(actor="t", run=run)
    assert {x.account_id: (x.total_minor, x.due_minor) for x in again.bills.all()} == {
        a.account_id: (a.total_minor, a.due_minor),
        b.account_id: (b.total_minor, b.due_minor),
    }

    a, b = (run.bills.get(account=account) for account in (mall.shop_a, mall.shop_b))
    balance_a = Wallet.objects.get(account=mall.shop_a).balance_minor
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "issued" and a.unpaid_minor == a.due_minor
    assert b.status == "issued" and b.unpaid_minor == b.due_minor
    # the property fee came out of A's prepaid wallet; the rest is receivable
    assert Wallet.objects.get(account=mall.shop_a).balance_minor == balance_a - 30000
    assert owed(mall.shop_a, "receivable") == a.due_minor
    assert owed(mall.shop_b, "wallet") == b.due_minor
    assert ledger_mismatches() == []
    assert Notification.objects.filter(kind="bill_issued").count() == 2

    # a second run of the same period bills nobody again
    rerun = mall.run()
    assert rerun.bills.count() == 0


def test_payments_partial_overdue_cut_and_restore(mall: Mall) -> None:
    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    b = run.bills.get(account=mall.shop_b)
    b = bill_pay(actor="t", bill=b, amount="1000.00", channel="cash", idempotency_key="p1")
    assert (b.status, b.unpaid_minor) == ("issued", b.due_minor - 100000)
    # the same request again pays once
    b = bill_pay(actor="t", bill=b, amount="1000.00", channel="cash", idempotency_key="p1")
    assert b.unpaid_minor == b.due_minor - 100000
    with transaction.atomic():
        reminded = bills_overdue_run(now=local(date(2026, 12, 7), 10))
    assert reminded == 2  # A's payment request and B's bill
    b.refresh_from_db()
    assert b.overdue_since == date(2026, 12, 6) and b.reminders_sent == 1
    wallet_b = Wallet.objects.get(account=mall.shop_b)
    assert wallet_b.supply == "cut_for_balance"
    b = bill_pay(
        actor="t",
        bill=b,
        amount=str(Decimal(b.unpaid_minor) / 100),
        channel="cash",
        idempotency_key="p2",
    )
    assert (b.status, b.unpaid_minor) == ("paid", 0)
    assert Wallet.objects.get(account=mall.shop_b).supply == "on"
    a = run.bills.get(account=mall.shop_a)
    a = bill_pay(
        actor="t", bill=a, amount="3067.00", channel="bank_transfer", idempotency_key="t-9"
    )
    assert (a.status, a.unpaid_minor) == ("paid", 0)
    assert ledger_mismatches() == []


def test_credit_note_and_corrected_bill(mall: Mall) -> None:
    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    a = run.bills.get(account=mall.shop_a)
    with pytest.raises(BillError):
        bill_credit(actor="t", bill=a, reason=" ")
    replacement = bill_reissue(
        actor="t",
        bill=a,
        reason="rent reduced for works",
        adjustments=[("Works discount", Decimal("-500.00"))],
    )
    a.refresh_from_db()
    assert a.status == "credited" and a.unpaid_minor == 0
    note = Bill.objects.get(kind="credit_note", credits=a)
    assert note.total_minor == -(300000 + 30000 + 5100 + 1600)
    assert owed(mall.shop_a, "receivable") == 0
    assert replacement.status == "draft" and replacement.replaces_id == a.pk
    assert replacement.total_minor == a.total_minor - 50000
    from meterpay.apps.billing.bills import bill_confirm, bill_issue

    bill_confirm(actor="t", bill=replacement)
    replacement = bill_issue(actor="t", bill=replacement)
    assert replacement.unpaid_minor == a.due_minor - 50000
    assert owed(mall.shop_a, "receivable") == a.due_minor - 50000
    with pytest.raises(BillError):  # an issued bill is never edited back
        bill_run_compute(actor="t", run=run)
    assert ledger_mismatches() == []
    assert JournalEntry.objects.filter(kind="reversal").count() == 2  # wallet and receivable


def test_bad_inputs_write_nothing(mall: Mall) -> None:
    with pytest.raises(SharingError, match="below the previous"):
        grid_reading_enter(actor="t", group=mall.loss, read_on=date(2026, 12, 15), reading="10500")
    assert GridReading.objects.count() == 2
    allocation_members_set(actor="t", group=mall.group, members=[])
    with pytest.raises(BillError, match="no members"):
        mall.run()
    assert BillRun.objects.count() == 0 and Bill.objects.count() == 0
    allocation_members_set(actor="t", group=mall.group, members=[(mall.shop_a, None)])
    mall.shop_a.rooms.update(area_m2=Decimal("0"))
    with pytest.raises(BillError, match="area"):
        mall.run()
    assert BillRun.objects.count() == 0 and Bill.objects.count() == 0


def test_move_out_final_bill_refund_and_month_end_shares_add_up(mall: Mall) -> None:
    from meterpay.apps.billing.settlement import account_move_out
    from meterpay.apps.payments.services import recharge_record

    Account.objects.filter(pk=mall.shop_a.pk).update(move_in_on=NOV)
    recharge_record(
        actor="t", account=mall.shop_a, amount="5000.00", channel="cash", idempotency_key="k"
    )
    # A moves out on 30 November; its meter read 1300 on 1 December
    with pytest.raises(BillError, match="below its last reading"):
        account_move_out(
            actor="t",
            account=mall.shop_a,
            move_out_on=date(2026, 11, 30),
            final_readings={mall.org.meter.pk: Decimal("900")},
            read_at=local(date(2026, 12, 2)),
        )
    assert Account.objects.get(pk=mall.shop_a.pk).status == "open"  # nothing happened
    balance = Wallet.objects.get(account=mall.shop_a).balance_minor
    moved = account_move_out(
        actor="t",
        account=mall.shop_a,
        move_out_on=date(2026, 11, 30),
        final_readings={mall.org.meter.pk: Decimal("1305")},
        read_at=local(date(2026, 12, 2)),
    )
    bill = moved.bill
    assert moved.account.status == "closed" and bill.kind == "final"
    sections = lines(bill)
    assert sections == {
        "energy": 20400 + 340,  # November, and 1 December's 5 kWh read at move-out
        "charges": 300000 + 30000,
        "public_share": 5100,  # 81.60 shared 50:30 by area
        "line_loss": 1600,  # 24.00 shared 300:150 by usage
    }
    # the wallet paid the booked lines and the rest was refunded: it ends at zero
    assert Wallet.objects.get(account=mall.shop_a).balance_minor == 0
    assert moved.settlement.refund_minor == balance - 340 - 330000 - 5100 - 1600
    assert bill.unpaid_minor == 0 and bill.status == "paid"
    assert ledger_mismatches() == []

    # the month end: B shares what is left of the month, and the parts sum to the wholes
    run = mall.run()
    assert [b.account_id for b in run.bills.all()] == [mall.shop_b.pk]
    b_lines = lines(run.bills.get())
    assert sections["public_share"] + b_lines["public_share"] == 8160
    assert sections["line_loss"] + b_lines["line_loss"] == 2400


def test_consumption_after_the_period_does_not_reopen_a_paid_bill(mall: Mall) -> None:
    from meterpay.apps.billing.services import fee_charge

    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    b = run.bills.get(account=mall.shop_b)
    b = bill_pay(
        actor="t",
        bill=b,
        amount=str(Decimal(b.due_minor) / 100),
        channel="cash",
        idempotency_key="all",
    )
    assert b.status == "paid"
    # December: B's wallet runs below zero again with what is not billed yet
    fee_charge(actor="t", account=mall.shop_b, amount="45.00", fee_code="card", reference="x")
    assert owed(mall.shop_b, "wallet") == 0
    with transaction.atomic():
        bills_overdue_run(now=local(date(2026, 12, 20), 10))
    b.refresh_from_db()
    assert (b.status, b.unpaid_minor) == ("paid", 0)
    assert Wallet.objects.get(account=mall.shop_b).supply == "on"


def test_a_scheduled_run_is_made_once_on_its_day_and_can_issue_itself(mall: Mall) -> None:
    from meterpay.apps.billing.runs import bill_runs_scheduled, bill_schedule_save

    with pytest.raises(BillError):
        bill_schedule_save(actor="t", site=mall.org.site, day_of_month=31, issue=True)
    bill_schedule_save(actor="t", site=mall.org.site, day_of_month=3, issue=True)
    assert bill_runs_scheduled(today=date(2026, 12, 2)) == []  # not its day yet
    [run] = bill_runs_scheduled(today=date(2026, 12, 3))
    assert (run.period_start, run.period_end, run.status) == (NOV, DEC, "issued")
    assert {b.status for b in run.bills.all()} == {"issued"}
    assert bill_runs_scheduled(today=date(2026, 12, 4)) == []  # made once for November
    assert ledger_mismatches() == []


def test_the_periodic_jobs_run_the_services(mall: Mall) -> None:
    from meterpay.apps.billing import tasks

    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    import time_machine

    with time_machine.travel(local(date(2026, 12, 10), 9), tick=False):
        assert tasks.bills_overdue_periodic.call_local() == 2
        assert tasks.bill_runs_scheduled_periodic.call_local() == 0
    assert Notification.objects.filter(kind="bill_due").count() == 2


def test_issuing_a_new_bill_does_not_make_a_paid_one_overdue(mall: Mall) -> None:
    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    november = run.bills.get(account=mall.shop_b)
    amount = str(Decimal(november.due_minor) / 100)
    bill_pay(actor="t", bill=november, amount=amount, channel="cash", idempotency_key="nov")
    december = bill_run_create(
        actor="t",
        organisation_id=mall.org.org.pk,
        period_start=DEC,
        period_end=date(2027, 1, 1),
        accounts=[mall.shop_b],
        due_on=date(2027, 1, 5),
    )
    bill_run_confirm(actor="t", run=december)
    bill_run_issue(actor="t", run=december)  # its rent and fee go to B's postpaid wallet
    november.refresh_from_db()
    assert (november.status, november.unpaid_minor) == ("paid", 0)
    assert december.bills.get().unpaid_minor == 210000
    wallet = Wallet.objects.get(account=mall.shop_b)
    assert wallet.supply == "on" and not wallet.cut_deferred


def test_a_meter_side_account_gets_no_consumption_lines(mall: Mall) -> None:
    # (switched after the fixture's platform deductions, which the bill still accounts for)
    Account.objects.filter(pk=mall.shop_a.pk).update(billing_side="meter")
    run = mall.run()
    a = run.bills.get(account=mall.shop_a)
    assert "energy" not in lines(a) and lines(a)["adjustment"] == 20400
    assert a.readings[0]["consumption"] == "300.0000"  # the usage is still shown
