"""GET /api/v1/rooms/{room_id}/state: a room's whole state in one call, organisation-isolated
and role-checked before anything else."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from meterpay.apps.control.services import meter_command_request
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.users.services import api_token_create
from tests.factories import build_org
from tests.web.test_room_cockpit import cockpit  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def _get(client: Any, user: Any, path: str) -> Any:
    _token, raw = api_token_create(actor="t", user=user)
    return client.get("/api/v1" + path, HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_room_state_in_one_call(client: Any, cockpit: Any) -> None:  # noqa: F811
    org = cockpit
    meter_command_request(
        actor="t", meter=org.meter, kind="relay_trip", requested_by="api", reason="test"
    )
    response = _get(client, org.users["viewer"], f"/rooms/{org.room.pk}/state")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["room"]["number"] == "101" and body["room"]["status"] == "open"
    assert body["fee_status"] == "normal" and body["fee_status_label"] == "Normal"
    account = body["account"]
    assert account["number"] == org.account.number and account["billing_mode"] == "prepaid"
    # the cost depends on the time-of-use period the test runs in: compare with the ledger
    balance = Wallet.objects.get(account=org.account).balance_minor
    spent = Decimal(10000 - balance) / 100
    assert spent > 0
    assert account["balance"] == f"{Decimal(balance) / 100:.2f}" and account["owed"] == "0.00"
    assert account["alarm_levels"] == ["50.00", "20.00", "5.00"]
    assert account["alarm_levels_own"] is False and account["supply"] == "on"
    assert [t["name"] for t in account["tariffs"]] == ["Cockpit time of use"]
    assert [m["utility"] for m in body["meters"]] == ["electricity", "water"]
    electricity, water = body["meters"]
    assert electricity["online"] is True and electricity["supply"] == "pending"
    assert electricity["latest_reading"]["total"] == "1012.5000"
    assert electricity["latest_reading"]["peak"] == "405.0000"
    assert electricity["latest_reading"]["unit"] == "kWh"
    assert water["latest_reading"]["unit"] == "m³" and water["latest_reading"]["sharp"] is None
    assert [c["kind"] for c in body["pending_commands"]] == ["relay_trip"]
    assert electricity["pending_commands"][0]["status"] == "pending"
    assert body["supply"] == "pending" and body["link"] == "online"
    today = body["today"]
    assert today["electricity_kwh"] == "12.5000" and today["water_m3"] == "1.2500"
    assert today["cost"] == f"{spent:.2f}"
    assert sum(Decimal(line["amount"]) for line in today["lines"]) == spent
    assert body["month"]["cost"] == f"{spent:.2f}"
    assert body["month"]["start"] == str(timezone.localdate().replace(day=1))
    assert [a["status"] for a in body["accounts"]] == ["open"]


def test_vacant_room_state(client: Any, cockpit: Any) -> None:  # noqa: F811
    body = _get(client, cockpit.users["operator"], f"/rooms/{cockpit.vacant_room.pk}/state").json()
    assert body["account"] is None and body["fee_status"] is None
    assert body["today"]["cost"] is None and body["accounts"] == []
    assert body["room"]["status"] == "vacant"


def test_room_state_is_isolated_and_role_checked(client: Any, cockpit: Any) -> None:  # noqa: F811
    other = build_org("elsewhere", 980)
    response = _get(client, other.users["owner"], f"/rooms/{cockpit.room.pk}/state")
    assert response.status_code == 404
    # a tenant is refused before the room is even looked up (its own room too)
    assert _get(client, cockpit.tenant, f"/rooms/{cockpit.room.pk}/state").status_code == 403
    assert _get(client, cockpit.tenant, "/rooms/999999999/state").status_code == 403
    assert _get(client, cockpit.tenant, "/rooms/not-a-number/state").status_code == 403
    for role in ("owner", "operator", "finance", "viewer"):
        assert (
            _get(client, cockpit.users[role], f"/rooms/{cockpit.room.pk}/state").status_code == 200
        )
    assert client.get(f"/api/v1/rooms/{cockpit.room.pk}/state").status_code == 401


def test_room_state_in_the_openapi_document(client: Any) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/rooms/{room_id}/state"]["get"]
    assert operation["tags"] == ["room monitoring"]
