"""The role matrix: for every staff role and every permission-gated action, allowed exactly when
the role table says so — in the console and in the API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from meterpay.core.roles import STAFF_ROLES, Permission, Role, role_allows, role_table_markdown
from tests.factories import PASSWORD, build_org
from tests.tariffs.helpers import single_price

DOCS = Path(__file__).resolve().parents[2] / "docs" / "roles.md"


def test_docs_show_the_same_role_table_as_the_code() -> None:
    text = DOCS.read_text()
    table = re.search(r"<!-- role-table:start -->\n(.*?)\n<!-- role-table:end -->", text, re.S)
    assert table is not None
    assert table.group(1).strip() == role_table_markdown()


def test_owner_may_do_everything_and_tenant_nothing() -> None:
    assert all(role_allows(Role.OWNER, p) for p in Permission)
    assert not any(role_allows(Role.TENANT, p) for p in Permission)
    assert not role_allows("no-such-role", Permission.VIEW)


def _api(
    client: Any, org: Any, user: Any, method: str, path: str, body: dict[str, Any] | None = None
) -> int:
    from meterpay.apps.users.services import api_token_create

    _token, raw = api_token_create(actor="test", user=user)
    response = client.generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body or {}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    return int(response.status_code)


def _console(
    client: Any,
    org: Any,
    user: Any,
    method: str,
    name: str,
    data: dict[str, Any] | None = None,
    **kwargs: Any,
) -> int:
    client.force_login(user)
    url = reverse(f"console:{name}", kwargs=kwargs or None)
    response = client.get(url) if method == "GET" else client.post(url, data or {})
    client.logout()
    return int(response.status_code)


# (label, permission, how to try it, status codes that mean "allowed")
ACTIONS: list[tuple[str, Permission, Any, set[int]]] = [
    ("api list rooms", Permission.VIEW, lambda c, o, u: _api(c, o, u, "GET", "/rooms"), {200}),
    (
        "console room grid",
        Permission.VIEW,
        lambda c, o, u: _console(c, o, u, "GET", "room_grid"),
        {200},
    ),
    (
        "api create site",
        Permission.MANAGE_SITES,
        lambda c, o, u: _api(c, o, u, "POST", "/sites", {"name": f"S-{u.role}", "kind": "mall"}),
        {201},
    ),
    (
        "console add building",
        Permission.MANAGE_SITES,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "site_add",
            {"building-site": o.site.pk, "building-name": u.role},
            what="building",
        ),
        {302},
    ),
    (
        "api create customer",
        Permission.MANAGE_CUSTOMERS,
        lambda c, o, u: _api(c, o, u, "POST", "/customers", {"name": "N"}),
        {201},
    ),
    (
        "console new customer page",
        Permission.MANAGE_CUSTOMERS,
        lambda c, o, u: _console(c, o, u, "GET", "customer_create"),
        {200},
    ),
    (
        "api open account",
        Permission.MANAGE_ACCOUNTS,
        lambda c, o, u: _api(
            c,
            o,
            u,
            "POST",
            "/accounts",
            {"customer_id": o.customer.pk, "room_ids": [o.vacant_room.pk], "open": False},
        ),
        {201},
    ),
    (
        "console wizard",
        Permission.MANAGE_ACCOUNTS,
        lambda c, o, u: _console(c, o, u, "GET", "account_wizard"),
        {200},
    ),
    (
        "api create gateway",
        Permission.MANAGE_METERS,
        lambda c, o, u: _api(
            c,
            o,
            u,
            "POST",
            "/gateways",
            {
                "site_id": o.site.pk,
                "identifier": f"G-{u.role}",
                "kind": "mqtt",
                "protocol": "dlt645",
            },
        ),
        {201},
    ),
    (
        "console add meter page",
        Permission.MANAGE_METERS,
        lambda c, o, u: _console(c, o, u, "GET", "meter_create"),
        {200},
    ),
    (
        "api create tariff",
        Permission.MANAGE_TARIFFS,
        lambda c, o, u: _api(c, o, u, "POST", "/tariffs", single_price(name=f"T-{u.role}")),
        {201},
    ),
    (
        "console new tariff page",
        Permission.MANAGE_TARIFFS,
        lambda c, o, u: _console(c, o, u, "GET", "tariff_create"),
        {200},
    ),
    (
        "console imports",
        Permission.IMPORT_DATA,
        lambda c, o, u: _console(c, o, u, "GET", "import_list"),
        {200},
    ),
    (
        "console tokens",
        Permission.MANAGE_OWN_TOKENS,
        lambda c, o, u: _console(c, o, u, "GET", "token_list"),
        {200},
    ),
    (
        "console users",
        Permission.MANAGE_USERS,
        lambda c, o, u: _console(c, o, u, "GET", "user_list"),
        {200},
    ),
    (
        "console audit log",
        Permission.VIEW_AUDIT,
        lambda c, o, u: _console(c, o, u, "GET", "audit_list"),
        {200},
    ),
    (
        "api audit events",
        Permission.VIEW_AUDIT,
        lambda c, o, u: _api(c, o, u, "GET", "/audit-events"),
        {200},
    ),
]
ACTIONS += [
    (
        "console finance orders",
        Permission.VIEW_FINANCE,
        lambda c, o, u: _console(c, o, u, "GET", "finance_orders"),
        {200},
    ),
    (
        "console counter cash recharge",
        Permission.RECORD_PAYMENTS,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "finance_account",
            {"action": "recharge", "amount": "5.00", "channel": "cash"},
            account_id=o.account.pk,
        ),
        {302},
    ),
    (
        "console clear a balance discrepancy",
        Permission.RECORD_PAYMENTS,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "balance_discrepancies",
            {"discrepancy": _discrepancy(o).pk, "note": "checked"},
        ),
        {302},
    ),
    (
        "api account ledger history",
        Permission.VIEW_FINANCE,
        lambda c, o, u: _api(c, o, u, "GET", f"/accounts/{o.account.pk}/entries"),
        {200},
    ),
    (
        "api record cash recharge",
        Permission.RECORD_PAYMENTS,
        lambda c, o, u: _api_keyed(
            c, u, "POST", f"/accounts/{o.account.pk}/recharges", {"amount": "5.00"}, u.role
        ),
        {201},
    ),
]
ACTIONS += [
    (
        "console payment providers",
        Permission.VIEW_FINANCE,
        lambda c, o, u: _console(c, o, u, "GET", "payment_provider_list"),
        {200},
    ),
    (
        "console add payment provider",
        Permission.MANAGE_PAYMENT_PROVIDERS,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "payment_provider_create",
            {"kind": "forwarding", "name": f"matrix-{u.role}", "secret": "k" * 40},
        ),
        {302},
    ),
    (
        "console change balance policy",
        Permission.MANAGE_BALANCE_POLICY,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "balance_policy",
            {
                "alarm_level_1": "50.00",
                "repeat_count": "1",
                "repeat_interval_minutes": "60",
                "overdraft": "0.00",
                "restore_threshold": "0.00",
                "postpaid_due_days": "15",
                "postpaid_grace_days": "7",
            },
        ),
        {302},
    ),
    (
        "console account balance rules",
        Permission.MANAGE_BALANCE_POLICY,
        lambda c, o, u: _console(
            c, o, u, "POST", "account_balance_rules", {}, account_id=o.account.pk
        ),
        {302},
    ),
    (
        "console balance policy page",
        Permission.VIEW,
        lambda c, o, u: _console(c, o, u, "GET", "balance_policy"),
        {200},
    ),
    (
        "console notification log",
        Permission.VIEW,
        lambda c, o, u: _console(c, o, u, "GET", "notification_channel_list"),
        {200},
    ),
    (
        "console add notification channel",
        Permission.MANAGE_NOTIFICATIONS,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "notification_channel_create",
            {"kind": "email", "name": u.role, "target": "", "events": ["alarm"]},
        ),
        {302},
    ),
]
ACTIONS += [
    (
        "console billing pages",
        Permission.VIEW,
        lambda c, o, u: _console(c, o, u, "GET", "bill_run_list"),
        {200},
    ),
    (
        "console new charge item",
        Permission.MANAGE_CHARGES,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "charge_item_create",
            {
                "code": f"fee-{u.role}",
                "name": "Fee",
                "basis": "fixed",
                "unit_price": "10",
                "frequency": "monthly",
                "day_of_month": "1",
                "settlement": "bill",
                "revenue": "other_charges",
                "active": "on",
            },
        ),
        {302},
    ),
    (
        "console enter a grid reading",
        Permission.ENTER_GRID_READINGS,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "loss_group_detail",
            {"read_on": "2026-11-01", "reading": "100"},
            group_id=_loss_group(o).pk,
        ),
        {302},
    ),
    (
        "console make a bill run",
        Permission.RUN_BILLS,
        lambda c, o, u: _console(
            c,
            o,
            u,
            "POST",
            "bill_run_new",
            {"site": o.site.pk, "period_start": "2026-11-01", "period_last": "2026-11-30"},
        ),
        {302},
    ),
    (
        "console confirm a bill run",
        Permission.ISSUE_BILLS,
        lambda c, o, u: _console(
            c, o, u, "POST", "bill_run_detail", {"action": "confirm"}, run_id=_draft_run(o).pk
        ),
        {302},
    ),
    (
        "console bill branding",
        Permission.MANAGE_BILL_TEMPLATES,
        lambda c, o, u: _console(c, o, u, "POST", "bill_branding", {"phone": u.role}),
        {302},
    ),
]
# Permissions with no page or endpoint yet.
NOT_YET_EXPOSED: set[Permission] = set()


def _discrepancy(org: Any) -> Any:
    from django.utils import timezone

    from meterpay.apps.control.models import BalanceDiscrepancy

    return BalanceDiscrepancy.objects.create(
        organisation=org.org, meter=org.meter, kind="rise", detail="x", detected_at=timezone.now()
    )


def _loss_group(org: Any) -> Any:
    from meterpay.apps.billing.models import LossGroup
    from meterpay.apps.billing.sharing import loss_group_save

    return LossGroup.objects.filter(organisation=org.org).first() or loss_group_save(
        actor="test",
        organisation_id=org.org.pk,
        values={"name": "Grid", "site": org.site, "unit_price": "0.5"},
    )


def _draft_run(org: Any) -> Any:
    from datetime import date

    from meterpay.apps.billing.runs import bill_run_create

    return bill_run_create(
        actor="test",
        organisation_id=org.org.pk,
        period_start=date(2026, 10, 1),
        period_end=date(2026, 11, 1),
        site=org.site,
    )


def _api_keyed(client: Any, user: Any, method: str, path: str, body: Any, key: str) -> int:
    from meterpay.apps.users.services import api_token_create

    _token, raw = api_token_create(actor="test", user=user)
    response = client.generic(
        method,
        "/api/v1" + path,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    return int(response.status_code)


def test_every_permission_is_exercised() -> None:
    assert {p for _, p, _, _ in ACTIONS} | NOT_YET_EXPOSED == set(Permission)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [r.value for r in STAFF_ROLES])
def test_role_matrix(client: Any, role: str) -> None:
    org = build_org("matrix", 500)
    user = org.users[role]
    outcomes = {}
    for label, permission, attempt, allowed_codes in ACTIONS:
        status = attempt(client, org, user)
        expected = role_allows(role, permission)
        outcomes[label] = (status, expected)
        if expected:
            assert status in allowed_codes, f"{role} should be able to {label}: got {status}"
        else:
            assert status == 403, f"{role} must not {label}: got {status}"


@pytest.mark.django_db
def test_tenant_is_sent_to_the_portal_and_refused_by_the_api(client: Any) -> None:
    org = build_org("tenantcase", 600)
    assert client.login(username=org.tenant.username, password=PASSWORD)
    response = client.get(reverse("console:room_grid"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    client.logout()
    assert _api(client, org, org.tenant, "GET", "/rooms") == 200  # token auth works...
    assert _api(client, org, org.tenant, "GET", "/audit-events") == 403


@pytest.mark.django_db
def test_tenant_api_lists_are_empty(client: Any) -> None:
    org = build_org("tenantlists", 700)
    from meterpay.apps.users.services import api_token_create

    _t, raw = api_token_create(actor="test", user=org.tenant)
    body = client.get("/api/v1/rooms", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert body == {"items": [], "count": 0}
