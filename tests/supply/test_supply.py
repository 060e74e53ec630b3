"""Deduction from readings, alarms, cut-off / defer / restore, notifications and meter commands
written in the same transaction as the money movement."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from meterpay.apps.billing.bills import postpaid_bill_issue
from meterpay.apps.billing.deductions import deductions_run, meter_deduct
from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF
from meterpay.apps.billing.models import Bill, DeductionState
from meterpay.apps.billing.services import deduction_post, fee_charge
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.notifications.models import Notification
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings import services as readings
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.supply.selectors import credit_estimate
from meterpay.apps.supply.services import wallet_evaluate, wallet_set_controls
from meterpay.apps.tariffs.services import default_tariffs_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(org: Any) -> BalancePolicy:
    """No protected periods, so the tests do not depend on the time of day."""
    policy = BalancePolicy.objects.create(
        organisation=org.org,
        alarm_thresholds_minor=[5000, 2000, 500],
        night_start=None,
        night_end=None,
        protect_weekends=False,
        protect_holidays=False,
    )
    default_tariffs_create(actor="t", organisation=org.org, electricity=DEMO_ELECTRICITY_TARIFF)
    return policy


def wallet(org: Any) -> Wallet:
    return Wallet.objects.get(account=org.account)


def recharge(org: Any, amount: str, key: str) -> None:
    recharge_record(
        actor="t", account=org.account, amount=amount, channel="cash", idempotency_key=key
    )


def commands(org: Any) -> list[str]:
    return list(
        MeterCommand.objects.filter(meter=org.meter).order_by("pk").values_list("kind", flat=True)
    )


def test_recharge_alarm_cut_off_and_restore_through_the_outbox(org: Any, policy: Any) -> None:
    recharge(org, "60.00", "r1")
    assert not Notification.objects.exists()
    fee_charge(actor="t", account=org.account, amount="15.00", fee_code="card", reference="1")
    alarm = Notification.objects.get()
    assert alarm.kind == "alarm" and alarm.level == 1 and "45.00" in alarm.subject
    fee_charge(actor="t", account=org.account, amount="44.00", fee_code="card", reference="2")
    # levels 2 and 3 crossed at once: one message for the most severe, both recorded as sent
    assert list(Notification.objects.filter(kind="alarm").values_list("level", flat=True)) == [3, 1]
    assert set(wallet(org).alarm_history) == {"1", "2", "3"}
    assert commands(org) == []
    fee_charge(actor="t", account=org.account, amount="1.00", fee_code="card", reference="3")
    assert wallet(org).supply == "cut_for_balance"
    assert commands(org) == ["relay_trip"]
    assert Notification.objects.filter(kind="cut_off").count() == 1
    recharge(org, "0.50", "r2")  # above the restore threshold 0.00
    assert wallet(org).supply == "on" and commands(org) == ["relay_trip", "relay_close"]
    assert Notification.objects.filter(kind="restore").count() == 1
    recharge(org, "100.00", "r3")
    assert wallet(org).alarm_history == {}  # re-armed
    assert ledger_mismatches() == []


def test_outbox_rows_roll_back_with_the_money(org: Any, policy: Any) -> None:
    recharge(org, "1.00", "r1")
    before = (
        Notification.objects.count(),
        MeterCommand.objects.count(),
        JournalEntry.objects.count(),
    )
    with pytest.raises(RuntimeError), transaction.atomic():
        fee_charge(actor="t", account=org.account, amount="5.00", fee_code="x", reference="y")
        assert MeterCommand.objects.count() > before[1]  # written in the same transaction…
        raise RuntimeError("crash before commit")
    after = (
        Notification.objects.count(),
        MeterCommand.objects.count(),
        JournalEntry.objects.count(),
    )
    assert after == before  # …and gone with it
    assert wallet(org).balance_minor == 100


def test_protected_period_defers_the_cut_until_monday(org: Any, policy: Any) -> None:
    policy.night_start, policy.night_end, policy.protect_weekends = time(18), time(8), True
    policy.save()
    friday_evening = timezone.make_aware(datetime(2026, 3, 6, 19, 0))
    with transaction.atomic():
        wallet_for(org.account)
        Wallet.objects.filter(account=org.account).update(balance_minor=-100)  # test shortcut
        decision = wallet_evaluate(wallet=wallet(org), now=friday_evening)
    assert decision.action == "defer_cut_off"
    assert timezone.localtime(decision.defer_until).isoformat().startswith("2026-03-09T08:00")
    assert wallet(org).cut_deferred and commands(org) == []
    assert Notification.objects.filter(kind="cut_deferred").count() == 1
    with transaction.atomic():
        wallet_evaluate(wallet=wallet(org), now=friday_evening + timedelta(hours=1))
    assert Notification.objects.filter(kind="cut_deferred").count() == 1  # not repeated
    with transaction.atomic():
        wallet_evaluate(wallet=wallet(org), now=friday_evening + timedelta(days=2, hours=14))
    assert commands(org) == ["relay_trip"]
    Wallet.objects.filter(account=org.account).update(balance_minor=0, supply="on")


def test_keep_supply_flag_never_cuts(org: Any, policy: Any) -> None:
    recharge(org, "1.00", "r1")
    wallet_set_controls(actor="t", wallet=wallet(org), keep_supply=True)
    fee_charge(actor="t", account=org.account, amount="5.00", fee_code="x", reference="y")
    assert wallet(org).supply == "on" and commands(org) == []
    assert wallet(org).cut_deferred and wallet(org).cut_deferred_until is None


def test_quiet_hours_hold_alarms(org: Any, policy: Any) -> None:
    policy.quiet_start, policy.quiet_end = time(0), time(23, 59)
    policy.save()
    recharge(org, "10.00", "r1")
    assert not Notification.objects.filter(kind="alarm").exists()
    assert wallet(org).alarm_history == {}


def _reads(org: Any, totals: list[str], start: datetime) -> None:
    for index, total in enumerate(totals):
        readings.register_read_record(
            meter=org.meter,
            read_at=start + timedelta(hours=index),
            source="poll",
            total=Decimal(total),
            expected_interval=timedelta(hours=1),
        )


def test_deduction_from_intervals_once_with_state(org: Any, policy: Any) -> None:
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=10)
    Account.objects.filter(pk=org.account.pk).update(opened_at=start - timedelta(hours=1))
    recharge(org, "20.00", "r1")
    _reads(org, ["100", "110", "125"], start)  # 25 kWh x 0.68 = 17.00
    entry = meter_deduct(meter=org.meter)
    assert entry is not None and entry.wallet_amount == -1700
    assert meter_deduct(meter=org.meter) is None  # nothing new: no second deduction
    assert deductions_run() == 0
    state = DeductionState.objects.get()
    assert state.rated_until == start + timedelta(hours=2) and state.state
    _reads(org, ["130"], start + timedelta(hours=3))  # 5 kWh = 3.40 -> balance -0.40: cut off
    assert deductions_run() == 1
    assert wallet(org).balance_minor == 2000 - 1700 - 340
    assert wallet(org).supply == "cut_for_balance" and commands(org) == ["relay_trip"]
    assert ledger_mismatches() == []


def test_postpaid_cut_after_due_date_and_grace_restore_on_payment(org: Any, policy: Any) -> None:
    Account.objects.filter(pk=org.account.pk).update(billing_mode="postpaid")
    org.account.refresh_from_db()
    fee_charge(actor="t", account=org.account, amount="30.00", fee_code="x", reference="y")
    assert wallet(org).supply == "on"  # postpaid: no cut for a negative balance alone
    today = timezone.localdate()
    bill = postpaid_bill_issue(
        actor="t",
        account=org.account,
        period_end=today - timedelta(days=20),
        due_on=today - timedelta(days=10),
    )
    assert bill is not None and bill.amount_minor == 3000
    with transaction.atomic():
        wallet_evaluate(wallet=wallet(org), now=timezone.now())
    assert wallet(org).supply == "cut_for_balance" and commands(org) == ["relay_trip"]
    recharge(org, "30.00", "pay")
    bill.refresh_from_db()
    assert bill.status == Bill.Status.PAID
    assert wallet(org).supply == "on" and commands(org) == ["relay_trip", "relay_close"]


def test_notifications_are_sent_after_commit_with_their_result(
    org: Any, policy: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    type(org.customer).objects.filter(pk=org.customer.pk).update(email="t@example.com")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        recharge(org, "10.00", "r1")  # below level 1 (50) and 2 (20): one alarm
    notification = Notification.objects.get()
    assert notification.status == "pending" and callbacks  # nothing leaves before commit
    for callback in callbacks:
        callback()
    notification.refresh_from_db()
    assert notification.result == "e-mail to t@example.com", notification.result
    assert notification.status == "sent"
    assert mail.outbox[-1].subject.startswith("Balance alarm level 2")


def test_days_of_credit_left_and_reminder(org: Any, policy: Any) -> None:
    policy.reminder_days = Decimal("5.0")
    policy.alarm_thresholds_minor = [100, 50, 10]
    policy.save()
    recharge(org, "30.00", "r1")
    tz = timezone.get_current_timezone()
    for days_ago in range(1, 4):
        day = timezone.localdate() - timedelta(days=days_ago)
        deduction_post(
            actor="t",
            account=org.account,
            lines=[("energy", Decimal("3.00"))],  # type: ignore[list-item]
            reference=f"d{days_ago}",
            occurred_at=datetime.combine(day, time(12), tz),
        )
    estimate = credit_estimate(wallet(org))
    assert estimate.days == Decimal("7.0")  # 21.00 / 3.00
    fee_charge(actor="t", account=org.account, amount="9.00", fee_code="x", reference="y")
    assert Notification.objects.filter(kind="reminder").count() == 1  # 12.00 / 3 = 4 days < 5


def test_the_gateway_deducts_as_soon_as_it_stores_readings(
    org: Any, policy: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from meterpay.gateway.db_port import DbPort
    from meterpay.gateway.readings import ElectricityReading, EnergyRegisters, MeterProtocol

    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    Account.objects.filter(pk=org.account.pk).update(opened_at=start - timedelta(hours=1))
    recharge(org, "20.00", "r1")
    port = DbPort()

    def polled(total: str, hours: int) -> tuple[str, ElectricityReading, str]:
        reading = ElectricityReading(
            protocol=MeterProtocol.DLT645,
            address=org.meter.address,
            energy_kwh=EnergyRegisters(total=Decimal(total)),
            read_at=start + timedelta(hours=hours),
        )
        return (org.gateway.identifier, reading, "poll")

    with django_capture_on_commit_callbacks(execute=True) as first:
        port.record_batch([polled("100", 0)])
    assert first == [] and wallet(org).balance_minor == 2000  # a first reading: no interval
    with django_capture_on_commit_callbacks(execute=True):
        port.record_batch([polled("110", 1)])  # 10 kWh x 0.68: deducted with no sweep
    assert wallet(org).balance_minor == 2000 - 680
    assert JournalEntry.objects.filter(kind="deduction").count() == 1
