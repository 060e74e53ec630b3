from __future__ import annotations

import json
from typing import Any

import pytest

from meterpay.apps.customers.models import Account
from tests.factories import build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("api", 50)


def _h(org: Any) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {org.raw_token}"}


def test_openapi_document_and_docs_are_served(client: Any) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "meterpay API"
    assert "/api/v1/accounts/{account_id}" in schema["paths"]
    assert client.get("/api/v1/docs").status_code == 200


def test_requests_without_valid_token_are_401(client: Any, org: Any) -> None:
    assert client.get("/api/v1/rooms").status_code == 401
    assert client.get("/api/v1/rooms", HTTP_AUTHORIZATION="Bearer mp_wrong").status_code == 401
    from meterpay.apps.users.services import api_token_revoke

    api_token_revoke(actor="t", token=org.token)
    assert client.get("/api/v1/rooms", **_h(org)).status_code == 401


def test_me(client: Any, org: Any) -> None:
    me = client.get("/api/v1/me", **_h(org)).json()
    assert (
        me["username"] == "api-owner"
        and me["role"] == "owner"
        and "manage_sites" in me["permissions"]
    )


def test_accounts_list_is_paged_and_filterable(client: Any, org: Any) -> None:
    body = client.get("/api/v1/accounts", **_h(org)).json()
    assert body["count"] == 1
    item = body["items"][0]
    assert (
        item["number"] == "A000001"
        and item["status"] == "open"
        and item["billing_mode"] == "prepaid"
    )
    assert item["customer"] == {"id": org.customer.pk, "name": "Customer api"}
    assert item["room_ids"] == [org.room.pk] and item["meter_ids"] == [org.meter.pk]
    assert client.get("/api/v1/accounts?status=closed", **_h(org)).json()["count"] == 0
    assert client.get("/api/v1/accounts?q=Customer", **_h(org)).json()["count"] == 1


def test_account_open_and_transitions_over_the_api(client: Any, org: Any) -> None:
    response = client.post(
        "/api/v1/accounts",
        json.dumps(
            {
                "customer_id": org.customer.pk,
                "room_ids": [org.vacant_room.pk],
                "meter_ids": [org.free_meter.pk],
                "open": False,
                "billing_mode": "postpaid",
            }
        ),
        content_type="application/json",
        **_h(org),
    )
    assert response.status_code == 201, response.content
    account = response.json()
    assert account["status"] == "pre-set" and account["billing_mode"] == "postpaid"
    opened = client.post(f"/api/v1/accounts/{account['id']}/open", **_h(org)).json()
    assert opened["status"] == "open"
    again = client.post(f"/api/v1/accounts/{account['id']}/open", **_h(org))
    assert again.status_code == 400 and "pre-set" in again.json()["detail"]
    closed = client.post(f"/api/v1/accounts/{account['id']}/close", **_h(org)).json()
    assert closed["status"] == "closed" and closed["meter_ids"] == []
    assert Account.objects.get(pk=account["id"]).closed_at is not None


def test_validation_errors_name_the_field(client: Any, org: Any) -> None:
    response = client.post(
        "/api/v1/meters",
        json.dumps({"kind": "electricity_1p", "protocol": "dlt645", "address": "12"}),
        content_type="application/json",
        **_h(org),
    )
    assert response.status_code == 400
    assert "address" in response.json()["errors"]
    response = client.post(
        "/api/v1/rooms",
        json.dumps({"floor_id": org.floor.pk, "number": "101", "kind": "shop"}),
        content_type="application/json",
        **_h(org),
    )
    assert response.status_code == 400  # duplicate room number on the floor


def test_rooms_filters_and_status(client: Any, org: Any) -> None:
    rooms = client.get("/api/v1/rooms?status=vacant", **_h(org)).json()
    assert [r["number"] for r in rooms["items"]] == ["102"]
    room = client.get(f"/api/v1/rooms/{org.room.pk}", **_h(org)).json()
    assert room["status"] == "open" and room["area_m2"] == "50.00" and room["building"] == "B1"
    patched = client.patch(
        f"/api/v1/rooms/{org.room.pk}",
        json.dumps({"area_m2": "55.5"}),
        content_type="application/json",
        **_h(org),
    ).json()
    assert patched["area_m2"] == "55.50"


def test_meter_replace_over_the_api(client: Any, org: Any) -> None:
    response = client.post(
        f"/api/v1/meters/{org.meter.pk}/replace",
        json.dumps({"address": "000000777777", "on": "2026-07-01"}),
        content_type="application/json",
        **_h(org),
    )
    assert response.status_code == 201
    new = response.json()
    assert new["account_id"] == org.account.pk and new["installed_on"] == "2026-07-01"
    old = client.get(f"/api/v1/meters/{org.meter.pk}", **_h(org)).json()
    assert old["removed_on"] == "2026-07-01" and old["replaced_by_id"] == new["id"]


def test_session_auth_needs_csrf_for_writes(org: Any) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(org.users["owner"])
    assert client.get("/api/v1/rooms").status_code == 200
    response = client.post(
        "/api/v1/customers", json.dumps({"name": "X"}), content_type="application/json"
    )
    assert response.status_code in (401, 403)


def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "reachable"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/accounts?customer=99999999999999999999999",
        "/api/v1/rooms?site=99999999999999999999999",
        "/api/v1/meters?account=99999999999999999999999",
        "/api/v1/rooms/99999999999999999999999",
    ],
)
def test_numbers_beyond_the_database_range_are_refused_not_500(
    client: Any, org: Any, url: str
) -> None:
    response = client.get(url, **_h(org))
    # No object has such an id: an empty list, 404 or 422, depending on the database; never 500.
    assert response.status_code in (200, 404, 422)
    if response.status_code == 200:
        assert response.json()["count"] == 0
