"""Finance pages render with data; XLSX export; statement import is all-or-nothing."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from meterpay.apps.billing.services import fee_charge
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.payments.models import StatementImport
from meterpay.apps.payments.online import (
    demo_providers_create,
    online_order_create,
    payment_notification_receive,
    simulate_payment,
)
from meterpay.apps.payments.refunds import refund_record
from meterpay.apps.payments.services import recharge_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(client: Any, org: Any) -> Any:
    client.force_login(org.users["finance"])
    return client


def test_pages_render(finance: Any, org: Any) -> None:
    recharge, _ = recharge_record(
        actor=org.users["finance"],
        account=org.account,
        amount="50.00",
        channel="cash",
        idempotency_key="a",
    )
    fee_charge(actor="t", account=org.account, amount="2.00", fee_code="card", reference="1")
    for name, kwargs in [
        ("finance_orders", {}),
        ("finance_income", {}),
        ("finance_reconciliation", {}),
        ("finance_shift", {}),
        ("finance_account", {"account_id": org.account.pk}),
        ("finance_receipt", {"recharge_id": recharge.pk}),
        ("account_detail", {"account_id": org.account.pk}),
    ]:
        response = finance.get(
            reverse(f"console:{name}", kwargs=kwargs or None), {"group": "month"}
        )
        assert response.status_code == 200, name
    body = finance.get(reverse("console:finance_shift")).content.decode()
    assert "50.00" in body
    assert (
        "48.00"
        in finance.get(reverse("console:account_detail", args=[org.account.pk])).content.decode()
    )


def test_xlsx_export(finance: Any, org: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="50.00", channel="cash", idempotency_key="a"
    )
    response = finance.get(reverse("console:finance_orders"), {"export": "xlsx"})
    assert response.status_code == 200 and response.content[:2] == b"PK"


def test_counter_recharge_prints_receipt_and_refund(finance: Any, org: Any) -> None:
    url = reverse("console:finance_account", args=[org.account.pk])
    response = finance.post(
        url, {"action": "recharge", "amount": "20.00", "channel": "cash", "idempotency_key": "k"}
    )
    assert response.status_code == 302 and "/finance/receipts/" in response["Location"]
    again = finance.post(
        url, {"action": "recharge", "amount": "20.00", "channel": "cash", "idempotency_key": "k"}
    )
    assert again["Location"] == response["Location"]  # a double click prints the same receipt
    finance.post(url, {"action": "refund", "amount": "", "channel": "cash", "idempotency_key": "f"})
    assert org.account.wallet.balance_minor == 0 or wallet_for(org.account).balance_minor == 0


def test_statement_import_all_or_nothing_and_matching(finance: Any, org: Any) -> None:
    demo_providers_create(actor="t", organisation=org.org)
    order = online_order_create(actor="t", account=org.account, amount="30.00", provider="wechat")
    sim = simulate_payment(order=order, transaction_id="TX1")
    payment_notification_receive(kind="wechat", headers=sim.headers, body=sim.body)
    day = timezone.localdate()
    url = reverse("console:finance_reconciliation")
    bad = io.BytesIO(b"transaction_id,amount\nTX1,30.00\nTX2,abc\n,1.00\n")
    bad.name = "bad.csv"
    body = finance.post(
        url, {"day": day.isoformat(), "channel": "wechat", "statement": bad}
    ).content.decode()
    assert "line 3" in body and "line 4" in body
    assert not StatementImport.objects.exists()
    good = io.BytesIO(b"transaction_id,amount\nTX1,30.00\nTX9,5.00\n")
    good.name = "good.csv"
    response = finance.post(url, {"day": day.isoformat(), "channel": "wechat", "statement": good})
    assert response.status_code == 302
    statement = StatementImport.objects.get()
    assert statement.matched == 1 and statement.row_count == 2
    assert set(statement.lines.values_list("match", flat=True)) == {"matched", "missing"}
    assert finance.get(response["Location"]).status_code == 200
    assert day - timedelta(days=1) < day


def test_a_refund_owed_at_move_out_is_paid_out_once(finance: Any, org: Any) -> None:
    recharge_record(
        actor="t", account=org.account, amount="12.50", channel="cash", idempotency_key="r1"
    )
    refund = refund_record(
        actor="t",
        account=org.account,
        amount=None,
        channel="cash",
        idempotency_key="owed",
        paid_out=False,
    )
    url = reverse("console:finance_account", args=[org.account.pk])
    assert "Refunds owed to the tenant" in finance.get(url).content.decode()
    for channel in ("cash", "bank_transfer"):  # a double click, even with another channel
        finance.post(url, {"action": "payout", "entry": refund.pk, "channel": channel})
    payouts = JournalEntry.objects.filter(account=org.account, kind=JournalEntry.Kind.REFUND_PAYOUT)
    assert payouts.count() == 1
    amounts = {p.ledger_account.code: p.amount for p in payouts.get().postings.all()}
    assert amounts == {"refunds_payable": 1250, "cash": -1250}
    assert "Refunds owed to the tenant" not in finance.get(url).content.decode()
