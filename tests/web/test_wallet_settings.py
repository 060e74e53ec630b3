"""Wallet settings: payment provider credentials (write-only secrets, validated keys), the
balance policy and an account's own rules, notification channels, test messages and the log."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.billing.bills import postpaid_bill_issue
from meterpay.apps.billing.services import fee_charge
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.notifications.models import Notification, NotificationChannel
from meterpay.apps.notifications.services import (
    notification_channel_enable,
    notification_channel_save,
    notification_channel_test,
    notification_create,
    target_display,
)
from meterpay.apps.payments.models import PaymentProviderConfig
from meterpay.apps.payments.online import (
    demo_providers_create,
    online_order_create,
    payment_notification_receive,
    simulate_payment,
)
from meterpay.apps.payments.providers import notify_path, payment_provider_save, secret_hint
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.supply.selectors import account_policy, policy_row
from meterpay.apps.supply.services import balance_policy_save, wallet_overrides_set

pytestmark = pytest.mark.django_db

API_V3_KEY = "A" * 28 + "k3y9"  # 32 bytes
HMAC_SECRET = "s" * 36 + "tail"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _certificate(key: rsa.RSAPrivateKey, serial: int) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _wechat_values(key: rsa.RSAPrivateKey, **extra: Any) -> dict[str, Any]:
    return {
        "merchant_id": "1900000109",
        "app_id": "wx8888888888888888",
        "key_serial": "PUB_KEY_ID_0114232134912410000000000000",
        "public_key_pem": _public_pem(key),
        "secret": API_V3_KEY,
        "enabled": True,
        **extra,
    }


def _audit_text(org: Any) -> str:
    return json.dumps(
        list(AuditEvent.objects.filter(organisation=org.org).values("before", "after"))
    )


# --- services: payment providers --------------------------------------------------------------


def test_wechat_provider_is_validated_and_secrets_stay_out_of_the_audit(org: Any) -> None:
    key = _rsa()
    with pytest.raises(ValidationError) as caught:
        payment_provider_save(
            actor=org.users["owner"],
            organisation_id=org.org.pk,
            kind="wechat",
            values=_wechat_values(key, secret="too-short", public_key_pem="not a key"),
        )
    errors = caught.value.message_dict
    assert "32 bytes" in errors["secret"][0] and "9" in errors["secret"][0]
    assert "public_key_pem" in errors
    assert not PaymentProviderConfig.objects.filter(organisation=org.org).exists()

    config = payment_provider_save(
        actor=org.users["owner"],
        organisation_id=org.org.pk,
        kind="wechat",
        values=_wechat_values(key, simulator_private_key_pem=_private_pem(key)),
    )
    assert config.secret == API_V3_KEY
    audit = _audit_text(org)
    assert API_V3_KEY not in audit and "PRIVATE KEY" not in audit
    assert '"secret": "replaced"' in audit

    # an empty secret keeps the stored one; a new one replaces it
    payment_provider_save(
        actor=org.users["owner"],
        organisation_id=org.org.pk,
        kind="wechat",
        config=config,
        values=_wechat_values(key, secret="", app_id="wx9999999999999999"),
    )
    config.refresh_from_db()
    assert (config.secret, config.app_id) == (API_V3_KEY, "wx9999999999999999")
    assert config.simulator_private_key_pem  # kept too


def test_the_saved_credentials_verify_a_genuine_payment(org: Any) -> None:
    key = _rsa()
    payment_provider_save(
        actor="t",
        organisation_id=org.org.pk,
        kind="wechat",
        values=_wechat_values(key, simulator_private_key_pem=_private_pem(key)),
    )
    order = online_order_create(actor="t", account=org.account, amount="12.30", provider="wechat")
    sim = simulate_payment(order=order)
    result = payment_notification_receive(kind="wechat", headers=sim.headers, body=sim.body)
    assert result.outcome == "credited"
    assert Wallet.objects.get(account=org.account).balance_minor == 1230


def test_platform_certificate_sets_the_serial_and_a_foreign_demo_key_is_refused(org: Any) -> None:
    key = _rsa()
    with pytest.raises(ValidationError) as caught:
        payment_provider_save(
            actor="t",
            organisation_id=org.org.pk,
            kind="wechat",
            values=_wechat_values(
                key,
                key_serial="",
                public_key_pem=_certificate(key, 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1),
                simulator_private_key_pem=_private_pem(_rsa()),
            ),
        )
    assert "does not belong" in caught.value.message_dict["simulator_private_key_pem"][0]
    config = payment_provider_save(
        actor="t",
        organisation_id=org.org.pk,
        kind="wechat",
        values=_wechat_values(
            key,
            key_serial="",
            public_key_pem=_certificate(key, 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1),
        ),
    )
    assert config.key_serial == "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"


def test_alipay_accepts_a_bare_base64_key_and_refuses_an_ec_key(org: Any) -> None:
    key = _rsa()
    bare = "".join(_public_pem(key).strip().splitlines()[1:-1])
    config = payment_provider_save(
        actor="t",
        organisation_id=org.org.pk,
        kind="alipay",
        values={"app_id": "2021000000000001", "merchant_id": "", "public_key_pem": bare},
    )
    assert config.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValidationError) as caught:
        payment_provider_save(
            actor="t",
            organisation_id=org.org.pk,
            kind="alipay",
            config=config,
            values={"app_id": "2021000000000001", "merchant_id": "12", "public_key_pem": ec_pem},
        )
    assert set(caught.value.message_dict) == {"merchant_id", "public_key_pem"}
    with pytest.raises(ValidationError, match="already set up"):
        payment_provider_save(
            actor="t",
            organisation_id=org.org.pk,
            kind="alipay",
            values={"app_id": "2021000000000001", "public_key_pem": bare},
        )


def test_forwarding_names_are_unique_and_secrets_long(org: Any) -> None:
    from tests.factories import build_org

    other = build_org("bravo", 200)
    payment_provider_save(
        actor="t",
        organisation_id=other.org.pk,
        kind="forwarding",
        values={"name": "shared-name", "secret": HMAC_SECRET},
    )
    with pytest.raises(ValidationError) as caught:
        payment_provider_save(
            actor="t",
            organisation_id=org.org.pk,
            kind="forwarding",
            values={"name": "shared-name", "secret": "short"},
        )
    assert set(caught.value.message_dict) == {"name", "secret"}
    config = payment_provider_save(
        actor="t",
        organisation_id=org.org.pk,
        kind="forwarding",
        values={"name": "alpha-pay", "secret": f"{HMAC_SECRET}\n\n  {'n' * 32}  "},
    )
    assert config.secret == f"{HMAC_SECRET}\n{'n' * 32}"
    assert notify_path(config) == "/api/v1/payments/forward/alpha-pay/callback"
    assert secret_hint(config.secret) == "2 set, the first ends …tail"


def test_secret_hints_never_show_the_secret() -> None:
    assert secret_hint("") == "not set"
    assert secret_hint(API_V3_KEY) == "set, ends …k3y9"
    assert secret_hint(_private_pem(_rsa())) == "set (RSA 2048-bit key)"


# --- services: balance policy and account rules -----------------------------------------------


def _policy(**extra: Any) -> dict[str, Any]:
    return {
        "alarm_thresholds_minor": [5000, 2000, 500],
        "overdraft_minor": 1000,
        "restore_threshold_minor": 0,
        "repeat_count": 2,
        "repeat_interval_minutes": 720,
        "quiet_start": None,
        "quiet_end": None,
        "night_start": None,
        "night_end": None,
        "protect_weekends": False,
        "protect_holidays": True,
        "holidays": ["2027-10-01"],
        "working_days": [],
        "reminder_days": None,
        "postpaid_due_days": 10,
        "postpaid_grace_days": 3,
        **extra,
    }


@pytest.mark.parametrize(
    "extra,field",
    [
        ({"alarm_thresholds_minor": [2000, 5000]}, "alarm_thresholds_minor"),
        ({"alarm_thresholds_minor": []}, "alarm_thresholds_minor"),
        ({"restore_threshold_minor": -1001}, "restore_threshold_minor"),
        ({"overdraft_minor": -1}, "overdraft_minor"),
        ({"repeat_count": 0}, "repeat_count"),
        ({"quiet_start": datetime(2027, 1, 1, 22).time()}, "quiet_end"),
    ],
)
def test_a_bad_policy_changes_nothing(org: Any, extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        balance_policy_save(actor="t", organisation_id=org.org.pk, values=_policy(**extra))
    assert field in caught.value.message_dict
    assert not BalancePolicy.objects.filter(organisation=org.org).exists()


def test_policy_is_saved_audited_and_used(org: Any) -> None:
    balance_policy_save(actor=org.users["owner"], organisation_id=org.org.pk, values=_policy())
    row = policy_row(org.org.pk)
    assert (row.overdraft_minor, row.postpaid_due_days, row.holidays) == (1000, 10, ["2027-10-01"])
    event = AuditEvent.objects.get(organisation=org.org, action="balance_policy.change")
    assert event.after["alarm_thresholds_minor"] == [5000, 2000, 500]
    wallet = wallet_for(org.account)
    assert str(account_policy(wallet, row).overdraft) == "10.00"


def test_postpaid_bill_is_due_the_policys_days_after_the_period(org: Any) -> None:
    from meterpay.apps.customers.models import Account

    balance_policy_save(actor="t", organisation_id=org.org.pk, values=_policy())
    Account.objects.filter(pk=org.account.pk).update(billing_mode="postpaid")
    org.account.refresh_from_db()
    fee_charge(actor="t", account=org.account, amount="8.00", fee_code="card", reference="1")
    bill = postpaid_bill_issue(actor="t", account=org.account, period_end=date(2027, 3, 31))
    assert bill is not None and bill.due_on == date(2027, 4, 10)


def test_account_overrides_set_and_reset(org: Any) -> None:
    wallet = wallet_for(org.account)
    wallet_overrides_set(
        actor="t",
        wallet=wallet,
        keep_supply=True,
        alarm_thresholds_minor=[10000, 3000],
        overdraft_minor=500,
        restore_threshold_minor=None,
    )
    wallet.refresh_from_db()
    assert (wallet.keep_supply, wallet.alarm_thresholds_minor, wallet.overdraft_minor) == (
        True,
        [10000, 3000],
        500,
    )
    with pytest.raises(ValidationError):
        wallet_overrides_set(
            actor="t",
            wallet=wallet,
            keep_supply=False,
            alarm_thresholds_minor=None,
            overdraft_minor=500,
            restore_threshold_minor=-600,
        )
    wallet_overrides_set(
        actor="t",
        wallet=wallet,
        keep_supply=False,
        alarm_thresholds_minor=None,
        overdraft_minor=None,
        restore_threshold_minor=None,
    )
    wallet.refresh_from_db()
    assert (wallet.keep_supply, wallet.alarm_thresholds_minor, wallet.overdraft_minor) == (
        False,
        None,
        None,
    )
    event = AuditEvent.objects.filter(action="wallet.overrides").latest("pk")
    assert event.before["overdraft_minor"] == 500 and event.after["overdraft_minor"] is None


# --- services: notification channels ----------------------------------------------------------


def test_channels_take_only_their_events(org: Any) -> None:
    front = notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        values={
            "kind": "email",
            "name": "front desk",
            "target": "desk@example.com",
            "events": ["cut_off"],
        },
    )
    notification_create(account=org.account, kind="alarm", subject="s", body="b", level=1)
    assert not Notification.objects.filter(organisation=org.org).exists()
    notification_create(account=org.account, kind="cut_off", subject="s", body="b")
    assert list(Notification.objects.values_list("channel_id", flat=True)) == [front.pk]
    notification_channel_enable(actor="t", channel=front, enabled=False)
    notification_create(account=org.account, kind="alarm", subject="s", body="b", level=1)
    assert Notification.objects.filter(channel__isnull=True, kind="alarm").count() == 1


@pytest.mark.parametrize(
    "values,field",
    [
        ({"kind": "apprise", "target": "nonsense://x"}, "target"),
        ({"kind": "apprise", "target": ""}, "target"),
        ({"kind": "email", "target": "not-an-address"}, "target"),
        ({"kind": "webhook", "target": "ftp://example.com/x"}, "target"),
        ({"kind": "email", "target": "", "events": []}, "events"),
        ({"kind": "email", "target": "", "name": " "}, "name"),
    ],
)
def test_bad_channels_are_refused(org: Any, values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        notification_channel_save(
            actor="t",
            organisation_id=org.org.pk,
            values={"name": "x", "events": ["alarm"], **values},
        )
    assert field in caught.value.message_dict
    assert not NotificationChannel.objects.filter(organisation=org.org).exists()


def test_apprise_target_and_webhook_secret_are_write_only(org: Any) -> None:
    channel = notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        values={
            "kind": "apprise",
            "name": "ding",
            "target": "dingtalk://abcdefghijklmnop1234567890/{phone}",
            "events": ["alarm"],
        },
    )
    assert "abcdefghijklmnop1234567890" not in target_display(channel)
    notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        channel=channel,
        values={"name": "ding bot", "target": "", "events": ["alarm", "cut_off"]},
    )
    channel.refresh_from_db()
    assert channel.target == "dingtalk://abcdefghijklmnop1234567890/{phone}"
    hook = notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        values={
            "kind": "webhook",
            "name": "hook",
            "target": "https://example.com/hook",
            "secret": "hook-secret-value-1234",
            "events": ["alarm"],
        },
    )
    assert hook.secret == "hook-secret-value-1234"
    audit = _audit_text(org)
    assert "abcdefghijklmnop1234567890" not in audit and "hook-secret-value-1234" not in audit


def test_test_message_records_the_delivery_result(org: Any) -> None:
    channel = notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        values={"kind": "email", "name": "customer", "target": "{email}", "events": ["alarm"]},
    )
    with pytest.raises(ValidationError) as caught:
        notification_channel_test(actor=org.users["owner"], channel=channel)
    assert "email" in caught.value.message_dict
    sent = notification_channel_test(
        actor=org.users["owner"], channel=channel, email="check@example.com"
    )
    assert sent.status == "sent" and sent.result == "e-mail to check@example.com"
    assert mail.outbox[-1].to == ["check@example.com"]
    hook = notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        values={
            "kind": "webhook",
            "name": "unreachable",
            "target": "http://127.0.0.1:9/hook",
            "events": ["alarm"],
        },
    )
    failed = notification_channel_test(actor="t", channel=hook)
    assert failed.status == "failed" and failed.result
    assert failed.account is None and failed.kind == "test"
    actions = list(
        AuditEvent.objects.filter(action="notification_channel.test").values_list(
            "after__status", flat=True
        )
    )
    assert sorted(actions) == ["failed", "sent"]


# --- pages ------------------------------------------------------------------------------------


@pytest.fixture
def owner(client: Any, org: Any) -> Any:
    client.force_login(org.users["owner"])
    return client


def test_provider_pages_never_render_secrets(owner: Any, org: Any) -> None:
    key = _rsa()
    url = reverse("console:payment_provider_create") + "?kind=wechat"
    assert "APIv3" in owner.get(url).content.decode()
    posted = {**_wechat_values(key), "secret": "x" * 31, "app_id": ""}
    response = owner.post(url, posted)
    body = response.content.decode()
    assert response.status_code == 200
    assert "exactly 32 bytes; this one has 31" in body
    assert "x" * 31 not in body  # what was typed into a secret field is not shown again
    assert not PaymentProviderConfig.objects.filter(organisation=org.org).exists()

    private = _private_pem(key)
    response = owner.post(url, {**_wechat_values(key), "simulator_private_key_pem": private})
    assert response.status_code == 302
    config = PaymentProviderConfig.objects.get(organisation=org.org)
    for page_url in (
        reverse("console:payment_provider_list"),
        reverse("console:payment_provider_edit", args=[config.pk]),
    ):
        body = owner.get(page_url).content.decode()
        assert API_V3_KEY not in body and "PRIVATE KEY" not in body
        assert "…k3y9" in body
    body = owner.get(reverse("console:payment_provider_list")).content.decode()
    assert "http://testserver/api/v1/payments/wechat/notify" in body
    owner.post(reverse("console:payment_provider_edit", args=[config.pk]), {"action": "disable"})
    config.refresh_from_db()
    assert not config.enabled
    assert AuditEvent.objects.filter(action="payment_provider.disable").count() == 1
    assert API_V3_KEY not in _audit_text(org)


def test_providers_page_lists_the_payments_received(owner: Any, org: Any) -> None:
    demo_providers_create(actor="t", organisation=org.org)
    order = online_order_create(actor="t", account=org.account, amount="5.00", provider="alipay")
    sim = simulate_payment(order=order, transaction_id="2027TRADE0001")
    payment_notification_receive(kind="alipay", headers=sim.headers, body=sim.body)
    body = owner.get(reverse("console:payment_provider_list")).content.decode()
    assert "2027TRADE0001" in body and order.number in body


def test_finance_sees_providers_but_cannot_change_them(client: Any, org: Any) -> None:
    config = payment_provider_save(
        actor="t",
        organisation_id=org.org.pk,
        kind="forwarding",
        values={"name": "alpha-fwd", "secret": HMAC_SECRET},
    )
    client.force_login(org.users["finance"])
    body = client.get(reverse("console:payment_provider_list")).content.decode()
    assert "forward.alpha-fwd" in body and HMAC_SECRET not in body and "Edit" not in body
    edit = reverse("console:payment_provider_edit", args=[config.pk])
    assert client.post(edit, {"action": "disable"}).status_code == 403
    client.force_login(org.users["operator"])
    assert client.get(reverse("console:payment_provider_list")).status_code == 403


def _policy_form(**extra: str) -> dict[str, str]:
    return {
        "alarm_level_1": "50.00",
        "alarm_level_2": "20.00",
        "alarm_level_3": "5.00",
        "repeat_count": "2",
        "repeat_interval_minutes": "1440",
        "overdraft": "10.00",
        "restore_threshold": "0.00",
        "night_start": "22:00",
        "night_end": "07:00",
        "protect_holidays": "on",
        "holidays": "2027-10-01, 2027-10-02\n2027-10-03",
        "working_days": "",
        "reminder_days": "3.5",
        "postpaid_due_days": "15",
        "postpaid_grace_days": "7",
        **extra,
    }


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"alarm_level_2": "60.00"}, "Lower than level 1"),
        ({"alarm_level_1": "50.005"}, "at most 2 decimals"),
        ({"overdraft": "ten"}, "at most 2 decimals"),
        ({"restore_threshold": "-20.00"}, "would flap"),
        ({"night_end": ""}, "Give both times"),
        ({"holidays": "2027-13-01"}, "is not a date"),
    ],
)
def test_policy_page_shows_field_errors(
    owner: Any, org: Any, extra: dict[str, str], message: str
) -> None:
    response = owner.post(reverse("console:balance_policy"), _policy_form(**extra))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not BalancePolicy.objects.filter(organisation=org.org).exists()


def test_policy_page_saves(owner: Any, org: Any) -> None:
    assert owner.get(reverse("console:balance_policy")).status_code == 200
    response = owner.post(reverse("console:balance_policy"), _policy_form())
    assert response.status_code == 302
    row = BalancePolicy.objects.get(organisation=org.org)
    assert row.alarm_thresholds_minor == [5000, 2000, 500]
    assert row.overdraft_minor == 1000 and str(row.reminder_days) == "3.5"
    assert row.holidays == ["2027-10-01", "2027-10-02", "2027-10-03"]
    assert not row.protect_weekends and row.protect_holidays
    body = owner.get(reverse("console:balance_policy")).content.decode()
    assert 'value="10.00"' in body and "2027-10-03" in body


def test_viewer_reads_the_policy_but_cannot_post(client: Any, org: Any) -> None:
    client.force_login(org.users["viewer"])
    body = client.get(reverse("console:balance_policy")).content.decode()
    assert "disabled" in body and "Save the policy" not in body
    assert client.post(reverse("console:balance_policy"), _policy_form()).status_code == 403


def test_account_rules_page(owner: Any, org: Any) -> None:
    url = reverse("console:account_balance_rules", args=[org.account.pk])
    assert owner.get(url).status_code == 200
    response = owner.post(url, {"alarm_level_2": "20.00"})
    assert "without gaps" in response.content.decode()
    response = owner.post(
        url, {"keep_supply": "on", "alarm_level_1": "80.00", "overdraft": "15.00"}
    )
    assert response.status_code == 302
    wallet = Wallet.objects.get(account=org.account)
    assert (wallet.keep_supply, wallet.alarm_thresholds_minor, wallet.overdraft_minor) == (
        True,
        [8000],
        1500,
    )
    assert 'value="80.00"' in owner.get(url).content.decode()


def test_channel_pages_and_log_filters(owner: Any, org: Any) -> None:
    create = reverse("console:notification_channel_create")
    response = owner.post(
        create,
        {
            "kind": "webhook",
            "name": "ops hook",
            "target": "not a url",
            "secret": "typed-secret-1234567",
            "events": ["alarm"],
            "enabled": "on",
        },
    )
    body = response.content.decode()
    assert "http(s) URL" in body and "typed-secret-1234567" not in body
    response = owner.post(
        create,
        {
            "kind": "webhook",
            "name": "ops hook",
            "target": "https://ops.example.com/hook?token=abc",
            "secret": "typed-secret-1234567",
            "events": ["alarm", "cut_off"],
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    channel = NotificationChannel.objects.get(organisation=org.org)
    assert channel.events == ["alarm", "cut_off"]
    notification_create(account=org.account, kind="alarm", subject="Balance alarm 1", body="b")
    Notification.objects.filter(channel=channel).update(status="failed", result="HTTP 500")
    listing = reverse("console:notification_channel_list")
    body = owner.get(listing).content.decode()
    assert "https://ops.example.com/hook?…" in body and "token=abc" not in body
    assert "typed-secret" not in body and "HTTP 500" in body
    assert "Balance alarm 1" not in owner.get(listing, {"status": "sent"}).content.decode()
    assert "Balance alarm 1" in owner.get(listing, {"q": org.account.number}).content.decode()
    edit = reverse("console:notification_channel_edit", args=[channel.pk])
    assert "typed-secret" not in owner.get(edit).content.decode()
    owner.post(edit, {"action": "disable"})
    channel.refresh_from_db()
    assert not channel.enabled
    test_url = reverse("console:notification_channel_test", args=[channel.pk])
    assert owner.get(test_url).status_code == 200


def test_test_page_sends_and_shows_the_result(owner: Any, org: Any) -> None:
    channel = notification_channel_save(
        actor="t",
        organisation_id=org.org.pk,
        values={"kind": "email", "name": "desk", "target": "desk@example.com", "events": ["alarm"]},
    )
    url = reverse("console:notification_channel_test", args=[channel.pk])
    body = owner.post(url, {}).content.decode()
    assert "e-mail to desk@example.com" in body
    assert Notification.objects.get(kind="test").status == "sent"


def test_operator_manages_channels_finance_does_not(client: Any, org: Any) -> None:
    client.force_login(org.users["operator"])
    assert client.get(reverse("console:notification_channel_create")).status_code == 200
    client.force_login(org.users["finance"])
    assert client.get(reverse("console:notification_channel_create")).status_code == 403
    assert client.get(reverse("console:notification_channel_list")).status_code == 200


def test_random_bytes_in_a_pem_field_are_a_field_error(org: Any) -> None:
    junk = base64.b64encode(secrets.token_bytes(200)).decode()
    with pytest.raises(ValidationError) as caught:
        payment_provider_save(
            actor="t",
            organisation_id=org.org.pk,
            kind="alipay",
            values={"app_id": "2021000000000001", "public_key_pem": junk},
        )
    assert list(caught.value.message_dict) == ["public_key_pem"]
