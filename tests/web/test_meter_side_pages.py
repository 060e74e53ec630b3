"""Console and API views of a meter-side account: money on the meter, actions, discrepancies."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.control import credit
from meterpay.apps.control.models import BalanceDiscrepancy, MeterCommand
from meterpay.apps.customers.models import Account
from meterpay.apps.payments.services import recharge_record
from tests.factories import PASSWORD, build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    org = build_org("msp", 660)
    Account.objects.filter(pk=org.account.pk).update(billing_side=Account.BillingSide.METER)
    org.account.refresh_from_db()
    recharge_record(
        actor="t", account=org.account, amount="50.00", channel="cash", idempotency_key="k"
    )
    credit.meter_balances_reported(
        reports=[credit.BalanceReport(org.meter.pk, 4321, 7, timezone.now())]
    )
    return org


def login(client: Any, org: Any, role: str = "finance") -> Any:
    assert client.login(username=org.users[role].username, password=PASSWORD)
    return client


def test_account_page_shows_the_money_on_the_meter(client: Any, org: Any) -> None:
    body = (
        login(client, org, "viewer")
        .get(reverse("console:account_detail", args=[org.account.pk]))
        .content.decode()
    )
    assert 'data-testid="meter-side"' in body
    assert "43.21" in body  # the mirrored meter balance
    assert "50.00" in body  # downloaded by the ledger, and the pending download
    assert "Credit download" in body
    assert "Energy refund" not in body.split('data-testid="meter-side"')[1].split("<h3>")[0]


def test_finance_page_sends_an_energy_refund_and_refuses_an_empty_download(
    client: Any, org: Any
) -> None:
    url = reverse("console:finance_account", args=[org.account.pk])
    login(client, org)
    assert "Energy refund" in client.get(url).content.decode()
    response = client.post(url, {"action": "energy_refund", "idempotency_key": "e1"}, follow=True)
    assert MeterCommand.objects.filter(kind="credit_refund", amount_minor=0).count() == 1
    assert "Energy refund sent to the meter" in response.content.decode()
    response = client.post(url, {"action": "download_wallet", "idempotency_key": "w1"}, follow=True)
    assert "the wallet holds nothing to download" in response.content.decode()
    assert MeterCommand.objects.filter(kind="credit_download").count() == 1


def test_platform_side_accounts_show_no_meter_money(client: Any) -> None:
    org = build_org("psp", 670)
    body = (
        login(client, org)
        .get(reverse("console:finance_account", args=[org.account.pk]))
        .content.decode()
    )
    assert 'data-testid="meter-side"' not in body


def test_api_account_has_the_meter_balance(client: Any, org: Any) -> None:
    response = client.get(
        f"/api/v1/accounts/{org.account.pk}", HTTP_AUTHORIZATION=f"Bearer {org.raw_token}"
    )
    body = response.json()
    assert body["balance"] == "0.00"
    meter = body["meter_balance"]
    assert meter["meter_id"] == org.meter.pk and meter["remaining"] == "43.21"
    assert (meter["purchase_count"], meter["downloaded"], meter["pending_commands"]) == (
        7,
        "50.00",
        1,
    )


def test_discrepancies_are_listed_and_cleared_with_a_note(client: Any, org: Any) -> None:
    flag = BalanceDiscrepancy.objects.create(
        organisation=org.org,
        meter=org.meter,
        kind="rise",
        detail="remaining money rose from 100 to 900",
        detected_at=timezone.now(),
    )
    url = reverse("console:balance_discrepancies")
    login(client, org)
    assert "rose from 100 to 900" in client.get(url).content.decode()
    assert (
        "rose from 100 to 900"
        in client.get(reverse("console:meter_detail", args=[org.meter.pk])).content.decode()
    )
    client.post(url, {"discrepancy": flag.pk, "note": "meter replaced its battery"})
    flag.refresh_from_db()
    assert flag.cleared_at is not None and flag.cleared_by == org.users["finance"]
    assert AuditEvent.objects.filter(action="balance_discrepancy.clear").exists()
    assert "rose from 100 to 900" not in client.get(url).content.decode()
    client.logout()
    login(client, org, "operator")
    assert client.post(url, {"discrepancy": flag.pk, "note": "x"}).status_code == 403


def test_the_tenant_portal_shows_the_meter_balance(client: Any, org: Any) -> None:
    assert client.login(username="msp-tenant", password=PASSWORD)
    body = client.get(reverse("portal:home")).content.decode()
    number = org.account.number
    assert f'data-testid="meter-balance-{number}">43.21<' in body
    assert "a recharge is on its way to the meter" in body
