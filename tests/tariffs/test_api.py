"""The tariff API: create/import, edit with field-path errors, schedule, rate, export, assign."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from meterpay.apps.tariffs import selectors
from meterpay.apps.tariffs.models import AccountTariff, Tariff
from meterpay.core.tariffs import parse_tariff, rate
from tests.factories import build_org
from tests.tariffs.helpers import (
    fixture_document,
    fixture_text,
    single_price,
    urdb_with_unimported_fields,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("tapi", 910)


def call(
    client: Any, org: Any, method: str, path: str, body: Any = None, role: str = "owner"
) -> Any:
    from meterpay.apps.users.services import api_token_create

    _token, raw = api_token_create(actor="test", user=org.users[role])
    return client.generic(
        method,
        "/api/v1" + path,
        data=body if isinstance(body, str) else json.dumps(body or {}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def test_create_list_read_and_export(client: Any, org: Any) -> None:
    response = call(client, org, "POST", "/tariffs", fixture_document("cn_commercial_tou_cpp.json"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source_format"] == "meterpay" and body["warnings"] == []
    tariff_id = body["tariff"]["id"]
    assert body["tariff"]["version_starts"] == ["2024-01-01T00:00:00"]
    listed = call(client, org, "GET", "/tariffs").json()
    assert [t["id"] for t in listed["items"]] == [tariff_id]
    detail = call(client, org, "GET", f"/tariffs/{tariff_id}").json()
    assert detail["revisions"][0]["kind"] == "imported"
    exported = call(client, org, "GET", f"/tariffs/{tariff_id}/export")
    assert exported["Content-Disposition"].startswith("attachment")
    assert json.loads(exported.content) == fixture_document("cn_commercial_tou_cpp.json")


def test_urdb_import_returns_warnings_and_keeps_decimals(client: Any, org: Any) -> None:
    response = call(client, org, "POST", "/tariffs", urdb_with_unimported_fields())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source_format"] == "urdb"
    assert len(body["warnings"]) == 2
    assert body["tariff"]["revisions"][0]["warnings"] == body["warnings"]
    assert "." in json.dumps(body["tariff"]["document"])  # prices as decimal strings
    assert Tariff.objects.get(pk=body["tariff"]["id"]).utility == "electricity"


def test_document_errors_name_the_field_path(client: Any, org: Any) -> None:
    tariff_id = call(client, org, "POST", "/tariffs", single_price()).json()["tariff"]["id"]
    bad = single_price()
    bad["versions"][0]["energy"]["periods"][0]["price"] = 0.7
    response = call(client, org, "PUT", f"/tariffs/{tariff_id}/document", bad)
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "versions[0].energy.periods[0].price": ["must be a decimal string"]
    }
    good = single_price()
    good["versions"][0]["energy"]["periods"][0]["price"] = "0.70"
    response = call(client, org, "PUT", f"/tariffs/{tariff_id}/document?note=fix", good)
    assert response.status_code == 200
    assert [r["number"] for r in response.json()["revisions"]] == [2, 1]


@time_machine.travel("2026-11-23T12:00:00+08:00", tick=False)
def test_schedule_a_price_change(client: Any, org: Any) -> None:
    tariff_id = call(client, org, "POST", "/tariffs", single_price()).json()["tariff"]["id"]
    version = {"energy": {"periods": [{"name": "flat", "price": "0.80"}]}}
    response = call(
        client,
        org,
        "POST",
        f"/tariffs/{tariff_id}/versions",
        {"effective_from": "2027-01-01T00:00:00", "version": version},
    )
    assert response.status_code == 201, response.content
    assert response.json()["version_starts"][-1] == "2027-01-01T00:00:00"
    past = call(
        client,
        org,
        "POST",
        f"/tariffs/{tariff_id}/versions",
        {"effective_from": "2025-01-01T00:00:00", "version": version},
    )
    assert past.status_code == 400 and "effective_from" in past.json()["errors"]


def test_rate_answers_the_engines_bill(client: Any, org: Any) -> None:
    document = fixture_document("cn_commercial_tou_cpp.json")
    tariff_id = call(client, org, "POST", "/tariffs", document).json()["tariff"]["id"]
    intervals = selectors.sample_intervals("shop", year=2026, month=7)
    body = {
        "intervals": [
            {"start": i.start.isoformat(), "end": i.end.isoformat(), "quantity": str(i.quantity)}
            for i in intervals
        ]
    }
    response = call(client, org, "POST", f"/tariffs/{tariff_id}/rate", body)
    assert response.status_code == 200, response.content
    result = response.json()
    bill = rate(tariff=parse_tariff(document), intervals=intervals)
    assert result["total"] == str(bill.total)
    assert [line["amount"] for line in result["lines"]] == [str(line.amount) for line in bill.lines]
    assert sum(Decimal(m["total"]) for m in result["months"]) == bill.total
    bad = call(
        client,
        org,
        "POST",
        f"/tariffs/{tariff_id}/rate",
        {"intervals": [{"start": "2020-01-01T00:00", "end": "2020-01-01T01:00", "quantity": "1"}]},
    )
    assert bad.status_code == 400 and "before the tariff's first version" in bad.json()["detail"]


def test_rate_with_an_accounts_terms(client: Any, org: Any) -> None:
    document = fixture_document("cn_two_part_demand_pf.json")
    tariff_id = call(client, org, "POST", "/tariffs", document).json()["tariff"]["id"]
    interval = {
        "start": "2026-12-01T10:00",
        "end": "2026-12-01T11:00",
        "quantity": "100",
    }  # after move-in
    without = call(client, org, "POST", f"/tariffs/{tariff_id}/rate", {"intervals": [interval]})
    assert without.status_code == 400  # the overrun rule needs a contract demand
    assign = call(
        client,
        org,
        "PUT",
        f"/accounts/{org.account.pk}/tariffs",
        {
            "tariff_id": tariff_id,
            "contract_demand_kw": "80",
            "effective_from": "2026-01-01T00:00:00+08:00",
        },
    )
    assert assign.status_code == 200, assign.content
    assert assign.json()["contract_demand_kw"] == "80.00"
    with_account = call(
        client,
        org,
        "POST",
        f"/tariffs/{tariff_id}/rate",
        {"intervals": [interval], "account_id": org.account.pk},
    )
    assert with_account.status_code == 200, with_account.content
    components = {line["component"] for line in with_account.json()["lines"]}
    assert {"energy", "basic"} <= components


def test_assign_lists_and_refuses_wrong_utility_terms(client: Any, org: Any) -> None:
    tariff_id = call(
        client, org, "POST", "/tariffs", fixture_document("water_stepped.json")
    ).json()["tariff"]["id"]
    response = call(
        client, org, "PUT", f"/accounts/{org.account.pk}/tariffs", {"tariff_id": tariff_id}
    )
    assert response.status_code == 200
    assert response.json()["utility"] == "water"
    listed = call(client, org, "GET", f"/accounts/{org.account.pk}/tariffs").json()
    assert [a["tariff"]["id"] for a in listed] == [tariff_id]
    bad = call(
        client,
        org,
        "PUT",
        f"/accounts/{org.account.pk}/tariffs",
        {"tariff_id": tariff_id, "tier_thresholds": ["1"]},
    )
    assert bad.status_code == 400 and "tier_thresholds" in bad.json()["errors"]
    assert AccountTariff.objects.filter(account=org.account).count() == 1
    assert selectors.tariff_in_force(org.account, "water", timezone.now()) is not None


@pytest.mark.parametrize("body", ['{"format": "meterpay-tariff/1"}', '{"hello": "x"}', "{}"])
def test_create_refuses_what_is_not_a_tariff(client: Any, org: Any, body: str) -> None:
    response = call(client, org, "POST", "/tariffs", body)
    assert response.status_code == 400
    assert response.json()["errors"]


def test_viewer_may_read_and_rate_but_not_write(client: Any, org: Any) -> None:
    tariff_id = call(client, org, "POST", "/tariffs", single_price()).json()["tariff"]["id"]
    assert call(client, org, "GET", f"/tariffs/{tariff_id}", role="viewer").status_code == 200
    assert call(client, org, "POST", "/tariffs", single_price(), role="viewer").status_code == 403
    assert (
        call(
            client, org, "PUT", f"/tariffs/{tariff_id}/document", single_price(), role="operator"
        ).status_code
        == 403
    )
    assert (
        call(
            client, org, "POST", "/tariffs", fixture_text("water_stepped.json"), role="finance"
        ).status_code
        == 201
    )
