"""The month end in the console: every billing page renders for the roles that may see it,
writes need their permission (checked before the form), and a whole month end runs through
the views: a run made, reviewed, confirmed and issued, a bill paid in part, credited and
re-issued; bad inputs (a grid reading below the one before, a template that does not compile,
a run whose data has problems) are refused with the service's message and write nothing."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.billing.bills import bill_pay, bills_overdue_run
from meterpay.apps.billing.models import (
    AllocationGroup,
    Bill,
    BillBranding,
    BillRun,
    BillSchedule,
    BillTemplate,
    ChargeItem,
    ChargeSubscription,
    GridReading,
    LossGroup,
)
from meterpay.apps.billing.runs import bill_run_confirm, bill_run_issue
from meterpay.apps.billing.sharing import allocation_members_set
from tests.billing.test_month_end import DEC, NOV, Mall, local

pytestmark = pytest.mark.django_db

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def mall(org: Any) -> Mall:
    return Mall(org)


@pytest.fixture
def issued(mall: Mall) -> BillRun:
    run = mall.run()
    bill_run_confirm(actor="t", run=run)
    return bill_run_issue(actor="t", run=run)


def _as(client: Any, mall: Mall, role: str) -> Any:
    client.force_login(mall.org.users[role])
    return client


def _photo_reading(mall: Mall) -> GridReading:
    reading = GridReading.objects.get(group=mall.loss, read_on=DEC)
    reading.photo, reading.photo_type = PNG, "image/png"
    reading.save()
    return reading


def _template(mall: Mall) -> BillTemplate:
    from meterpay.apps.billing.printing import default_template

    return BillTemplate.objects.create(
        organisation=mall.org.org, name="Ours", language="en", body=default_template("en")
    )


# name -> (kwargs from the mall and its issued run, may a viewer open it?)
PAGES: dict[str, tuple[Any, bool]] = {
    "bill_run_list": (lambda m, r: {}, True),
    "bill_run_new": (lambda m, r: {}, False),
    "bill_run_detail": (lambda m, r: {"run_id": r.pk}, True),
    "bill_list": (lambda m, r: {}, True),
    "bill_detail": (lambda m, r: {"bill_id": r.bills.first().pk}, True),
    "bill_payments": (lambda m, r: {}, False),  # finance: view_finance
    "bill_arrears": (lambda m, r: {}, True),
    "charge_item_list": (lambda m, r: {}, True),
    "charge_item_create": (lambda m, r: {}, False),
    "charge_item_detail": (lambda m, r: {"item_id": ChargeItem.objects.first().pk}, True),
    "charge_item_edit": (lambda m, r: {"item_id": ChargeItem.objects.first().pk}, False),
    "allocation_group_list": (lambda m, r: {}, True),
    "allocation_group_create": (lambda m, r: {}, False),
    "allocation_group_detail": (lambda m, r: {"group_id": m.group.pk}, True),
    "allocation_group_edit": (lambda m, r: {"group_id": m.group.pk}, False),
    "loss_group_list": (lambda m, r: {}, True),
    "loss_group_create": (lambda m, r: {}, False),
    "loss_group_detail": (lambda m, r: {"group_id": m.loss.pk}, True),
    "loss_group_edit": (lambda m, r: {"group_id": m.loss.pk}, False),
    "grid_reading_photo": (lambda m, r: {"reading_id": _photo_reading(m).pk}, True),
    "bill_template_list": (lambda m, r: {}, True),
    "bill_template_create": (lambda m, r: {}, False),
    "bill_template_edit": (lambda m, r: {"template_id": _template(m).pk}, False),
    "bill_branding": (lambda m, r: {}, True),
    "bill_schedules": (lambda m, r: {}, True),
}
DOWNLOADS = {"bill_run_pdf", "bill_run_zip", "bill_pdf"}


def test_every_billing_page_is_listed() -> None:
    from django.urls import get_resolver

    console = get_resolver().namespace_dict["console"][1].reverse_dict
    names = {n for n in console if isinstance(n, str)}
    billing = {
        n
        for n in names
        if n.startswith(("bill_", "charge_item", "allocation_group", "loss_group", "grid_reading"))
    }
    assert billing == set(PAGES) | DOWNLOADS


@pytest.mark.parametrize("role", ["owner", "finance", "operator", "viewer"])
def test_pages_render_for_who_may_see_them(client: Any, mall: Mall, issued: Any, role: str) -> None:
    _as(client, mall, role)
    user = mall.org.users[role]
    for name, (kwargs, viewer_may) in PAGES.items():
        url = reverse(f"console:{name}", kwargs=kwargs(mall, issued) or None)
        response = client.get(url)
        needs = {
            "bill_run_new": "run_bills",
            "bill_payments": "view_finance",
            "charge_item_create": "manage_charges",
            "charge_item_edit": "manage_charges",
            "allocation_group_create": "manage_charges",
            "allocation_group_edit": "manage_charges",
            "loss_group_create": "manage_charges",
            "loss_group_edit": "manage_charges",
            "bill_template_create": "manage_bill_templates",
            "bill_template_edit": "manage_bill_templates",
        }.get(name)
        allowed = viewer_may or (needs is not None and user.can(needs))
        assert response.status_code == (200 if allowed else 403), (role, name)


def test_billing_is_in_the_navigation_for_every_staff_role(client: Any, mall: Mall) -> None:
    for role in ("owner", "operator", "finance", "viewer"):
        body = _as(client, mall, role).get(reverse("console:home")).content.decode()
        assert reverse("console:bill_run_list") in body


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_pages_speak_the_users_language(
    client: Any, mall: Mall, issued: Any, language: str
) -> None:
    _as(client, mall, "owner")
    client.cookies["django_language"] = language
    for name, (kwargs, _viewer) in PAGES.items():
        if name == "grid_reading_photo":
            continue
        body = client.get(reverse(f"console:{name}", kwargs=kwargs(mall, issued) or None))
        text = body.content.decode()
        if language == "zh-hans":
            assert "账单" in text, name
            # the page chrome is Chinese: no English word of ours in the visible headings
            headings = re.findall(r"<h1>(.*?)</h1>", text, re.S)
            assert headings and not re.search(r"\b(Bill|Run|Billing|Charge)\b", headings[0]), (
                name,
                headings,
            )
        else:
            assert "Billing" in text or "Bill" in text, name


# --- writes need their permission -------------------------------------------------------------


def _writes(mall: Mall, run: BillRun) -> list[tuple[str, dict[str, Any], dict[str, Any], str]]:
    bill = run.bills.get(account=mall.shop_b)
    item = ChargeItem.objects.get(code="rent")
    return [
        ("bill_run_new", {}, {"site": mall.org.site.pk}, "run_bills"),
        ("bill_run_detail", {"run_id": run.pk}, {"action": "remake"}, "run_bills"),
        (
            "bill_detail",
            {"bill_id": bill.pk},
            {"action": "pay", "amount": "1.00", "channel": "cash"},
            "record_payments",
        ),
        ("bill_detail", {"bill_id": bill.pk}, {"action": "credit", "reason": ""}, "issue_bills"),
        ("charge_item_create", {}, {"code": ""}, "manage_charges"),
        ("charge_item_detail", {"item_id": item.pk}, {"action": "subscribe"}, "manage_charges"),
        ("allocation_group_detail", {"group_id": mall.group.pk}, {}, "manage_charges"),
        ("loss_group_detail", {"group_id": mall.loss.pk}, {"reading": "x"}, "enter_grid_readings"),
        ("bill_template_create", {}, {"body": "{% nope %}"}, "manage_bill_templates"),
        ("bill_branding", {}, {"phone": "x"}, "manage_bill_templates"),
        ("bill_schedules", {}, {"site": mall.org.site.pk}, "manage_charges"),
    ]


def test_a_viewer_posting_is_refused_before_the_form_is_read(
    client: Any, mall: Mall, issued: Any
) -> None:
    _as(client, mall, "viewer")
    before = AuditEvent.objects.count()
    for name, kwargs, data, _permission in _writes(mall, issued):
        response = client.post(reverse(f"console:{name}", kwargs=kwargs or None), data)
        assert response.status_code == 403, name
        assert b"errorlist" not in response.content
    assert AuditEvent.objects.count() == before


def test_an_operator_runs_bills_but_does_not_issue_them(client: Any, mall: Mall) -> None:
    _as(client, mall, "operator")
    response = client.post(
        reverse("console:bill_run_new"),
        {"site": mall.org.site.pk, "period_start": "2026-11-01", "period_last": "2026-11-30"},
    )
    run = BillRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/runs/{run.pk}/")
    url = reverse("console:bill_run_detail", args=[run.pk])
    assert client.post(url, {"action": "remake"}).status_code == 302
    assert client.post(url, {"action": "confirm"}).status_code == 403
    run.refresh_from_db()
    assert run.status == "draft"
    body = client.get(url).content.decode()
    assert 'value="remake"' in body and 'value="confirm"' not in body


# --- a whole month end through the console ---------------------------------------------------


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_a_month_end_through_the_console(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    new = client.get(reverse("console:bill_run_new"))
    assert new.status_code == 200
    form = new.context["form"]
    assert form.initial["period_start"].day == 1  # last month by default
    response = client.post(
        reverse("console:bill_run_new"),
        {
            "site": mall.org.site.pk,
            "period_start": "2026-11-01",
            "period_last": "2026-11-30",
            "due_on": "2026-12-05",
        },
        follow=True,
    )
    run = BillRun.objects.get()
    assert (run.period_start, run.period_end, run.status) == (NOV, DEC, "draft")
    assert run.bills.count() == 2
    body = response.content.decode()
    assert "2 draft bills to check" in body
    # the review, the public-area sharing and the line-loss bill
    assert "no previous bill" in body
    assert "Mall lighting" in body and "Grid meter 1" in body
    assert "5.00 %" in body  # loss rate 0.0500
    assert "600" in body and "570" in body and "24.00" in body
    a = run.bills.get(account=mall.shop_a)
    assert f"{a.total_minor // 100:,}" in body

    url = reverse("console:bill_run_detail", args=[run.pk])
    assert 'data-confirm="Confirm 2 bills?"' in body
    client.post(url, {"action": "confirm"})
    run.refresh_from_db()
    assert run.status == "confirmed"
    client.post(url, {"action": "unconfirm"})
    run.refresh_from_db()
    assert run.status == "draft"
    client.post(url, {"action": "confirm"})
    client.post(url, {"action": "issue"})
    run.refresh_from_db()
    assert run.status == "issued"
    assert set(run.bills.values_list("status", flat=True)) == {"issued"}

    # a partial payment of the postpaid shop's bill, then the rest
    b = run.bills.get(account=mall.shop_b)
    page = client.get(reverse("console:bill_detail", args=[b.pk]))
    text = page.content.decode()
    assert "Record a payment" in text and "2,240.60" in text  # 102 + 1800 + 300 + 30.60 + 8
    key = page.context["form_key"]
    bill_url = reverse("console:bill_detail", args=[b.pk])
    paid = {
        "action": "pay",
        "amount": "1000.00",
        "channel": "cash",
        "idempotency_key": f"k-{key}",
        "reference": "counter 7",
    }
    response = client.post(bill_url, paid, follow=True)
    b.refresh_from_db()
    assert (b.status, b.unpaid_minor) == ("issued", b.due_minor - 100000)
    assert "1,240.60 is still unpaid" in " ".join(_messages(response))
    client.post(bill_url, paid)  # the same form again pays once
    b.refresh_from_db()
    assert b.unpaid_minor == b.due_minor - 100000
    response = client.post(
        bill_url, {**paid, "amount": "1240.60", "idempotency_key": "k-2"}, follow=True
    )
    b.refresh_from_db()
    assert (b.status, b.unpaid_minor) == ("paid", 0)
    assert "the bill is paid" in " ".join(_messages(response))

    # credit the prepaid shop's bill and re-issue it with adjustments
    a = run.bills.get(account=mall.shop_a)
    response = client.post(
        reverse("console:bill_detail", args=[a.pk]),
        {
            "action": "reissue",
            "reason": "rent reduced for works",
            "adjustment_label": ["Works discount", "Cleaning", ""],
            "adjustment_amount": ["-500.00", "20.00", ""],
        },
    )
    a.refresh_from_db()
    assert a.status == "credited"
    replacement = Bill.objects.get(replaces=a)
    note = Bill.objects.get(credits=a, kind="credit_note")
    assert response["Location"] == reverse("console:bill_detail", args=[replacement.pk])
    assert replacement.status == "draft"
    assert replacement.total_minor == a.total_minor - 50000 + 2000
    old = client.get(reverse("console:bill_detail", args=[a.pk])).content.decode()
    assert note.number in old and replacement.number in old
    new_url = reverse("console:bill_detail", args=[replacement.pk])
    new_page = client.get(new_url).content.decode()
    assert a.number in new_page and "Works discount" in new_page and "-500.00" in new_page
    client.post(new_url, {"action": "confirm"})
    client.post(new_url, {"action": "issue"})
    replacement.refresh_from_db()
    assert replacement.status == "issued"
    assert replacement.unpaid_minor == a.due_minor - 50000 + 2000

    # the lists and their exports
    bills = client.get(reverse("console:bill_list"), {"status": "issued"}).content.decode()
    assert replacement.number in bills and b.number not in bills
    payments = client.get(reverse("console:bill_payments"), {"from": "2000-01-01"})
    assert payments.context["count"] == 2 and payments.context["total"] == "2,240.60"
    export = client.get(reverse("console:bill_payments"), {"export": "xlsx"})
    assert export["Content-Type"].startswith("application/vnd.openxmlformats")
    assert zipfile.is_zipfile(io.BytesIO(export.content))


def test_a_credit_note_needs_a_reason(client: Any, mall: Mall, issued: Any) -> None:
    _as(client, mall, "finance")
    a = issued.bills.get(account=mall.shop_a)
    url = reverse("console:bill_detail", args=[a.pk])
    response = client.post(url, {"action": "credit", "reason": " "}, follow=True)
    assert "a credit note needs a reason" in " ".join(_messages(response))
    a.refresh_from_db()
    assert a.status == "issued"
    response = client.post(url, {"action": "credit", "reason": "moved out early"}, follow=True)
    note = Bill.objects.get(credits=a)
    assert response.redirect_chain[-1][0] == reverse("console:bill_detail", args=[note.pk])
    assert f"Credit note {note.number} issued" in " ".join(_messages(response))


def test_a_bad_adjustment_is_refused_and_nothing_is_credited(
    client: Any, mall: Mall, issued: Any
) -> None:
    _as(client, mall, "finance")
    a = issued.bills.get(account=mall.shop_a)
    response = client.post(
        reverse("console:bill_detail", args=[a.pk]),
        {
            "action": "reissue",
            "reason": "x",
            "adjustment_label": ["X"],
            "adjustment_amount": ["1.234"],
        },
        follow=True,
    )
    assert "is not an amount" in " ".join(_messages(response))
    a.refresh_from_db()
    assert a.status == "issued" and not Bill.objects.filter(credits=a).exists()


def test_a_run_with_problems_lists_them_and_makes_nothing(client: Any, mall: Mall) -> None:
    allocation_members_set(actor="t", group=mall.group, members=[])
    _as(client, mall, "finance")
    response = client.post(
        reverse("console:bill_run_new"),
        {"site": mall.org.site.pk, "period_start": "2026-11-01", "period_last": "2026-11-30"},
    )
    assert response.status_code == 200
    assert any("no members" in e for e in response.context["errors"])
    assert '<ul class="problems">' in response.content.decode()
    assert BillRun.objects.count() == 0 and Bill.objects.count() == 0


def test_the_new_run_form_lists_the_sites_accounts(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    response = client.get(
        reverse("console:bill_run_new"), {"site": mall.org.site.pk}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert 'id="accounts-field"' in body and mall.shop_b.number in body
    response = client.post(
        reverse("console:bill_run_new"),
        {
            "site": mall.org.site.pk,
            "accounts": [mall.shop_b.pk],
            "period_start": "2026-11-01",
            "period_last": "2026-11-30",
        },
    )
    run = BillRun.objects.get()
    assert list(run.bills.values_list("account_id", flat=True)) == [mall.shop_b.pk]


def test_review_flags_and_arrears(client: Any, mall: Mall, issued: Any) -> None:
    _as(client, mall, "owner")
    run_page = client.get(reverse("console:bill_run_detail", args=[issued.pk]))
    assert 'class="badge flag flag-no_previous"' in run_page.content.decode()
    from django.db import transaction

    with transaction.atomic():
        bills_overdue_run(now=local(date(2026, 12, 7), 10))
    response = client.get(reverse("console:bill_arrears"))
    assert response.context["count"] == 2
    body = response.content.decode()
    assert mall.shop_a.number in body and "Shop B" in body
    bills = client.get(reverse("console:bill_list"), {"overdue": "1"}).context["bills"]
    if timezone.localdate() > date(2026, 12, 5):
        assert len(list(bills)) == 2
    export = client.get(reverse("console:bill_arrears"), {"export": "xlsx"})
    assert zipfile.is_zipfile(io.BytesIO(export.content))


def test_bill_page_shows_readings_sections_and_money(client: Any, mall: Mall, issued: Any) -> None:
    a = issued.bills.get(account=mall.shop_a)
    bill_pay(actor="t", bill=a, amount="1000", channel="bank_transfer", idempotency_key="x1")
    _as(client, mall, "viewer")
    response = client.get(reverse("console:bill_detail", args=[a.pk]))
    body = response.content.decode()
    assert "000000000100" in body  # the meter, with its readings
    assert "1,000" in body and "1,300" in body  # register 1000 → 1300
    sections = response.context["sections"]
    titles = [str(s["title"]) for s in sections]
    assert titles == ["Electricity", "Rent and fees", "Public-area share", "Line loss"]
    rent = next(s for s in sections if s["code"] == "charges")
    assert rent["subtotal"] == "3,300.00"
    line = next(x for x in rent["lines"] if x["label"].startswith("Rent"))
    assert (line["quantity"], line["unit"], line["price"], line["amount"]) == (
        "50",
        "m²",
        "60.00",
        "3,000.00",
    )
    assert "Record a payment" not in body  # a viewer records nothing
    assert "2,067.00" in body  # 3067.00 due, 1000.00 paid


# --- set-up pages -----------------------------------------------------------------------------


def test_charge_items_and_their_accounts(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    data = {
        "code": "service",
        "name": "Service fee",
        "basis": "fixed",
        "unit_price": "12.5",
        "frequency": "monthly",
        "day_of_month": "1",
        "utility": "",
        "settlement": "bill",
        "revenue": "service_fee",
        "prorate": "on",
        "active": "on",
    }
    response = client.post(reverse("console:charge_item_create"), {**data, "basis": "per_unit"})
    assert response.status_code == 200
    assert "names the meters" in response.content.decode()
    assert not ChargeItem.objects.filter(code="service").exists()
    response = client.post(reverse("console:charge_item_create"), {**data, "code": "rent"})
    assert "another charge item has the code rent" in response.content.decode()
    response = client.post(reverse("console:charge_item_create"), data)
    item = ChargeItem.objects.get(code="service")
    assert response["Location"] == reverse("console:charge_item_detail", args=[item.pk])
    assert item.unit_price_micro == 12_500_000
    edit = client.get(reverse("console:charge_item_edit", args=[item.pk]))
    assert edit.context["form"].initial["unit_price"] == "12.50"
    client.post(reverse("console:charge_item_edit", args=[item.pk]), {**data, "name": "Service"})
    item.refresh_from_db()
    assert item.name == "Service"

    url = reverse("console:charge_item_detail", args=[item.pk])
    response = client.post(url, {"action": "subscribe"})
    assert "Choose accounts, or a site." in response.content.decode()
    client.post(url, {"action": "subscribe", "accounts": [mall.shop_a.pk], "unit_price": "10"})
    sub = ChargeSubscription.objects.get(item=item)
    assert sub.account == mall.shop_a and sub.unit_price_micro == 10_000_000
    client.post(url, {"action": "subscribe", "site": mall.org.site.pk})
    assert ChargeSubscription.objects.filter(item=item).count() == 2
    assert "10.00" in client.get(url).content.decode()
    client.post(url, {"action": "unsubscribe", "subscription": sub.pk})
    assert list(ChargeSubscription.objects.filter(item=item).values_list("account", flat=True)) == [
        mall.shop_b.pk
    ]


def test_public_area_groups_and_members(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    values = {
        "name": "Lifts",
        "site": mall.org.site.pk,
        "master_meter": mall.org.free_meter.pk,
        "rule": "ratio",
        "tariff": "",
        "settlement": "bill",
        "active": "on",
    }
    response = client.post(reverse("console:allocation_group_create"), values)
    group = AllocationGroup.objects.get(name="Lifts")
    url = reverse("console:allocation_group_detail", args=[group.pk])
    assert response["Location"] == url
    client.post(
        url,
        {
            "member": [mall.shop_a.pk, mall.shop_b.pk],
            f"ratio-{mall.shop_a.pk}": "3",
            f"ratio-{mall.shop_b.pk}": "1",
        },
    )
    assert dict(group.members.values_list("account_id", "ratio")) == {
        mall.shop_a.pk: 3,
        mall.shop_b.pk: 1,
    }
    response = client.post(url, {"member": [mall.shop_a.pk], f"ratio-{mall.shop_a.pk}": "-1"})
    assert "cannot be negative" in " ".join(_messages(response))
    assert group.members.count() == 2
    body = client.get(url).content.decode()
    assert "Shop B" in body and 'value="3"' in body


def test_line_loss_groups_and_grid_readings(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    response = client.post(
        reverse("console:loss_group_create"),
        {
            "name": "Grid 2",
            "site": mall.org.site.pk,
            "utility": "electricity",
            "grid_meter_number": "G-2",
            "multiplier": "40",
            "meters": [mall.meter_b.pk],
            "rule": "usage",
            "unit_price": "0.75",
            "settlement": "bill",
            "active": "on",
        },
    )
    group = LossGroup.objects.get(name="Grid 2")
    assert response["Location"] == reverse("console:loss_group_detail", args=[group.pk])
    assert list(group.meters.all()) == [mall.meter_b] and group.unit_price_micro == 750_000


def test_a_grid_reading_below_the_previous_one_is_refused(client: Any, mall: Mall) -> None:
    _as(client, mall, "operator")
    url = reverse("console:loss_group_detail", args=[mall.loss.pk])
    before = AuditEvent.objects.count()
    response = client.post(url, {"read_on": "2026-12-15", "reading": "10500", "notes": ""})
    assert response.status_code == 200
    assert "below the previous" in response.content.decode()
    assert GridReading.objects.count() == 2 and AuditEvent.objects.count() == before

    not_an_image = io.BytesIO(b"<svg onload=alert(1)></svg>")
    not_an_image.name = "x.png"
    response = client.post(
        url, {"read_on": "2027-01-01", "reading": "11200", "photo": not_an_image}
    )
    assert "must be an image" in response.content.decode()
    assert GridReading.objects.count() == 2

    photo = io.BytesIO(PNG)
    photo.name = "register.png"
    response = client.post(
        url, {"read_on": "2027-01-01", "reading": "11200", "notes": "clear", "photo": photo}
    )
    assert response.status_code == 302
    reading = GridReading.objects.get(read_on=date(2027, 1, 1))
    assert reading.entered_by == mall.org.users["operator"] and reading.photo_type == "image/png"
    page = client.get(url).content.decode()
    assert reverse("console:grid_reading_photo", args=[reading.pk]) in page
    assert "600" in page and "operator" in page
    served = client.get(reverse("console:grid_reading_photo", args=[reading.pk]))
    assert served["Content-Type"] == "image/png" and served.content == PNG
    assert served["X-Content-Type-Options"] == "nosniff"
    no_photo = GridReading.objects.get(read_on=NOV)
    assert client.get(reverse("console:grid_reading_photo", args=[no_photo.pk])).status_code == 404


def test_a_bad_template_is_refused_and_a_good_one_previewed(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    url = reverse("console:bill_template_create")
    start = client.get(url, {"language": "en"})
    body = start.context["form"].initial["body"]
    assert "{{" in body
    bad = "<h1>{{ bill.number }}</h1>\n{% for line in lines %}\n<p>{{ line }}</p>"
    response = client.post(url, {"name": "Broken", "language": "en", "body": bad})
    assert response.status_code == 200
    text = response.content.decode()
    assert "line 2" in text and "not closed" in text
    assert not BillTemplate.objects.exists()

    preview = client.post(
        url, {"action": "preview", "language": "en", "body": bad}, HTTP_HX_REQUEST="true"
    )
    assert "not closed" in preview.content.decode() and "<html" not in preview.content.decode()
    preview = client.post(
        url, {"action": "preview", "language": "en", "body": body}, HTTP_HX_REQUEST="true"
    )
    html = preview.content.decode()
    assert 'sandbox=""' in html and "srcdoc=" in html
    assert not BillTemplate.objects.exists()

    response = client.post(
        url, {"name": "Ours", "language": "en", "body": body, "is_default": "on"}
    )
    template = BillTemplate.objects.get()
    assert response["Location"] == reverse("console:bill_template_edit", args=[template.pk])
    assert template.is_default
    listing = client.get(reverse("console:bill_template_list")).content.decode()
    assert "Ours" in listing


def test_branding_and_schedules(client: Any, mall: Mall) -> None:
    _as(client, mall, "finance")
    logo = io.BytesIO(PNG)
    logo.name = "logo.png"
    response = client.post(
        reverse("console:bill_branding"),
        {"address": "1 River Road", "phone": "021-1234", "bank_account": "ICBC 6222", "logo": logo},
    )
    assert response.status_code == 302
    branding = BillBranding.objects.get()
    assert branding.address == "1 River Road" and bytes(branding.logo) == PNG
    page = client.get(reverse("console:bill_branding")).content.decode()
    assert "data:image/png;base64," in page
    client.post(reverse("console:bill_branding"), {"address": "1 River Road", "remove_logo": "on"})
    branding.refresh_from_db()
    assert not branding.logo

    url = reverse("console:bill_schedules")
    response = client.post(url, {"site": mall.org.site.pk, "day_of_month": "31"}, follow=True)
    assert "from 1 to 28" in " ".join(_messages(response))
    assert not BillSchedule.objects.exists()
    client.post(url, {"site": mall.org.site.pk, "day_of_month": "3", "issue": "on", "active": "on"})
    schedule = BillSchedule.objects.get()
    assert (schedule.day_of_month, schedule.issue, schedule.active) == (3, True, True)


def test_pdf_downloads(client: Any, mall: Mall, issued: Any) -> None:
    _as(client, mall, "viewer")
    bill = issued.bills.get(account=mall.shop_b)
    response = client.get(reverse("console:bill_pdf", args=[bill.pk]), {"language": "en"})
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    whole = client.get(reverse("console:bill_run_pdf", args=[issued.pk]))
    assert whole.content.startswith(b"%PDF")
    archive = client.get(reverse("console:bill_run_zip", args=[issued.pk]), {"language": "en"})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as files:
        names = files.namelist()
    assert len(names) == 2 and all(n.endswith(".pdf") for n in names)
