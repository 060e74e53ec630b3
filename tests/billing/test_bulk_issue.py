"""Issuing a run's bills in bulk writes what issuing them one by one writes.

The month end of tests/billing/test_month_end.py with three more shops: a prepaid one whose
property fee takes its last credit (alarms and a cut-off at issue), a postpaid one with an
older bill paid (which the supply rules reopen for a moment and cut the supply for), and the
first shop's bill booked before (so issuing it replays the stored entries). The confirmed run is
issued once bill by bill with ``bill_issue`` and once with ``bills_issue``, each in a
transaction rolled back afterwards, and everything they wrote is compared.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Max

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.billing import bills as bills_module
from meterpay.apps.billing.bills import bill_issue, bill_post, bill_store, bills_issue
from meterpay.apps.billing.charges import charge_subscribe
from meterpay.apps.billing.deductions import deductions_run
from meterpay.apps.billing.lines import LineDraft, Section
from meterpay.apps.billing.models import Bill, BillRun, ChargeItem
from meterpay.apps.billing.runs import bill_run_confirm, bill_run_issue
from meterpay.apps.billing.services import fee_charge
from meterpay.apps.billing.sharing import allocation_members_set, grid_reading_enter
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, LedgerAccount, Posting, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.meters import services as meters
from meterpay.apps.notifications.models import Notification
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.sites import services as sites
from meterpay.core.ledger import ChargeType
from tests.billing.test_month_end import DEC, NOV, Mall, daily_reads, local

pytestmark = pytest.mark.django_db


class _Rollback(Exception):
    pass


def _shop(mall: Mall, number: str, area: str, mode: str) -> Account:
    org = mall.org
    room = sites.room_create(
        actor="t", floor=org.floor, number=number, kind="shop", area_m2=Decimal(area)
    )
    meter = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="electricity_1p",
        protocol="dlt645",
        address=f"000000000{number}",
        gateway=org.gateway,
        room=room,
    )
    customer = customers.customer_create(actor="t", organisation=org.org, name=f"Shop {number}")
    account = customers.account_open_new(
        actor="t", customer=customer, rooms=[room], meters=[meter], billing_mode=mode
    )
    Account.objects.filter(pk=account.pk).update(
        opened_at=local(date(2026, 10, 1)), move_in_on=date(2026, 10, 1)
    )
    account.refresh_from_db()
    daily_reads(meter, "100", "20" if mode == "prepaid" else "5")
    return account


@pytest.fixture
def world(org: Any) -> dict[str, Any]:
    mall = Mall(org)
    low = _shop(mall, "104", "20.00", "prepaid")  # 600 kWh: 408.00 deducted in November
    recharge_record(
        actor="t", account=low, amount="558.00", channel="cash", idempotency_key="low"
    )  # 150.00 left for the 300.00 property fee
    reopened = _shop(mall, "105", "25.00", "postpaid")
    deductions_run()
    items = list(ChargeItem.objects.filter(organisation=mall.org.org))
    for item in items:
        charge_subscribe(actor="t", item=item, accounts=[low, reopened])
    allocation_members_set(
        actor="t",
        group=mall.group,
        members=[(a, None) for a in (mall.shop_a, mall.shop_b, low, reopened)],
    )
    # the grid meter saw 900 kWh: 570 + 600 + 150 metered, so 4 % is lost... of 1,320 kWh
    grid_reading_enter(actor="t", group=mall.loss, read_on=DEC, reading="11400")
    older = bill_store(
        account=reopened,
        kind=Bill.Kind.STATEMENT,
        period_start=date(2026, 10, 1),
        period_end=NOV,
        due_on=date(2026, 11, 5),
        lines=[
            LineDraft(
                section=Section.CHARGES,
                label="October",
                amount_minor=12000,
                charge_type=ChargeType.RENT,
                settles="wallet",
                posted=False,
            )
        ],
        number="B202610-00001",
        status=Bill.Status.PAID,
    )
    Bill.objects.filter(pk=older.pk).update(
        issued_at=local(date(2026, 11, 1)), paid_at=local(date(2026, 11, 3))
    )
    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    # December so far: B paid 1,000.00 into its wallet and was charged a fee; the fee is not
    # billed yet, so it is not laid on the November bill
    recharge_record(
        actor="t", account=mall.shop_b, amount="1000.00", channel="cash", idempotency_key="b"
    )
    fee_charge(actor="t", account=mall.shop_b, amount="45.00", fee_code="card", reference="x")
    return {
        "run": run,
        "low": low,
        "reopened": reopened,
        "replayed": mall.shop_a,
        "b": mall.shop_b,
    }


def _marks() -> dict[str, int]:
    return {
        model.__name__: model.objects.aggregate(n=Max("pk"))["n"] or 0
        for model in (JournalEntry, AuditEvent, Notification, MeterCommand, LedgerAccount)
    }


def _snapshot(org_id: int, marks: dict[str, int]) -> dict[str, Any]:
    entries = JournalEntry.objects.filter(pk__gt=marks["JournalEntry"])
    keys = dict(JournalEntry.objects.values_list("pk", "idempotency_key"))
    bill_numbers = dict(Bill.objects.values_list("pk", "number"))

    def unnamed(text: str) -> str:  # commands are named by a random id
        return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "…", text)

    def subject(event: AuditEvent) -> str:
        if event.object_type == "ledger.journalentry":
            return keys[int(event.object_id)]
        if event.object_type == "billing.bill":
            return bill_numbers[int(event.object_id)]
        return event.object_repr

    return {
        "entries": sorted(
            (
                e.idempotency_key,
                e.kind,
                e.memo,
                e.reference,
                e.account_id,
                e.wallet_amount,
                e.currency,
                e.channel,
                e.actor_label,
                tuple(
                    Posting.objects.filter(entry=e)
                    .order_by("ledger_account__code")
                    .values_list("ledger_account__code", "amount")
                ),
            )
            for e in entries
        ),
        "bills": sorted(
            (
                b.number,
                b.status,
                b.due_minor,
                b.unpaid_minor,
                None if b.entry_id is None else keys[b.entry_id],
                b.issued_at is None,
                b.paid_at is None,
                b.overdue_since,
            )
            for b in Bill.objects.filter(organisation_id=org_id)
        ),
        "wallets": sorted(
            (
                w.account_id,
                w.balance_minor,
                w.supply,
                {k: v["sent_count"] for k, v in (w.alarm_history or {}).items()},
                w.cut_deferred,
                w.cut_deferred_until is None,
                w.reminder_sent_at is None,
            )
            for w in Wallet.objects.filter(organisation_id=org_id)
        ),
        "audit": sorted(
            (
                e.action,
                e.object_type,
                unnamed(subject(e)),
                unnamed(repr(e.before)),
                unnamed(repr(e.after)),
                e.actor_label,
            )
            for e in AuditEvent.objects.filter(pk__gt=marks["AuditEvent"])
        ),
        "notifications": sorted(
            (n.account_id, n.kind, n.level, n.subject, n.body, n.channel_id, n.status)
            for n in Notification.objects.filter(pk__gt=marks["Notification"])
        ),
        "commands": sorted(
            (c.meter_id, c.kind, c.reason, c.requested_by)
            for c in MeterCommand.objects.filter(pk__gt=marks["MeterCommand"])
        ),
        "ledger accounts": sorted(
            LedgerAccount.objects.filter(pk__gt=marks["LedgerAccount"]).values_list("code", "kind")
        ),
        "mismatches": ledger_mismatches(),
    }


def _issued(world: dict[str, Any], issue: Any) -> dict[str, Any]:
    run: BillRun = world["run"]
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            bill_post(actor="t", bill=run.bills.get(account=world["replayed"]), evaluate=False)
            marks = _marks()
            issue(list(run.bills.order_by("pk")))
            result = _snapshot(run.organisation_id, marks)
            raise _Rollback
    except _Rollback:
        pass
    return result


def _one_by_one(bills: list[Bill]) -> None:
    for bill in bills:
        bill_issue(actor="t", bill=bill)


def _in_bulk(bills: list[Bill]) -> None:
    bills_issue(actor="t", bills=bills)


def test_the_bulk_issue_writes_what_issuing_one_by_one_writes(world: dict[str, Any]) -> None:
    one_by_one = _issued(world, _one_by_one)
    in_bulk = _issued(world, _in_bulk)
    for part in one_by_one:
        assert in_bulk[part] == one_by_one[part], part
    # the scenario exercises what the comparison is about
    assert one_by_one["mismatches"] == []
    # B's wallet entry, the low shop's receivable and wallet entries, the reopened one's; the
    # replayed bill books nothing new
    assert len(one_by_one["entries"]) == 4
    kinds = {(account, kind) for account, kind, *_rest in one_by_one["notifications"]}
    assert (world["low"].pk, "alarm") in kinds and (world["low"].pk, "cut_off") in kinds
    assert (world["reopened"].pk, "cut_off") in kinds  # the older bill, reopened a moment
    assert sum(kind == "bill_issued" for _a, kind in kinds) == 4
    replayed = world["run"].bills.get(account=world["replayed"]).number
    assert not any(f"/{replayed}" in entry[0] for entry in one_by_one["entries"])
    assert any(kind == "relay_trip" for _m, kind, *_rest in one_by_one["commands"])
    older = next(b for b in one_by_one["bills"] if b[0] == "B202610-00001")
    assert older[1] == "paid"  # settled again once the new bill is live
    b = next(
        b for b in one_by_one["bills"] if b[0] == world["run"].bills.get(account=world["b"]).number
    )
    assert b[3] == b[2] - 100000  # what B paid in December, not the fee after the period


def test_a_run_issued_in_small_batches_is_the_same(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _issued(world, _in_bulk)
    monkeypatch.setattr(bills_module, "ISSUE_BATCH", 2)
    batched = _issued(world, _in_bulk)
    for part in whole:
        assert batched[part] == whole[part], part


def test_two_bills_of_one_account_are_issued_in_turn(world: dict[str, Any]) -> None:
    run: BillRun = world["run"]
    bill = run.bills.get(account=world["low"])
    extra = bill_store(
        account=world["low"],
        kind=Bill.Kind.REQUEST,
        period_start=NOV,
        period_end=DEC,
        due_on=date(2026, 12, 20),
        lines=[
            LineDraft(
                section=Section.CHARGES,
                label="Key deposit",
                amount_minor=5000,
                charge_type=ChargeType.OTHER_CHARGES,
                settles="receivable",
                posted=True,
            )
        ],
        number="P202611-00001",
        status=Bill.Status.CONFIRMED,
    )
    with transaction.atomic():
        issued = bills_issue(actor="t", bills=[extra, bill])
    assert sorted(b.number for b in issued) == sorted([bill.number, extra.number])
    assert {b.status for b in Bill.objects.filter(pk__in=[bill.pk, extra.pk])} == {"issued"}
    assert ledger_mismatches() == []


def test_issuing_a_run_twice_is_refused_and_books_once(world: dict[str, Any]) -> None:
    run: BillRun = world["run"]
    bill_run_issue(actor="t", run=run)
    entries = JournalEntry.objects.filter(kind="bill").count()
    with pytest.raises(Exception, match="confirm"):
        bill_run_issue(actor="t", run=run)
    with transaction.atomic(), pytest.raises(Exception, match="status"):
        bills_issue(actor="t", bills=list(run.bills.all()))
    assert JournalEntry.objects.filter(kind="bill").count() == entries
    assert ledger_mismatches() == []
