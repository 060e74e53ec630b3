"""The month end over the REST API: the mall of tests/billing/test_month_end.py set up, billed,
checked, issued, paid, reminded, credited and re-issued through /api/v1; roles checked before
the body is read; another organisation's objects answer 404 on every path with an id; payments
replay with their Idempotency-Key; bad inputs answer 422 and write nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from meterpay.api.v1 import api
from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.billing.bills import bill_store
from meterpay.apps.billing.charges import charge_item_save
from meterpay.apps.billing.models import (
    AllocationGroup,
    AllocationMember,
    Bill,
    BillRun,
    ChargeItem,
    ChargeSubscription,
    GridReading,
    LossGroup,
)
from meterpay.apps.billing.runs import bill_run_confirm, bill_run_issue
from meterpay.apps.billing.sharing import allocation_group_save, loss_group_save
from meterpay.apps.ledger.models import JournalEntry
from meterpay.apps.ledger.selectors import ledger_mismatches
from meterpay.apps.payments.models import Recharge
from meterpay.apps.supply.selectors import policy_row
from meterpay.apps.users.services import api_token_create
from tests.billing.test_month_end import Mall
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NOV, DEC = "2026-11-01", "2026-12-01"
PREFIXES = ("/charge-items", "/allocation-groups", "/loss-groups", "/bill-runs", "/bills")
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


# --- objects of an organisation, for the paths with ids ----------------------------------------


def a_charge_item(a: Any) -> ChargeItem:
    found = ChargeItem.objects.filter(organisation=a.org, code="iso").first()
    return found or charge_item_save(
        actor="test",
        organisation_id=a.org.pk,
        values={"code": "iso", "name": "Iso fee", "basis": "fixed", "unit_price": "1"},
    )


def a_subscribed_account(a: Any) -> int:
    """The organisation's account, subscribed to :func:`a_charge_item`."""
    ChargeSubscription.objects.get_or_create(
        organisation=a.org, item=a_charge_item(a), account=a.account
    )
    return int(a.account.pk)


def a_allocation_group(a: Any) -> AllocationGroup:
    found = AllocationGroup.objects.filter(organisation=a.org, name="Iso lighting").first()
    return found or allocation_group_save(
        actor="test",
        organisation_id=a.org.pk,
        values={"name": "Iso lighting", "site": a.site, "master_meter": a.free_meter},
    )


def a_loss_group(a: Any) -> LossGroup:
    found = LossGroup.objects.filter(organisation=a.org, name="Iso grid").first()
    return found or loss_group_save(
        actor="test",
        organisation_id=a.org.pk,
        values={"name": "Iso grid", "site": a.site, "unit_price": "1"},
    )


def a_run(a: Any) -> BillRun:
    run, _created = BillRun.objects.get_or_create(
        organisation=a.org,
        number="R-ISO",
        defaults={
            "site": a.site,
            "period_start": date(2026, 11, 1),
            "period_end": date(2026, 12, 1),
            "due_on": date(2026, 12, 5),
        },
    )
    return run


def a_bill(a: Any) -> Bill:
    found = Bill.objects.filter(organisation=a.org, number="B-ISO").first()
    return found or bill_store(
        account=a.account,
        kind=Bill.Kind.STATEMENT,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 12, 1),
        due_on=date(2026, 12, 5),
        lines=[],
        number="B-ISO",
        run_id=a_run(a).pk,
    )


#: Path ids of the month-end operations, from organisation ``a``.
PATH_IDS: dict[str, Callable[[Any], Any]] = {
    "charge_item_id": lambda a: a_charge_item(a).pk,
    "account_id": a_subscribed_account,
    "allocation_group_id": lambda a: a_allocation_group(a).pk,
    "loss_group_id": lambda a: a_loss_group(a).pk,
    "run_id": lambda a: a_run(a).pk,
    "bill_id": lambda a: a_bill(a).pk,
}

#: A valid body of every month-end write (naming organisation ``a``'s objects).
BODIES: dict[tuple[str, str], Callable[[Any], Any]] = {
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
        "read_on": DEC,
        "reading": "1",
    },
    ("POST", "/bill-runs"): lambda a: {
        "site_id": a.site.pk,
        "period_start": NOV,
        "period_end": DEC,
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


def billing_operations() -> list[tuple[str, str]]:
    schema = api.get_openapi_schema()
    return sorted(
        (method.upper(), path.removeprefix("/api/v1"))
        for path, methods in schema["paths"].items()
        for method in methods
        if path.removeprefix("/api/v1").startswith(PREFIXES)
    )


def _params(path: str) -> list[str]:
    return [p.strip("{}") for p in path.split("/") if p.startswith("{")]


def _url(path: str, a: Any) -> str:
    for p in _params(path):
        path = path.replace("{" + p + "}", str(PATH_IDS[p](a)))
    return path


# --- a small client ---------------------------------------------------------------------------


class Api:
    def __init__(self, client: Any, token: str | None = None) -> None:
        self.client = client
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get("/api/v1" + path, params, **self.auth)

    def send(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        headers = dict(self.auth)
        if key is not None:
            headers["HTTP_IDEMPOTENCY_KEY"] = key
        return self.client.generic(
            method,
            "/api/v1" + path,
            data=json.dumps({} if body is None else body),
            content_type="application/json",
            **headers,
        )

    def post(self, path: str, body: Any = None, key: str | None = None) -> Any:
        return self.send("POST", path, body, key)

    def patch(self, path: str, body: Any) -> Any:
        return self.send("PATCH", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.send("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.send("DELETE", path)


def token(user: Any) -> str:
    return api_token_create(actor="test", user=user)[1]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()


def floats(value: Any) -> list[Any]:
    """Every JSON number with a fraction in ``value`` (money must never be one)."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in floats(v)]
    return []


@pytest.fixture
def mall(org: Any) -> Mall:
    return Mall(org)


@pytest.fixture
def orgs(make_org: Any) -> tuple[Any, Any]:
    return make_org("alpha", 100), make_org("bravo", 200)


# --- the month end, through the API -------------------------------------------------------------


def test_a_month_end_through_the_api(client: Any, mall: Mall) -> None:
    owner = Api(client, mall.org.raw_token)
    a, b, site = mall.shop_a, mall.shop_b, mall.org.site

    # charge items and the accounts they apply to
    items = ok(owner.get("/charge-items"))
    assert [i["code"] for i in items["items"]] == ["property", "rent"]
    rent = items["items"][1]
    assert (rent["basis"], rent["unit_price"], rent["subscriptions"]) == (
        "per_area",
        "60.000000",
        2,
    )
    cleaning = ok(
        owner.post(
            "/charge-items",
            {"code": "cleaning", "name": "Cleaning", "basis": "fixed", "unit_price": "20"},
        ),
        201,
    )
    assert (cleaning["unit_price"], cleaning["settlement"], cleaning["utility"]) == (
        "20.000000",
        "bill",
        None,
    )
    item = f"/charge-items/{cleaning['id']}"
    changed = ok(owner.patch(item, {"name": "Cleaning service", "unit_price": "25.50"}))
    assert (changed["name"], changed["unit_price"], changed["code"]) == (
        "Cleaning service",
        "25.500000",
        "cleaning",
    )
    assert ok(owner.get(item))["name"] == "Cleaning service"
    added = ok(owner.post(f"{item}/subscriptions", {"account_ids": [a.pk, b.pk, b.pk]}), 201)
    assert added == {"added": 2, "subscriptions": 2}
    again = ok(owner.post(f"{item}/subscriptions", {"account_ids": [b.pk]}), 201)
    assert again == {"added": 0, "subscriptions": 2}
    subscriptions = ok(owner.get(f"{item}/subscriptions"))
    assert subscriptions["count"] == 2
    assert {s["account_id"] for s in subscriptions["items"]} == {a.pk, b.pk}
    assert owner.delete(f"{item}/subscriptions/{a.pk}").status_code == 204
    assert owner.delete(f"{item}/subscriptions/{a.pk}").status_code == 404
    assert ok(owner.get(item))["subscriptions"] == 1

    # the public-area group
    groups = ok(owner.get("/allocation-groups"))
    assert groups["count"] == 1
    group = groups["items"][0]
    assert group["rule"] == "area" and group["master_meter_id"] == mall.master.pk
    assert [m["account_id"] for m in group["members"]] == [a.pk, b.pk]
    path = f"/allocation-groups/{group['id']}"
    assert ok(owner.patch(path, {"name": "Mall lighting and lifts"}))["rule"] == "area"
    members = ok(
        owner.put(
            f"{path}/members",
            {"members": [{"account_id": a.pk}, {"account_id": b.pk, "ratio": "1.5"}]},
        )
    )["members"]
    assert [(m["account_id"], m["ratio"]) for m in members] == [(a.pk, None), (b.pk, "1.5000")]
    car_park = ok(
        owner.post(
            "/allocation-groups",
            {
                "name": "Car park",
                "site_id": site.pk,
                "master_meter_id": mall.master.pk,
                "rule": "equal",
                "active": False,
            },
        ),
        201,
    )
    assert car_park["members"] == [] and car_park["tariff_id"] is None
    assert ok(owner.get(f"/allocation-groups/{car_park['id']}"))["name"] == "Car park"

    # the line-loss group and its grid readings
    [loss] = ok(owner.get("/loss-groups"))["items"]
    assert (loss["unit_price"], loss["rule"], loss["meter_ids"]) == ("0.800000", "usage", [])
    loss_path = f"/loss-groups/{loss['id']}"
    assert ok(owner.patch(loss_path, {"grid_meter_number": "GRID-7"}))["grid_meter_number"] == (
        "GRID-7"
    )
    readings = ok(owner.get(f"{loss_path}/readings"))["items"]
    assert [(r["read_on"], r["reading"]) for r in readings] == [
        (DEC, "10600.0000"),
        (NOV, "10000.0000"),
    ]
    entered = ok(
        owner.post(
            f"{loss_path}/readings",
            {"read_on": DEC, "reading": "10600.00", "notes": "checked on site"},
        ),
        201,
    )
    assert (entered["reading"], entered["notes"], entered["entered_by"]) == (
        "10600.0000",
        "checked on site",
        "alpha-owner",
    )
    assert GridReading.objects.count() == 2  # the day's reading replaced
    water = ok(
        owner.post(
            "/loss-groups",
            {
                "name": "Water grid",
                "site_id": site.pk,
                "utility": "water",
                "unit_price": "3.5",
                "meter_ids": [mall.master.pk],
                "active": False,
            },
        ),
        201,
    )
    assert ok(owner.get(f"/loss-groups/{water['id']}"))["meter_ids"] == [mall.master.pk]

    # the run: public 81.60 shared 50:30 by area, loss 24.00 shared 300:150 by usage
    run = ok(
        owner.post(
            "/bill-runs",
            {"site_id": site.pk, "period_start": NOV, "period_end": DEC, "due_on": "2026-12-05"},
        ),
        201,
    )
    assert floats(run) == []
    a_total = 20400 + 300000 + 30000 + 5100 + 1600
    b_total = 10200 + 180000 + 30000 + 3060 + 800 + 2550
    assert (run["status"], run["bills"], run["period_end"], run["due_on"]) == (
        "draft",
        2,
        DEC,
        "2026-12-05",
    )
    assert (run["total"], run["due"], run["currency"]) == (
        f"{Decimal(a_total + b_total) / 100:.2f}",
        f"{Decimal(306700 + b_total) / 100:.2f}",
        "CNY",
    )
    [public] = run["public_shares"]
    assert (public["group"], public["quantity"], public["unit"], public["amount"]) == (
        "Mall lighting and lifts",
        "120.0000",
        "kWh",
        "81.60",
    )
    assert [m["amount"] for m in public["members"]] == ["51.00", "30.60"]
    [line_loss] = run["line_losses"]
    assert (
        line_loss["readings"],
        line_loss["grid"],
        line_loss["metered"],
        line_loss["loss"],
        line_loss["loss_rate"],
        line_loss["amount"],
        line_loss["negative"],
    ) == (["10000.0000", "10600.0000"], "600.0000", "570.0000", "30.0000", "0.0500", "24.00", False)
    assert [(x["amount"], x["billed"]) for x in line_loss["lines"]] == [
        ("16.00", True),
        ("8.00", True),
    ]
    run_path = f"/bill-runs/{run['id']}"
    assert ok(owner.get(run_path)) == run

    bills = ok(owner.get("/bills", run=run["id"]))
    assert bills["count"] == 2
    by_account = {x["account"]["id"]: x for x in bills["items"]}
    assert by_account[a.pk]["total"] == f"{Decimal(a_total) / 100:.2f}"
    assert by_account[a.pk]["due"] == "3067.00" and by_account[a.pk]["settles"] == "receivable"
    assert by_account[b.pk]["review"]["flags"] == ["no_previous"]
    bill_a = ok(owner.get(f"/bills/{by_account[a.pk]['id']}"))
    assert floats(bill_a) == []
    rent_line = next(x for x in bill_a["lines"] if x["label"].startswith("Rent"))
    assert (rent_line["quantity"], rent_line["unit_price"], rent_line["amount"]) == (
        "50.0000",
        "60.000000",
        "3000.00",
    )
    assert {m["meter_id"] for m in bill_a["readings"]} == {mall.org.meter.pk}
    bill_b = ok(owner.get(f"/bills/{by_account[b.pk]['id']}"))
    cleaning_line = next(x for x in bill_b["lines"] if x["label"].startswith("Cleaning"))
    assert (cleaning_line["quantity"], cleaning_line["unit_price"], cleaning_line["amount"]) == (
        "1.0000",
        "25.500000",
        "25.50",
    )

    # remake, confirm, back to draft, confirm, issue
    assert ok(owner.post(f"{run_path}/remake"))["total"] == run["total"]
    assert ok(owner.post(f"{run_path}/confirm"))["status"] == "confirmed"
    twice = owner.post(f"{run_path}/confirm")
    assert twice.status_code == 400 and "status" in twice.json()["errors"]
    assert ok(owner.post(f"{run_path}/back-to-draft"))["status"] == "draft"
    assert ok(owner.post(f"{run_path}/confirm"))["status"] == "confirmed"
    issued = ok(owner.post(f"{run_path}/issue"))
    assert issued["status"] == "issued" and issued["unpaid"] == issued["due"]
    # a remake replaced the drafts: the issued bills are new ones
    issued_bills = ok(owner.get("/bills", status="issued"))["items"]
    assert {x["run_id"] for x in issued_bills} == {run["id"]}
    by_account = {x["account"]["id"]: x for x in issued_bills}
    bill_a, bill_b = by_account[a.pk], by_account[b.pk]
    assert (bill_a["total"], bill_b["total"]) == (
        f"{Decimal(a_total) / 100:.2f}",
        f"{Decimal(b_total) / 100:.2f}",
    )
    listed = owner.get("/bill-runs", status="issued", period="2026-11", site=site.pk)
    assert [r["id"] for r in ok(listed)["items"]] == [run["id"]]
    assert ok(owner.get("/bill-runs", period="2026-10"))["count"] == 0

    # payments: a cash part of B's bill, replayed with its key
    pay_b = f"/bills/{bill_b['id']}/pay"
    paid = ok(owner.post(pay_b, {"amount": "1000.00", "channel": "cash"}, key="counter-1"))
    assert (paid["status"], paid["unpaid"]) == ("issued", f"{Decimal(b_total - 100000) / 100:.2f}")
    assert ok(owner.post(pay_b, {"amount": "1000.00", "channel": "cash"}, key="counter-1")) == paid
    conflict = owner.post(pay_b, {"amount": "999.00", "channel": "cash"}, key="counter-1")
    assert conflict.status_code == 409 and "Idempotency-Key" in conflict.json()["errors"]

    # overdue and arrears after the due date
    with time_machine.travel("2026-12-20T10:00:00+08:00", tick=False):
        overdue = ok(owner.get("/bills", overdue="true"))
        assert {x["id"] for x in overdue["items"]} == {bill_a["id"], bill_b["id"]}
        assert all(x["overdue"] for x in overdue["items"])
        arrears = ok(owner.get("/bills/arrears"))
    assert [(x["bill_id"], x["days_overdue"], x["unpaid"]) for x in arrears["items"]] == [
        (bill_a["id"], 15, "3067.00"),
        (bill_b["id"], 15, paid["unpaid"]),
    ]
    assert arrears["items"][0]["account"] == {
        "id": a.pk,
        "number": a.number,
        "customer": "Customer alpha",
    }
    rest = {"amount": paid["unpaid"], "channel": "bank_transfer", "reference": "TX-88"}
    settled = ok(owner.post(pay_b, rest, key="transfer-1"))
    assert (settled["status"], settled["unpaid"]) == ("paid", "0.00")
    assert ok(owner.get("/bills/arrears"))["count"] == 1

    # A's bill corrected: credited and re-issued with a discount, then credited
    replacement = ok(
        owner.post(
            f"/bills/{bill_a['id']}/reissue",
            {
                "reason": "rent reduced for works",
                "adjustments": [{"label": "Works discount", "amount": "-500.00"}],
            },
        ),
        201,
    )
    assert (replacement["status"], replacement["replaces_id"], replacement["total"]) == (
        "draft",
        bill_a["id"],
        f"{Decimal(a_total - 50000) / 100:.2f}",
    )
    assert replacement["lines"][-1]["section"] == "adjustment"
    credited = ok(owner.get(f"/bills/{bill_a['id']}"))
    assert credited["status"] == "credited" and credited["unpaid"] == "0.00"
    assert credited["replaced_by_ids"] == [replacement["id"]]
    assert len(credited["credit_note_ids"]) == 1
    again_path = f"/bills/{replacement['id']}"
    assert ok(owner.post(f"{again_path}/confirm"))["status"] == "confirmed"
    reissued = ok(owner.post(f"{again_path}/issue"))
    assert (reissued["status"], reissued["unpaid"]) == ("issued", "2567.00")
    note = ok(owner.post(f"{again_path}/credit", {"reason": "tenant left"}), 201)
    assert (note["kind"], note["credits_id"], note["status"]) == (
        "credit_note",
        replacement["id"],
        "issued",
    )
    assert note["total"] == f"{Decimal(-(300000 + 30000 + 5100 + 1600 - 50000)) / 100:.2f}"
    assert owner.post(f"{again_path}/credit", {"reason": "again"}).status_code == 400

    # the printed bill
    pdf = owner.get(f"/bills/{bill_b['id']}/pdf", language="en")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")

    # a second run of the period bills B no more; A, whose bills were all credited, again
    rerun = ok(
        owner.post("/bill-runs", {"site_id": site.pk, "period_start": NOV, "period_end": DEC}),
        201,
    )
    due_days = policy_row(mall.org.org.pk).postpaid_due_days
    assert rerun["bills"] == 1
    assert rerun["due_on"] == str(date(2026, 12, 1) + timedelta(days=due_days))  # by default
    [rebilled] = ok(owner.get("/bills", run=rerun["id"]))["items"]
    assert rebilled["account"]["id"] == a.pk
    assert ok(owner.post(f"/bill-runs/{rerun['id']}/discard"))["status"] == "void"
    assert ok(owner.get(f"/bills/{rebilled['id']}"))["status"] == "void"
    assert ok(owner.get("/bill-runs", status="void"))["count"] == 1
    assert ledger_mismatches() == []


# --- idempotent payments --------------------------------------------------------------------


def test_payments_replay_with_their_key_and_refuse_other_content(client: Any, mall: Mall) -> None:
    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    bill_run_issue(actor="t", run=run)
    owner = Api(client, mall.org.raw_token)
    request_a = run.bills.get(account=mall.shop_a)  # a payment request (receivable)
    bill_b = run.bills.get(account=mall.shop_b)  # a postpaid bill (wallet)
    pay_a, pay_b = f"/bills/{request_a.pk}/pay", f"/bills/{bill_b.pk}/pay"
    body = {"amount": "100.00", "channel": "cash"}

    first = ok(owner.post(pay_a, body, key="k-1"))
    assert first["unpaid"] == "2967.00"
    assert ok(owner.post(pay_a, body, key="k-1")) == first
    payments = JournalEntry.objects.filter(kind="bill_payment")
    assert payments.count() == 1
    for other in (
        {"amount": "100.01", "channel": "cash"},
        {"amount": "100.00", "channel": "bank_transfer"},
    ):
        conflict = owner.post(pay_a, other, key="k-1")
        assert conflict.status_code == 409, (other, conflict.content)
    assert owner.post(pay_b, body, key="k-1").status_code == 409  # the key paid A's request
    assert payments.count() == 1 and Recharge.objects.count() == 0

    paid_b = ok(owner.post(pay_b, body, key="k-2"))
    assert ok(owner.post(pay_b, body, key="k-2")) == paid_b
    assert Recharge.objects.filter(idempotency_key="k-2").count() == 1
    assert owner.post(pay_b, {"amount": "5.00", "channel": "cash"}, key="k-2").status_code == 409
    assert owner.post(pay_a, body, key="k-2").status_code == 409  # the key paid B's bill
    assert ok(owner.get(pay_a.removesuffix("/pay")))["unpaid"] == "2967.00"

    missing = owner.post(pay_a, body)
    assert missing.status_code == 422 and "Idempotency-Key" in missing.json()["errors"]
    draft = ok(
        owner.post(
            "/bill-runs",
            {"account_ids": [mall.shop_a.pk], "period_start": DEC, "period_end": "2027-01-01"},
        ),
        201,
    )
    [draft_bill] = ok(owner.get("/bills", run=draft["id"]))["items"]
    refused = owner.post(f"/bills/{draft_bill['id']}/pay", body, key="k-3")
    assert refused.status_code == 400 and "bill" in refused.json()["errors"]
    assert ledger_mismatches() == []


# --- bad input answers 422 and writes nothing -------------------------------------------------


def test_bad_inputs_answer_422_and_write_nothing(client: Any, mall: Mall) -> None:
    owner = Api(client, mall.org.raw_token)
    readings = f"/loss-groups/{mall.loss.pk}/readings"
    below = owner.post(readings, {"read_on": "2026-12-15", "reading": "10500"})
    assert below.status_code == 422
    [message] = below.json()["errors"]["reading"]
    assert message == "the grid reading 10500 is below the previous one 10600.0000 (2026-12-01)"
    assert message in below.json()["detail"]
    for reading in ("10,5", "-3", "1e3", "NaN", 10600.5):
        assert owner.post(readings, {"read_on": DEC, "reading": reading}).status_code == 422
    assert GridReading.objects.count() == 2

    members = f"/allocation-groups/{mall.group.pk}/members"
    twice = owner.put(members, {"members": [{"account_id": mall.shop_a.pk}] * 2})
    assert twice.status_code == 422 and "members" in twice.json()["errors"]
    assert AllocationMember.objects.filter(group=mall.group).count() == 2
    ok(owner.put(members, {"members": []}))
    mall.shop_a.rooms.update(area_m2=Decimal("0"))
    audit = AuditEvent.objects.count()
    body = {"site_id": mall.org.site.pk, "period_start": NOV, "period_end": DEC}
    refused = owner.post("/bill-runs", body)
    assert refused.status_code == 422, refused.content
    problems = refused.json()["errors"]["__all__"]
    assert len(problems) == 2
    assert any("Mall lighting" in p and "no members" in p for p in problems)
    assert any(mall.shop_a.number in p and "area" in p for p in problems)
    assert BillRun.objects.count() == 0 and Bill.objects.count() == 0
    assert AuditEvent.objects.count() == audit

    backwards = owner.post("/bill-runs", {**body, "period_end": NOV})
    assert backwards.status_code == 422 and "period_end" in backwards.json()["errors"]
    for price in ("-1", "abc", "1.1234567", 12.5):
        item = {"code": "x", "name": "X", "basis": "fixed", "unit_price": price}
        assert owner.post("/charge-items", item).status_code == 422, price
    per_unit = {"code": "x", "name": "X", "basis": "per_unit", "unit_price": "1"}
    refused = owner.post("/charge-items", per_unit)
    assert refused.status_code == 422 and "utility" in refused.json()["errors"]
    duplicate = owner.post("/charge-items", {**per_unit, "code": "rent", "basis": "fixed"})
    assert duplicate.status_code == 422 and "code" in duplicate.json()["errors"]
    assert ChargeItem.objects.count() == 2


# --- roles: checked before the body is read -----------------------------------------------------


def test_a_write_the_role_does_not_allow_is_403_whatever_the_body(client: Any, org: Any) -> None:
    viewer = Api(client, token(org.users["viewer"]))
    tenant = Api(client, token(org.tenant))
    operations = billing_operations()
    assert len(operations) >= 30
    for method, path in operations:
        url = _url(path, org)
        if method in WRITES:
            # a body that matches no schema: the role is refused first
            response = viewer.send(method, url, {"nonsense": [1.5]})
            assert response.status_code == 403, (method, path, response.content[:200])
        response = tenant.send(method, url, BODIES.get((method, path), lambda a: {})(org))
        assert response.status_code == 403, (method, path, response.content[:200])
    # a viewer reads everything of the organisation
    viewer_reads = [op for op in operations if op[0] == "GET" and not op[1].endswith("/pdf")]
    for method, path in viewer_reads:
        assert viewer.get(_url(path, org)).status_code == 200, path
    # and a console session holds the same role
    assert client.login(username=org.users["viewer"].username, password=PASSWORD)
    assert Api(client).post("/charge-items", {"x": 1}).status_code == 403
    assert ChargeItem.objects.filter(organisation=org.org).count() == 1  # a_charge_item only


def test_each_step_needs_its_permission(client: Any, org: Any) -> None:
    operator = Api(client, token(org.users["operator"]))  # runs bills and enters readings
    finance = Api(client, token(org.users["finance"]))
    item = ChargeItem.objects.count()
    assert operator.post("/charge-items", BODIES[("POST", "/charge-items")](org)).status_code == 403
    assert ChargeItem.objects.count() == item
    readings = f"/loss-groups/{a_loss_group(org).pk}/readings"
    ok(operator.post(readings, {"read_on": NOV, "reading": "100"}), 201)
    run = ok(
        operator.post(
            "/bill-runs", {"site_id": org.site.pk, "period_start": NOV, "period_end": DEC}
        ),
        201,
    )
    assert operator.post(f"/bill-runs/{run['id']}/confirm").status_code == 403
    ok(finance.post(f"/bill-runs/{run['id']}/confirm"))
    # discarding a confirmed run is for who may issue it
    assert operator.post(f"/bill-runs/{run['id']}/discard").status_code == 403
    assert BillRun.objects.get(pk=run["id"]).status == "confirmed"
    ok(finance.post(f"/bill-runs/{run['id']}/back-to-draft"))
    assert ok(operator.post(f"/bill-runs/{run['id']}/discard"))["status"] == "void"
    bill = a_bill(org)
    pay = operator.post(f"/bills/{bill.pk}/pay", {"amount": "1.00"}, key="k")
    assert pay.status_code == 403
    assert finance.post(f"/bills/{bill.pk}/credit", {"reason": "x"}).status_code == 400


# --- another organisation's objects -------------------------------------------------------------


def _state(a: Any) -> tuple[Any, ...]:
    return (
        list(ChargeItem.objects.filter(organisation=a.org).values_list("name", "unit_price_micro")),
        ChargeSubscription.objects.filter(organisation=a.org).count(),
        list(AllocationGroup.objects.filter(organisation=a.org).values_list("name", "rule")),
        list(AllocationMember.objects.filter(organisation=a.org).values_list("account", "ratio")),
        list(LossGroup.objects.filter(organisation=a.org).values_list("name", "unit_price_micro")),
        GridReading.objects.filter(organisation=a.org).count(),
        list(BillRun.objects.filter(organisation=a.org).values_list("number", "status")),
        list(Bill.objects.filter(organisation=a.org).values_list("number", "status")),
        JournalEntry.objects.filter(organisation=a.org).count(),
        Recharge.objects.filter(organisation=a.org).count(),
        AuditEvent.objects.filter(organisation=a.org).count(),
    )


def test_another_organisations_objects_are_404_on_every_path(client: Any, orgs: Any) -> None:
    a, b = orgs
    intruder = Api(client, b.raw_token)
    with_ids = [(m, p) for m, p in billing_operations() if _params(p)]
    assert len(with_ids) >= 25
    for method, path in with_ids:
        url = _url(path, a)
        body = BODIES.get((method, path), lambda a: {})(a)
        before = _state(a)
        response = intruder.send(method, url, body, key="intruder")
        assert response.status_code == 404, (method, path, response.content[:200])
        assert _state(a) == before, (method, path)
        # the same request on B's own object is not a 404: the ids were the only problem
        if method == "GET" and not path.endswith("/pdf"):
            assert intruder.get(_url(path, b)).status_code == 200, path


def test_bodies_naming_another_organisations_objects_are_404(client: Any, orgs: Any) -> None:
    a, b = orgs
    intruder = Api(client, b.raw_token)
    before = _state(a)
    for path in ("/allocation-groups", "/loss-groups", "/bill-runs"):
        response = intruder.post(path, BODIES[("POST", path)](a))
        assert response.status_code == 404, (path, response.content[:200])
    # B's own objects with one of A's inside
    own_item = f"/charge-items/{a_charge_item(b).pk}/subscriptions"
    assert intruder.post(own_item, {"account_ids": [b.account.pk, a.account.pk]}).status_code == 404
    own_group = f"/allocation-groups/{a_allocation_group(b).pk}"
    members = {"members": [{"account_id": a.account.pk}]}
    assert intruder.put(f"{own_group}/members", members).status_code == 404
    assert intruder.patch(own_group, {"master_meter_id": a.meter.pk}).status_code == 404
    own_loss = f"/loss-groups/{a_loss_group(b).pk}"
    assert intruder.patch(own_loss, {"meter_ids": [b.meter.pk, a.meter.pk]}).status_code == 404
    run = {"account_ids": [b.account.pk, a.account.pk], "period_start": NOV, "period_end": DEC}
    assert intruder.post("/bill-runs", run).status_code == 404
    assert ChargeSubscription.objects.filter(organisation=b.org).count() == 0
    assert AllocationMember.objects.filter(organisation=b.org).count() == 0
    assert list(a_loss_group(b).meters.all()) == []
    assert BillRun.objects.filter(organisation=b.org).count() == 0
    assert _state(a) == before

    # creating in one's own organisation is allowed, and lists show only one's own objects
    a_run(a), a_bill(a), a_subscribed_account(a)
    ok(intruder.post("/charge-items", BODIES[("POST", "/charge-items")](a)), 201)
    for path, model in (
        ("/charge-items", ChargeItem),
        ("/allocation-groups", AllocationGroup),
        ("/loss-groups", LossGroup),
        ("/bill-runs", BillRun),
        ("/bills", Bill),
        ("/bills/arrears", None),
    ):
        listed = ok(intruder.get(path))
        own = (
            set()
            if model is None
            else set(model.objects.filter(organisation=b.org).values_list("pk", flat=True))
        )
        assert {x.get("id", x.get("bill_id")) for x in listed["items"]} == own, path
        assert "Site alpha" not in json.dumps(listed) and "Customer alpha" not in json.dumps(listed)
    assert len(ChargeItem.objects.filter(organisation=b.org)) == 2
