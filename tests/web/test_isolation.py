"""Tenant isolation: a user of organisation B can neither see nor change anything of organisation A.

Every console URL and every API operation is listed here; a new one that is not listed makes
``test_every_*_is_covered`` fail, so isolation cannot be forgotten for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import get_resolver, reverse

from meterpay.api.v1 import api
from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.payments.models import Recharge
from meterpay.apps.sites.models import Room, Site
from meterpay.apps.tariffs.models import AccountTariff, Tariff, TariffRevision
from tests.factories import PASSWORD, build_org
from tests.tariffs.helpers import org_tariff, single_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def orgs() -> tuple[Any, Any]:
    return build_org("alpha", 100), build_org("bravo", 200)


def _login(client: Any, user: Any) -> Any:
    assert client.login(username=user.username, password=PASSWORD)
    return client


# --- console -------------------------------------------------------------------------------


# url name -> (kwargs builder from org A, POST data builder or None)
def _cash_recharge(a: Any) -> Any:
    from meterpay.apps.payments.services import recharge_record

    return recharge_record(
        actor="test", account=a.account, amount="9.00", channel="cash", idempotency_key="iso"
    )[0]


def _provider(a: Any) -> Any:
    from meterpay.apps.payments.online import demo_providers_create

    return demo_providers_create(actor="test", organisation=a.org)[0]


def _channel(a: Any) -> Any:
    from meterpay.apps.notifications.models import NotificationChannel

    return NotificationChannel.objects.create(
        organisation=a.org, kind="email", name="Channel alpha", target="desk@alpha.example"
    )


def _run(a: Any) -> Any:
    """A draft bill run of org A for this month (its open account gets a bill)."""
    from datetime import timedelta

    from django.utils import timezone

    from meterpay.apps.billing.models import BillRun
    from meterpay.apps.billing.runs import bill_run_create

    existing = BillRun.objects.filter(organisation=a.org).first()
    if existing is not None:
        return existing
    start = timezone.localdate().replace(day=1)
    return bill_run_create(
        actor="test",
        organisation_id=a.org.pk,
        period_start=start,
        period_end=(start + timedelta(days=32)).replace(day=1),
        site=a.site,
    )


def _bill(a: Any) -> Any:
    return _run(a).bills.get()


def _charge_item(a: Any) -> Any:
    from meterpay.apps.billing.charges import charge_item_save
    from meterpay.apps.billing.models import ChargeItem

    return ChargeItem.objects.filter(organisation=a.org).first() or charge_item_save(
        actor="test",
        organisation_id=a.org.pk,
        values={"code": "rent", "name": "Rent alpha", "basis": "fixed", "unit_price": "100"},
    )


def _allocation_group(a: Any) -> Any:
    from meterpay.apps.billing.models import AllocationGroup
    from meterpay.apps.billing.sharing import allocation_group_save

    return AllocationGroup.objects.filter(organisation=a.org).first() or allocation_group_save(
        actor="test",
        organisation_id=a.org.pk,
        values={"name": "Lights alpha", "site": a.site, "master_meter": a.free_meter},
    )


def _loss_group(a: Any) -> Any:
    from meterpay.apps.billing.models import LossGroup
    from meterpay.apps.billing.sharing import loss_group_save

    return LossGroup.objects.filter(organisation=a.org).first() or loss_group_save(
        actor="test",
        organisation_id=a.org.pk,
        values={"name": "Grid alpha", "site": a.site, "unit_price": "0.5"},
    )


def _grid_reading(a: Any) -> Any:
    from datetime import date

    from meterpay.apps.billing.sharing import grid_reading_enter

    return grid_reading_enter(
        actor="test",
        group=_loss_group(a),
        read_on=date(2026, 11, 1),
        reading="100",
        photo=b"\x89PNG\r\n\x1a\nphoto alpha",
        photo_type="image/png",
    )


def _bill_template(a: Any) -> Any:
    from meterpay.apps.billing.models import BillTemplate

    return BillTemplate.objects.create(
        organisation=a.org, name="Template alpha", language="en", body="<p>{{ bill.number }}</p>"
    )


def _room_command(a: Any) -> Any:
    """A relay command of org A's room (the room page polls its status)."""
    from meterpay.apps.control.services import meter_command_request

    return MeterCommand.objects.filter(meter=a.meter).first() or meter_command_request(
        actor="test", meter=a.meter, kind="relay_trip", requested_by="operator"
    )


CONSOLE_OBJECT_PAGES: dict[str, Any] = {
    "payment_provider_edit": (
        lambda a: {"provider_id": _provider(a).pk},
        lambda a: {"action": "disable"},
    ),
    "notification_channel_edit": (
        lambda a: {"channel_id": _channel(a).pk},
        lambda a: {"action": "disable"},
    ),
    "notification_channel_test": (lambda a: {"channel_id": _channel(a).pk}, lambda a: {}),
    "account_balance_rules": (
        lambda a: {"account_id": a.account.pk},
        lambda a: {"keep_supply": "on"},
    ),
    "finance_account": (
        lambda a: {"account_id": a.account.pk},
        lambda a: {"action": "recharge", "amount": "50.00", "channel": "cash"},
    ),
    "finance_receipt": (lambda a: {"recharge_id": _cash_recharge(a).pk}, None),
    "room_detail": (lambda a: {"room_id": a.room.pk}, None),
    "room_state": (lambda a: {"room_id": a.room.pk}, None),
    "room_operations": (
        lambda a: {"room_id": a.room.pk},
        lambda a: {"op": "recharge", "amount": "50.00", "channel": "cash"},
    ),
    "room_command": (
        lambda a: {"room_id": a.room.pk, "command_id": _room_command(a).command_id},
        None,
    ),
    "site_holidays": (lambda a: {"site_id": a.site.pk}, lambda a: {"lines": "2027-01-01 x"}),
    "customer_detail": (
        lambda a: {"customer_id": a.customer.pk},
        lambda a: {"name": "hijacked", "kind": "person"},
    ),
    "account_detail": (lambda a: {"account_id": a.account.pk}, lambda a: {"action": "close"}),
    "meter_detail": (
        lambda a: {"meter_id": a.meter.pk},
        lambda a: {"address": "999999999999", "on": "2026-01-01"},
    ),
    "meter_commands": (
        lambda a: {"meter_id": a.meter.pk},
        lambda a: {"kind": "relay_trip", "reason": "x"},
    ),
    "gateway_detail": (lambda a: {"gateway_id": a.gateway.pk}, None),
    "import_detail": (lambda a: {"batch_id": a.batch.pk}, lambda a: {}),
    "tariff_detail": (lambda a: {"tariff_id": org_tariff(a).pk}, lambda a: {"action": "archive"}),
    "tariff_edit": (
        lambda a: {"tariff_id": org_tariff(a).pk},
        lambda a: {"document": __import__("json").dumps(single_price(name="hijacked"))},
    ),
    "tariff_schedule": (
        lambda a: {"tariff_id": org_tariff(a).pk},
        lambda a: {"effective_from": "2099-01-01T00:00", "version": "{}"},
    ),
    "tariff_preview": (lambda a: {"tariff_id": org_tariff(a).pk}, lambda a: {"profile": "shop"}),
    "tariff_export": (lambda a: {"tariff_id": org_tariff(a).pk}, None),
    # org_tariff(a) before the request: the POST names it, and creating it writes the audit log
    "account_tariffs": (
        lambda a: {"account_id": a.account.pk} if org_tariff(a) else {},
        lambda a: {"tariff": org_tariff(a).pk},
    ),
    "bill_run_detail": (lambda a: {"run_id": _run(a).pk}, lambda a: {"action": "discard"}),
    "bill_run_pdf": (lambda a: {"run_id": _run(a).pk}, None),
    "bill_run_zip": (lambda a: {"run_id": _run(a).pk}, None),
    "bill_detail": (lambda a: {"bill_id": _bill(a).pk}, lambda a: {"action": "confirm"}),
    "bill_pdf": (lambda a: {"bill_id": _bill(a).pk}, None),
    "charge_item_detail": (
        lambda a: {"item_id": _charge_item(a).pk},
        lambda a: {"action": "subscribe", "site": a.site.pk},
    ),
    "charge_item_edit": (
        lambda a: {"item_id": _charge_item(a).pk},
        lambda a: {"code": "hijacked", "name": "x", "basis": "fixed", "unit_price": "1"},
    ),
    "allocation_group_detail": (
        lambda a: {"group_id": _allocation_group(a).pk},
        lambda a: {"member": [a.account.pk]},
    ),
    "allocation_group_edit": (
        lambda a: {"group_id": _allocation_group(a).pk},
        lambda a: {"name": "hijacked"},
    ),
    "loss_group_detail": (
        lambda a: {"group_id": _loss_group(a).pk},
        lambda a: {"read_on": "2026-12-01", "reading": "200"},
    ),
    "loss_group_edit": (
        lambda a: {"group_id": _loss_group(a).pk},
        lambda a: {"name": "hijacked"},
    ),
    "grid_reading_photo": (lambda a: {"reading_id": _grid_reading(a).pk}, None),
    "bill_template_edit": (
        lambda a: {"template_id": _bill_template(a).pk},
        lambda a: {"name": "hijacked", "language": "en", "body": "x"},
    ),
}
CONSOLE_LIST_PAGES = [
    "finance_orders",
    "finance_income",
    "finance_reconciliation",
    "finance_shift",
    "home",
    "site_tree",
    "room_grid",
    "customer_list",
    "account_list",
    "meter_list",
    "gateway_list",
    "import_list",
    "audit_list",
    "token_list",
    "account_wizard",
    "customer_create",
    "meter_create",
    "gateway_create",
    "user_list",
    "tariff_list",
    "tariff_create",
    "tariff_import",
    "balance_policy",
    "payment_provider_list",
    "payment_provider_create",
    "notification_channel_list",
    "notification_channel_create",
    "balance_discrepancies",
    "bill_run_list",
    "bill_run_new",
    "bill_list",
    "bill_payments",
    "bill_arrears",
    "charge_item_list",
    "charge_item_create",
    "allocation_group_list",
    "allocation_group_create",
    "loss_group_list",
    "loss_group_create",
    "bill_template_list",
    "bill_template_create",
    "bill_branding",
    "bill_schedules",
]
# No object in the URL (site_add, import_template) or POST-only (user_change): checked below.
CONSOLE_OTHER = {"site_add", "import_template", "user_change", "finance_confirm"}


def test_every_console_url_is_covered() -> None:
    console = {
        n for n in get_resolver().namespace_dict["console"][1].reverse_dict if isinstance(n, str)
    }
    assert console  # sanity
    assert console == set(CONSOLE_OBJECT_PAGES) | set(CONSOLE_LIST_PAGES) | CONSOLE_OTHER


@pytest.mark.parametrize("name", sorted(CONSOLE_OBJECT_PAGES))
def test_console_object_pages_of_another_org_are_404(client: Any, orgs: Any, name: str) -> None:
    a, b = orgs
    kwargs, post_data = CONSOLE_OBJECT_PAGES[name]
    url = reverse(f"console:{name}", kwargs=kwargs(a))
    _login(client, b.users["owner"])
    assert client.get(url).status_code == 404
    if post_data is not None:
        before = AuditEvent.objects.filter(organisation=a.org).count()
        assert client.post(url, post_data(a)).status_code == 404
        assert AuditEvent.objects.filter(organisation=a.org).count() == before
    # and the owner of A does see it
    client.logout()
    _login(client, a.users["owner"])
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("name", CONSOLE_LIST_PAGES)
def test_console_lists_show_nothing_of_another_org(client: Any, orgs: Any, name: str) -> None:
    _a, b = orgs
    _login(client, b.users["owner"])
    response = client.get(reverse(f"console:{name}"), {"installed": "all"})
    assert response.status_code == 200
    body = response.content.decode()
    for secret in ("Customer alpha", "Site alpha", "DTU-alpha", f"{100:012d}", "alpha-owner"):
        assert secret not in body, f"{name} shows {secret!r} of another organisation"
    assert "Customer bravo" in body or name not in {"customer_list", "account_list", "room_grid"}


def test_billing_of_another_org_stays_unseen_and_unchanged(client: Any, orgs: Any) -> None:
    from meterpay.apps.billing.models import BillSchedule, ChargeSubscription

    a, b = orgs
    run, item = _run(a), _charge_item(a)
    group, loss, template = _allocation_group(a), _loss_group(a), _bill_template(a)
    _login(client, b.users["owner"])
    secrets = (run.number, _bill(a).number, item.name, group.name, loss.name, template.name)
    for name in (
        "bill_run_list",
        "bill_list",
        "bill_arrears",
        "charge_item_list",
        "allocation_group_list",
        "loss_group_list",
        "bill_template_list",
        "bill_schedules",
        "bill_run_new",
    ):
        body = client.get(reverse(f"console:{name}")).content.decode()
        for secret in secrets:
            assert secret not in body, f"{name} shows {secret!r} of another organisation"
    # B's own item cannot be given A's accounts, nor a schedule set on A's site
    own = _charge_item(b)
    url = reverse("console:charge_item_detail", args=[own.pk])
    client.post(url, {"action": "subscribe", "accounts": [a.account.pk]})
    client.post(url, {"action": "subscribe", "site": a.site.pk})
    assert not ChargeSubscription.objects.filter(account=a.account).exists()
    response = client.post(reverse("console:bill_schedules"), {"site": a.site.pk, "day": "1"})
    assert response.status_code == 404
    assert not BillSchedule.objects.exists()
    response = client.post(
        reverse("console:bill_run_new"),
        {"site": a.site.pk, "period_start": "2026-11-01", "period_last": "2026-11-30"},
    )
    assert response.status_code == 200 and "site" in response.context["form"].errors
    response = client.post(
        reverse("console:allocation_group_create"),
        {"name": "X", "site": b.site.pk, "master_meter": a.meter.pk, "rule": "area"},
    )
    assert "master_meter" in response.context["form"].errors


def test_wizard_rejects_rooms_customers_and_meters_of_another_org(client: Any, orgs: Any) -> None:
    a, b = orgs
    _login(client, b.users["owner"])
    url = reverse("console:account_wizard")
    assert client.post(url + "?step=room", {"room": a.vacant_room.pk}).status_code == 404
    assert client.post(url + "?step=room", {"room": b.vacant_room.pk}).status_code == 302
    response = client.post(url + "?step=customer", {"mode": "existing", "customer": a.customer.pk})
    assert response.status_code == 404
    client.post(url + "?step=customer", {"mode": "existing", "customer": b.customer.pk})
    client.post(url + "?step=meters", {"meters": [a.free_meter.pk]})
    assert client.session["account_wizard"]["meters"] == []


def test_site_add_cannot_attach_to_another_orgs_site(client: Any, orgs: Any) -> None:
    a, b = orgs
    _login(client, b.users["owner"])
    client.post(
        reverse("console:site_add", args=["building"]),
        {"building-site": a.site.pk, "building-name": "X"},
    )
    client.post(
        reverse("console:site_add", args=["room"]),
        {"room-floor": a.floor.pk, "room-number": "X1", "room-kind": "shop", "room-area_m2": "1"},
    )
    assert not a.site.buildings.filter(name="X").exists()
    assert not Room.objects.filter(number="X1").exists()


def test_users_of_another_org_cannot_be_changed(client: Any, orgs: Any) -> None:
    a, b = orgs
    _login(client, b.users["owner"])
    url = reverse("console:user_change", args=[a.users["viewer"].pk])
    assert client.post(url, {"role": "owner"}).status_code == 404
    assert client.post(url, {"active": "0"}).status_code == 404
    a.users["viewer"].refresh_from_db()
    assert a.users["viewer"].role == "viewer" and a.users["viewer"].is_active


def test_token_revoke_of_another_users_token_is_404(client: Any, orgs: Any) -> None:
    a, b = orgs
    _login(client, b.users["owner"])
    response = client.post(reverse("console:token_list"), {"revoke": a.token.pk})
    assert response.status_code == 404
    a.token.refresh_from_db()
    assert a.token.revoked_at is None


def test_balance_discrepancy_of_another_org_cannot_be_cleared(client: Any, orgs: Any) -> None:
    from django.utils import timezone

    from meterpay.apps.control.models import BalanceDiscrepancy

    a, b = orgs
    flag = BalanceDiscrepancy.objects.create(
        organisation=a.org,
        meter=a.meter,
        kind="rise",
        detail="Site alpha meter",
        detected_at=timezone.now(),
    )
    _login(client, b.users["owner"])
    url = reverse("console:balance_discrepancies")
    assert "Site alpha meter" not in client.get(url).content.decode()
    assert client.post(url, {"discrepancy": flag.pk, "note": "x"}).status_code == 404
    flag.refresh_from_db()
    assert flag.cleared_at is None


def test_bank_transfer_of_another_org_cannot_be_confirmed(client: Any, orgs: Any) -> None:
    from meterpay.apps.ledger.models import Wallet
    from meterpay.apps.payments.services import recharge_record

    a, b = orgs
    transfer, _ = recharge_record(
        actor="test", account=a.account, amount="9.00", channel="bank_transfer", idempotency_key="t"
    )
    _login(client, b.users["owner"])
    url = reverse("console:finance_confirm", args=[transfer.pk])
    assert client.post(url).status_code == 404
    transfer.refresh_from_db()
    assert transfer.status == "pending"
    assert not Wallet.objects.filter(account=a.account, balance_minor__gt=0).exists()


def test_portal_pay_pages_of_another_tenants_account_are_404(client: Any, orgs: Any) -> None:
    from meterpay.apps.payments.online import demo_providers_create, online_order_create

    a, b = orgs
    demo_providers_create(actor="test", organisation=a.org)
    order = online_order_create(actor="test", account=a.account, amount="5.00", provider="wechat")
    _login(client, b.tenant)
    assert client.get(reverse("portal:pay", args=[a.account.pk])).status_code == 404
    assert (
        client.post(reverse("portal:pay", args=[a.account.pk]), {"amount": "5.00"}).status_code
        == 404
    )
    assert client.get(reverse("portal:pay_order", args=[order.number])).status_code == 404
    assert client.post(reverse("portal:pay_order", args=[order.number])).status_code == 404
    assert client.get(reverse("portal:pay", args=[b.account.pk])).status_code == 200


def test_wallet_settings_of_another_org_stay_unseen_and_unchanged(client: Any, orgs: Any) -> None:
    from meterpay.apps.notifications.models import Notification
    from meterpay.apps.notifications.services import notification_create
    from meterpay.apps.payments.models import PaymentProviderConfig
    from meterpay.apps.supply.selectors import policy_row

    a, b = orgs
    provider = _provider(a)
    channel = _channel(a)
    notification_create(account=a.account, kind="alarm", subject="Alarm alpha", body="x")
    _login(client, b.users["owner"])
    for name in ("payment_provider_list", "notification_channel_list", "balance_policy"):
        body = client.get(reverse(f"console:{name}")).content.decode()
        for secret in (provider.merchant_id, provider.app_id, "Channel alpha", "Alarm alpha"):
            assert secret not in body, f"{name} shows {secret!r} of another organisation"
    log = client.get(reverse("console:notification_channel_list"), {"channel": channel.pk})
    assert "Alarm alpha" not in log.content.decode()
    client.post(
        reverse("console:balance_policy"),
        {
            "alarm_level_1": "99.00",
            "repeat_count": "1",
            "repeat_interval_minutes": "60",
            "overdraft": "0.00",
            "restore_threshold": "0.00",
            "postpaid_due_days": "1",
            "postpaid_grace_days": "1",
        },
    )
    assert policy_row(a.org.pk).pk is None  # B's policy is B's alone
    assert policy_row(b.org.pk).alarm_thresholds_minor == [9900]
    assert Notification.objects.filter(organisation=a.org).count() == 1
    assert PaymentProviderConfig.objects.filter(organisation=a.org, enabled=True).count() == 3


def test_portal_shows_only_the_tenants_own_accounts(client: Any, orgs: Any) -> None:
    _a, b = orgs
    _login(client, b.tenant)
    body = client.get(reverse("portal:home")).content.decode()
    assert b.account.number in body
    assert "Customer bravo" in body
    assert "Customer alpha" not in body


# --- API -----------------------------------------------------------------------------------

PATH_IDS = {
    "site_id": lambda a: a.site.pk,
    "room_id": lambda a: a.room.pk,
    "customer_id": lambda a: a.customer.pk,
    "account_id": lambda a: a.account.pk,
    "meter_id": lambda a: a.meter.pk,
    "gateway_id": lambda a: a.gateway.pk,
    "tariff_id": lambda a: org_tariff(a).pk,
    "provider": lambda a: f"{a.org.slug}-local",
    "charge_item_id": lambda a: _charge_item(a).pk,
    "allocation_group_id": lambda a: _allocation_group(a).pk,
    "loss_group_id": lambda a: _loss_group(a).pk,
    "run_id": lambda a: _run(a).pk,
    "bill_id": lambda a: _bill(a).pk,
}
# Bodies for operations whose body names objects (ids of org A when attacking).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/sites"): lambda a: {"name": "S", "kind": "mall"},
    ("POST", "/rooms"): lambda a: {
        "floor_id": a.floor.pk,
        "number": "Z9",
        "kind": "shop",
        "area_m2": "1",
    },
    ("PATCH", "/rooms/{room_id}"): lambda a: {"area_m2": "99"},
    ("POST", "/customers"): lambda a: {"name": "N"},
    ("PATCH", "/customers/{customer_id}"): lambda a: {"name": "hijacked"},
    ("POST", "/accounts"): lambda a: {"customer_id": a.customer.pk, "room_ids": [a.vacant_room.pk]},
    ("POST", "/meters"): lambda a: {
        "kind": "electricity_1p",
        "protocol": "dlt645",
        "address": "777777777777",
        "gateway_id": a.gateway.pk,
        "room_id": a.vacant_room.pk,
    },
    ("POST", "/meters/{meter_id}/replace"): lambda a: {
        "address": "888888888888",
        "on": "2026-05-01",
    },
    ("POST", "/meters/{meter_id}/commands"): lambda a: {"kind": "relay_trip", "reason": "hijack"},
    ("POST", "/tariffs"): lambda a: single_price(name="New tariff"),
    ("PUT", "/tariffs/{tariff_id}/document"): lambda a: single_price(name="hijacked"),
    ("POST", "/tariffs/{tariff_id}/versions"): lambda a: {
        "effective_from": "2099-01-01T00:00:00",
        "version": {"energy": {"periods": [{"name": "flat", "price": "9"}]}},
    },
    ("POST", "/tariffs/{tariff_id}/rate"): lambda a: {"intervals": [], "account_id": a.account.pk},
    ("PUT", "/accounts/{account_id}/tariffs"): lambda a: {"tariff_id": org_tariff(a).pk},
    ("POST", "/gateways"): lambda a: {
        "site_id": a.site.pk,
        "identifier": "NEW",
        "kind": "dtu_4g",
        "protocol": "dlt645",
    },
    ("POST", "/accounts/{account_id}/recharges"): lambda a: {"amount": "50.00", "channel": "cash"},
    ("POST", "/accounts/{account_id}/refunds"): lambda a: {"amount": "1.00", "channel": "cash"},
    ("POST", "/payments/wechat/notify"): lambda a: {"event_type": "TRANSACTION.SUCCESS"},
    ("POST", "/payments/alipay/notify"): lambda a: {"out_trade_no": "x"},
    ("POST", "/payments/forward/{provider}/callback"): lambda a: {"order_no": "x"},
    ("POST", "/charge-items"): lambda a: {
        "code": "new",
        "name": "New fee",
        "basis": "fixed",
        "unit_price": "10",
    },
    ("PATCH", "/charge-items/{charge_item_id}"): lambda a: {"name": "hijacked"},
    ("POST", "/charge-items/{charge_item_id}/subscriptions"): lambda a: {
        "account_ids": [a.account.pk]
    },
    ("POST", "/allocation-groups"): lambda a: {
        "name": "New lighting",
        "site_id": a.site.pk,
        "master_meter_id": a.free_meter.pk,
    },
    ("PATCH", "/allocation-groups/{allocation_group_id}"): lambda a: {"name": "hijacked"},
    ("PUT", "/allocation-groups/{allocation_group_id}/members"): lambda a: {
        "members": [{"account_id": a.account.pk, "ratio": "1"}]
    },
    ("POST", "/loss-groups"): lambda a: {
        "name": "New grid",
        "site_id": a.site.pk,
        "unit_price": "0.8",
    },
    ("PATCH", "/loss-groups/{loss_group_id}"): lambda a: {"name": "hijacked"},
    ("POST", "/loss-groups/{loss_group_id}/readings"): lambda a: {
        "read_on": "2026-12-01",
        "reading": "1",
    },
    ("POST", "/bill-runs"): lambda a: {
        "site_id": a.site.pk,
        "period_start": "2026-11-01",
        "period_end": "2026-12-01",
    },
    ("POST", "/bill-runs/{run_id}/remake"): lambda a: {},
    ("POST", "/bill-runs/{run_id}/confirm"): lambda a: {},
    ("POST", "/bill-runs/{run_id}/back-to-draft"): lambda a: {},
    ("POST", "/bill-runs/{run_id}/issue"): lambda a: {},
    ("POST", "/bill-runs/{run_id}/discard"): lambda a: {},
    ("POST", "/bills/{bill_id}/confirm"): lambda a: {},
    ("POST", "/bills/{bill_id}/issue"): lambda a: {},
    ("POST", "/bills/{bill_id}/pay"): lambda a: {"amount": "1.00", "channel": "cash"},
    ("POST", "/bills/{bill_id}/credit"): lambda a: {"reason": "hijack"},
    ("POST", "/bills/{bill_id}/reissue"): lambda a: {
        "reason": "hijack",
        "adjustments": [{"label": "x", "amount": "-1.00"}],
    },
}
# Provider notifications take no login: an unsigned (forged) one is refused with 400 whoever
# sends it, and changes nothing (tests/payments covers genuine ones and replays).
UNAUTHENTICATED_NOTIFICATIONS = {
    ("POST", "/payments/wechat/notify"),
    ("POST", "/payments/alipay/notify"),
    ("POST", "/payments/forward/{provider}/callback"),
}
# Creates whose body names no object of another organisation: allowed, in B's own organisation.
OWN_ORG_CREATES = {
    ("POST", "/sites"),
    ("POST", "/customers"),
    ("POST", "/tariffs"),
    ("POST", "/charge-items"),
}


def _operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    ops = []
    for path, methods in schema["paths"].items():
        for method in methods:
            ops.append((method.upper(), path.removeprefix("/api/v1")))
    return sorted(ops)


def test_every_api_operation_is_covered() -> None:
    for method, path in _operations():
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        assert all(p in PATH_IDS for p in params), f"{method} {path}: add its ids to PATH_IDS"
        if method in {"POST", "PATCH", "PUT"} and not path.endswith(
            ("/open", "/suspend", "/resume", "/close")
        ):
            assert (method, path) in BODIES, f"{method} {path}: add a body to BODIES"


@pytest.mark.parametrize("method,path", _operations())
def test_api_operations_on_another_orgs_objects_are_404(
    client: Any, orgs: Any, method: str, path: str
) -> None:
    a, b = orgs
    params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
    url = "/api/v1" + path
    for p in params:
        url = url.replace("{" + p + "}", str(PATH_IDS[p](a)))
    body = BODIES.get((method, path), lambda a: {})(a)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {b.raw_token}"}
    counts_before = _counts(a)
    response = client.generic(
        method, url, data=__import__("json").dumps(body), content_type="application/json", **headers
    )
    if (method, path) in UNAUTHENTICATED_NOTIFICATIONS:
        assert response.status_code == 400, (method, path, response.status_code)
    elif params or ((method, path) in BODIES and (method, path) not in OWN_ORG_CREATES):
        assert response.status_code == 404, (
            method,
            path,
            response.status_code,
            response.content[:200],
        )
    else:
        assert response.status_code in (200, 201), (
            method,
            path,
            response.status_code,
            response.content[:300],
        )
        text = response.content.decode()
        for secret in ("Customer alpha", "Site alpha", "DTU-alpha", "alpha-owner", f"{100:012d}"):
            assert secret not in text
    assert _counts(a) == counts_before


def _counts(a: Any) -> tuple[int, ...]:
    return (
        Site.objects.filter(organisation=a.org).count(),
        Room.objects.filter(organisation=a.org).count(),
        Customer.objects.filter(organisation=a.org, name__startswith="Customer").count(),
        Account.objects.filter(organisation=a.org).count(),
        Account.objects.filter(organisation=a.org, status="open").count(),
        Meter.objects.filter(organisation=a.org).count(),
        Meter.objects.filter(organisation=a.org, removed_on__isnull=True).count(),
        Gateway.objects.filter(organisation=a.org).count(),
        AuditEvent.objects.filter(organisation=a.org).count(),
        Tariff.objects.filter(organisation=a.org, archived=False).count(),
        TariffRevision.objects.filter(organisation=a.org).count(),
        AccountTariff.objects.filter(organisation=a.org).count(),
        JournalEntry.objects.filter(organisation=a.org).count(),
        Recharge.objects.filter(organisation=a.org).count(),
        MeterCommand.objects.filter(organisation=a.org).count(),
    )
