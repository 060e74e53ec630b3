"""API idempotency (replay = same answer, one credit; different content = 409), wallet fields
on accounts, and provider notifications: genuine credit once over 100 replays, forged refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.payments.models import PaymentNotificationLog, PaymentProviderConfig, Recharge
from meterpay.apps.payments.online import (
    SimulatedNotification,
    demo_providers_create,
    online_order_create,
    payment_notification_receive,
    simulate_payment,
)

pytestmark = pytest.mark.django_db


def post(client: Any, org: Any, path: str, body: Any, key: str | None = None) -> Any:
    extra = {"HTTP_AUTHORIZATION": f"Bearer {org.raw_token}"}
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post("/api/v1" + path, json.dumps(body), content_type="application/json", **extra)


def get(client: Any, org: Any, path: str) -> Any:
    return client.get("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {org.raw_token}")


def test_recharge_replay_and_conflict(client: Any, org: Any) -> None:
    path = f"/accounts/{org.account.pk}/recharges"
    first = post(client, org, path, {"amount": "50.00", "channel": "cash"}, key="abc")
    assert first.status_code == 201, first.content
    again = post(client, org, path, {"amount": "50.00", "channel": "cash"}, key="abc")
    assert again.status_code == 201 and again.json() == first.json()
    assert first.json()["amount"] == "50.00" and first.json()["balance_after"] == "50.00"
    conflict = post(client, org, path, {"amount": "51.00", "channel": "cash"}, key="abc")
    assert conflict.status_code == 409
    assert Wallet.objects.get(account=org.account).balance_minor == 5000
    assert post(client, org, path, {"amount": "1.00"}).status_code == 400  # no key
    assert post(client, org, path, {"amount": "1.001"}, key="x").status_code == 400
    assert post(client, org, path, {"amount": 1.5}, key="y").status_code in (400, 422)


def test_account_shows_balance_supply_and_days(client: Any, org: Any) -> None:
    post(client, org, f"/accounts/{org.account.pk}/recharges", {"amount": "12.34"}, key="k")
    body = get(client, org, f"/accounts/{org.account.pk}").json()
    assert body["balance"] == "12.34" and body["supply"] == "on"
    assert body["billing_mode"] == "prepaid" and body["status"] == "open"
    assert body["days_of_credit_left"] is None and body["customer"]["name"] == "Customer alpha"
    listed = get(client, org, "/accounts?status=open").json()
    assert listed["count"] == 1 and listed["items"][0]["balance"] == "12.34"


def test_refund_and_history(client: Any, org: Any) -> None:
    post(client, org, f"/accounts/{org.account.pk}/recharges", {"amount": "20.00"}, key="k")
    refund = post(client, org, f"/accounts/{org.account.pk}/refunds", {"amount": "5.00"}, key="r")
    assert refund.status_code == 201 and refund.json()["amount"] == "-5.00"
    assert (
        post(
            client, org, f"/accounts/{org.account.pk}/refunds", {"amount": "6.00"}, key="r"
        ).status_code
        == 409
    )
    assert (
        post(
            client, org, f"/accounts/{org.account.pk}/refunds", {"amount": "99.00"}, key="q"
        ).status_code
        == 400
    )
    history = get(client, org, f"/accounts/{org.account.pk}/entries").json()
    assert [e["kind"] for e in history["items"]] == ["refund", "recharge"]


# --- notifications ----------------------------------------------------------------------------


@pytest.fixture
def providers(org: Any) -> Any:
    return demo_providers_create(actor="test", organisation=org.org)


def _send(client: Any, sim: SimulatedNotification) -> Any:
    url = {
        "wechat": "/api/v1/payments/wechat/notify",
        "alipay": "/api/v1/payments/alipay/notify",
        "forward": f"/api/v1/payments/forward/{sim.provider_name}/callback",
    }[sim.kind]
    headers = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in sim.headers.items()}
    return client.post(url, sim.body, content_type=sim.content_type, **headers)


@pytest.mark.parametrize("provider", ["wechat", "alipay", "forward.alpha-local"])
def test_genuine_notification_credits_once_over_100_replays(
    client: Any, org: Any, providers: Any, provider: str
) -> None:
    order = online_order_create(actor="t", account=org.account, amount="30.00", provider=provider)
    sim = simulate_payment(order=order)
    for _ in range(100):
        assert _send(client, sim).status_code in (200, 204)
    assert Wallet.objects.get(account=org.account).balance_minor == 3000
    assert JournalEntry.objects.filter(kind="recharge").count() == 1
    order.refresh_from_db()
    assert order.status == Recharge.Status.PAID and order.balance_after_minor == 3000
    outcomes = list(PaymentNotificationLog.objects.values_list("outcome", flat=True))
    assert outcomes.count("credited") == 1 and outcomes.count("replay") == 99
    assert ledger_mismatches() == []


@pytest.mark.parametrize("provider", ["wechat", "alipay", "forward.alpha-local"])
def test_altered_or_forged_notifications_are_refused(
    client: Any, org: Any, providers: Any, provider: str
) -> None:
    order = online_order_create(actor="t", account=org.account, amount="30.00", provider=provider)
    sim = simulate_payment(order=order)
    if sim.kind == "alipay":
        altered = sim.body.replace(b"total_amount=30.00", b"total_amount=3000.00")
    elif sim.kind == "forward":
        altered = sim.body.replace(b'"amount_minor":3000', b'"amount_minor":300000')
    else:
        altered = sim.body.replace(b'"ciphertext":"', b'"ciphertext":"AAAA')
    assert altered != sim.body
    forged = SimulatedNotification(
        sim.kind, sim.provider_name, sim.headers, altered, sim.content_type
    )
    assert _send(client, forged).status_code == 400
    # signed by another key: regenerate the org's keys, the old simulator signature is refused
    PaymentProviderConfig.objects.filter(organisation=org.org).delete()
    demo_providers_create(actor="t", organisation=org.org)
    assert _send(client, sim).status_code == 400
    assert Wallet.objects.get(account=org.account).balance_minor == 0
    assert PaymentNotificationLog.objects.filter(outcome="rejected").count() == 2


def test_notification_for_unknown_order_or_other_amount_is_refused(
    client: Any, org: Any, providers: Any
) -> None:
    order = online_order_create(actor="t", account=org.account, amount="30.00", provider="wechat")
    order_other = Recharge(
        organisation_id=order.organisation_id,
        number="MPNOPE",
        account=org.account,
        channel="wechat",
        provider="wechat",
        amount_minor=3000,
        currency="CNY",
    )
    sim = simulate_payment(order=order_other)
    assert _send(client, sim).status_code == 400
    Recharge.objects.filter(pk=order.pk).update(amount_minor=2999)
    assert _send(client, simulate_payment(order=order)).status_code == 400
    assert Wallet.objects.get(account=org.account).balance_minor == 0


def test_order_independent_closed_after_paid_keeps_paid(org: Any, providers: Any) -> None:
    order = online_order_create(
        actor="t", account=org.account, amount="8.00", provider="forward.alpha-local"
    )
    sim = simulate_payment(order=order, transaction_id="T1")
    result = payment_notification_receive(
        kind="forward", headers=sim.headers, body=sim.body, provider_name="alpha-local"
    )
    assert result.outcome == "credited"
    body = json.loads(sim.body)
    body["status"] = "closed"
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    from django.utils import timezone

    from meterpay.core.payments import forwarding

    config = PaymentProviderConfig.objects.get(kind="forwarding")
    headers = forwarding.sign_request(secret=config.secret.encode(), body=raw, now=timezone.now())
    late = payment_notification_receive(
        kind="forward", headers=headers, body=raw, provider_name="alpha-local"
    )
    assert late.outcome == "ignored"
    order.refresh_from_db()
    assert order.status == Recharge.Status.PAID


def test_portal_pay_page_round_trip_without_javascript(
    client: Any, org: Any, providers: Any
) -> None:
    from tests.factories import PASSWORD

    assert client.login(username=org.tenant.username, password=PASSWORD)
    response = client.post(
        f"/portal/accounts/{org.account.pk}/pay/", {"amount": "50.00", "provider": "alipay"}
    )
    assert response.status_code == 302
    order = Recharge.objects.get(channel="alipay")
    assert response["Location"].endswith(f"/portal/pay/{order.number}/")
    assert client.get(response["Location"]).status_code == 200
    signed = client.post(response["Location"], HTTP_X_SIMULATOR="fetch").json()
    assert signed["url"] == "/api/v1/payments/alipay/notify"
    assert client.post(response["Location"]).status_code == 302  # server-side delivery
    assert Wallet.objects.get(account=org.account).balance_minor == 5000
    home = client.get("/portal/").content.decode()
    assert "50.00" in home
