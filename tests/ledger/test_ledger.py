"""Ledger and wallet services: balanced entries, cached balance == postings, idempotency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from meterpay.apps.billing.services import deduction_post, entry_reverse, fee_charge
from meterpay.apps.billing.settlement import account_settle, account_settle_and_close
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import ImmutableError, JournalEntry, Posting, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.ledger.services import WalletError
from meterpay.apps.payments.models import Recharge
from meterpay.apps.payments.refunds import refund_record
from meterpay.apps.payments.services import recharge_confirm, recharge_record
from meterpay.core.ledger import ChargeType, IdempotencyConflict

pytestmark = pytest.mark.django_db


def balance(account: Account) -> int:
    return Wallet.objects.get(account=account).balance_minor


def test_cash_recharge_credits_once_and_replays(org: Any) -> None:
    user = org.users["finance"]
    first, created = recharge_record(
        actor=user,
        account=org.account,
        amount=Decimal("50.00"),
        channel="cash",
        idempotency_key="k1",
    )
    assert created and first.status == Recharge.Status.PAID
    again, created = recharge_record(
        actor=user, account=org.account, amount="50.00", channel="cash", idempotency_key="k1"
    )
    assert not created and again.pk == first.pk
    assert balance(org.account) == 5000
    with pytest.raises(IdempotencyConflict):
        recharge_record(
            actor=user, account=org.account, amount="60.00", channel="cash", idempotency_key="k1"
        )
    assert balance(org.account) == 5000
    assert ledger_mismatches() == []


def test_bank_transfer_is_pending_until_confirmed(org: Any) -> None:
    user = org.users["finance"]
    recharge, _ = recharge_record(
        actor=user,
        account=org.account,
        amount="30.00",
        channel="bank_transfer",
        idempotency_key="b1",
    )
    assert recharge.status == Recharge.Status.PENDING
    assert balance(org.account) == 0
    recharge_confirm(actor=user, recharge=recharge)
    recharge_confirm(actor=user, recharge=recharge)  # twice: once
    assert balance(org.account) == 3000


def test_float_and_bad_amounts_are_refused(org: Any) -> None:
    for bad in (50.0, "0", "-1", "1.234", "abc"):
        with pytest.raises(WalletError):
            recharge_record(
                actor="t", account=org.account, amount=bad, channel="cash", idempotency_key=str(bad)
            )


def test_refund_part_and_all_never_more_than_balance(org: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="100.00", channel="cash", idempotency_key="r"
    )
    refund_record(
        actor="t", account=org.account, amount="30.00", channel="cash", idempotency_key="f1"
    )
    assert balance(org.account) == 7000
    with pytest.raises(WalletError):
        refund_record(
            actor="t", account=org.account, amount="70.01", channel="cash", idempotency_key="f2"
        )
    refund_record(actor="t", account=org.account, amount=None, channel="cash", idempotency_key="f3")
    refund_record(actor="t", account=org.account, amount=None, channel="cash", idempotency_key="f3")
    assert balance(org.account) == 0


def test_deduction_fee_reversal(org: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="100.00", channel="cash", idempotency_key="r"
    )
    from django.utils import timezone

    entry = deduction_post(
        actor="t",
        account=org.account,
        lines=[(ChargeType.ENERGY, Decimal("1.005")), (ChargeType.BASIC_CHARGE, Decimal("2.50"))],
        reference="meter-1/2025-03-01T10:00",
        occurred_at=timezone.now(),
    )
    assert entry is not None and entry.wallet_amount == -351
    fee = fee_charge(actor="t", account=org.account, amount="20.00", fee_code="card", reference="x")
    assert balance(org.account) == 10000 - 351 - 2000
    entry_reverse(actor="t", entry=fee, reason="charged by mistake")
    again = entry_reverse(actor="t", entry=fee, reason="charged by mistake")
    assert again.reverses_id == fee.pk
    assert balance(org.account) == 10000 - 351
    assert JournalEntry.objects.filter(kind="reversal").count() == 1
    assert ledger_mismatches() == []


def test_ledger_rows_are_immutable(org: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="1.00", channel="cash", idempotency_key="r"
    )
    entry = JournalEntry.objects.get()
    with pytest.raises(ImmutableError):
        entry.memo = "changed"
        entry.save()
    with pytest.raises(ImmutableError):
        Posting.objects.all().update(amount=1)
    with pytest.raises(ImmutableError):
        Posting.objects.first().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL trigger")
def test_postgres_trigger_refuses_unbalanced_entry(org: Any) -> None:
    from django.db import IntegrityError
    from django.db import connection as conn

    recharge_record(
        actor="t", account=org.account, amount="1.00", channel="cash", idempotency_key="r"
    )
    posting = Posting.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic(), conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_posting (organisation_id, entry_id, ledger_account_id, amount)"
            " VALUES (%s, %s, %s, 5)",
            [posting.organisation_id, posting.entry_id, posting.ledger_account_id],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_settle_refund_and_arrears_then_close(org: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="82.65", channel="cash", idempotency_key="r"
    )
    account, result = account_settle_and_close(actor="t", account=org.account)
    assert account.status == Account.Status.CLOSED
    assert result.refund_minor == 8265 and result.arrears_minor == 0
    assert balance(org.account) == 0


def test_settle_arrears(org: Any) -> None:
    result = account_settle(
        actor="t", account=org.account, final_charges=[(ChargeType.ENERGY, Decimal("13.00"))]
    )
    assert result.arrears_minor == 1300 and balance(org.account) == 0


def test_ledger_check_command(org: Any, capsys: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="5.00", channel="cash", idempotency_key="r"
    )
    call_command("ledger", "check")
    Wallet.objects.filter(account=org.account).update(balance_minor=1)
    with pytest.raises(SystemExit) as exc:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["meterpay", "ledger", "check"])
    assert exc.value.code == 1
    assert "cached 0.01 != postings 5.00" in capsys.readouterr().err
