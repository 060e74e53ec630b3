"""Console pages of tariffs: render, edit with field-path errors, preview totals equal to the
engine's bill, re-rating differences, import warnings shown, schedule, assignment."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from meterpay.apps.tariffs import selectors, services
from meterpay.apps.tariffs.models import AccountTariff, Tariff
from meterpay.core.tariffs import AccountTerms, parse_interval_csv, parse_tariff, rate
from tests.factories import build_org
from tests.tariffs.helpers import fixture_document, single_price, urdb_with_unimported_fields

pytestmark = pytest.mark.django_db
NOW = "2026-11-23T12:00:00+08:00"


@pytest.fixture
def org() -> Any:
    return build_org("tcon", 920)


@pytest.fixture
def tou(org: Any) -> Tariff:
    return services.tariff_create(
        actor="test", organisation=org.org, document=fixture_document("cn_commercial_tou_cpp.json")
    )


def login(client: Any, org: Any, role: str = "owner") -> Any:
    client.force_login(org.users[role])
    return client


def test_pages_render(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org, "viewer")
    body = client.get(reverse("console:tariff_list")).content.decode()
    assert tou.name in body
    assert "New tariff" not in body  # viewers do not manage tariffs
    detail = client.get(reverse("console:tariff_detail", args=[tou.pk])).content.decode()
    for text in ("sharp 1.3015", "critical peak", "tou-chart-data", "r1", "Rate a sample month"):
        assert text in detail, text
    assert "Edit document" not in detail
    assert client.get(reverse("console:tariff_edit", args=[tou.pk])).status_code == 403
    client.logout()
    login(client, org, "finance")
    for name, args in [
        ("tariff_create", []),
        ("tariff_import", []),
        ("tariff_edit", [tou.pk]),
        ("tariff_schedule", [tou.pk]),
        ("tariff_preview", [tou.pk]),
        ("account_tariffs", [org.account.pk]),
        ("account_detail", [org.account.pk]),
    ]:
        assert client.get(reverse(f"console:{name}", args=args)).status_code == 200, name


def test_create_shows_errors_by_field_path_and_keeps_the_text(client: Any, org: Any) -> None:
    login(client, org)
    bad = single_price()
    bad["versions"][0]["energy"]["periods"][0]["price"] = "abc"
    text = json.dumps(bad)
    response = client.post(reverse("console:tariff_create"), {"document": text})
    assert response.status_code == 200
    body = response.content.decode()
    assert "<code>versions[0].energy.periods[0].price</code>: must be a decimal string" in body
    assert "&quot;abc&quot;" in body  # the text stays in the editor
    broken = client.post(reverse("console:tariff_create"), {"document": "{ nope"})
    assert "Not valid JSON" in broken.content.decode()
    ok = client.post(reverse("console:tariff_create"), {"document": json.dumps(single_price())})
    assert ok.status_code == 302
    assert Tariff.objects.filter(organisation=org.org, name="Flat test price").exists()


def test_edit_saves_a_revision(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org)
    document = dict(tou.document)
    document["name"] = "Commercial TOU (2026)"
    url = reverse("console:tariff_edit", args=[tou.pk])
    response = client.post(url, {"document": json.dumps(document), "note": "renamed"})
    assert response.status_code == 302
    tou.refresh_from_db()
    assert tou.name == "Commercial TOU (2026)" and tou.revisions.count() == 2
    detail = client.get(reverse("console:tariff_detail", args=[tou.pk])).content.decode()
    assert "renamed" in detail and "r2" in detail


def _amounts(body: str, selector_class: str) -> list[str]:
    table = body.split(f'class="{selector_class}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td class="num">(-?[0-9]+\.[0-9]{2})</td></tr>', table)


def test_preview_shows_the_engines_lines_and_total(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org, "viewer")
    url = reverse("console:tariff_preview", args=[tou.pk])
    response = client.post(
        url, {"profile": "shop", "month": "2026-07", "step": "60"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    intervals = selectors.sample_intervals("shop", year=2026, month=7)
    bill = rate(
        tariff=parse_tariff(tou.document),
        intervals=intervals,
        account=AccountTerms(room_area_m2=Decimal(30)),
    )
    assert f'id="preview-total">{bill.total} CNY' in body
    shown = [Decimal(a) for a in _amounts(body, "bill-lines")]
    assert shown == [line.amount for line in bill.lines]
    assert sum(shown) == bill.total
    assert "<html" not in body  # an htmx partial
    assert "preview-chart-data" in body
    full = client.post(url, {"profile": "shop", "month": "2026-07", "step": "60"})
    assert "<html" in full.content.decode() and f"{bill.total} CNY" in full.content.decode()


def test_preview_of_uploaded_readings(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org, "viewer")
    csv = "timestamp,kwh\n2026-07-01T19:00,10\n2026-07-01T20:00,10\n2026-07-01T21:00,5\n"
    response = client.post(
        reverse("console:tariff_preview", args=[tou.pk]),
        {"month": "2026-07", "step": "60", "readings": SimpleUploadedFile("r.csv", csv.encode())},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    bill = rate(
        tariff=parse_tariff(tou.document),
        intervals=parse_interval_csv(csv),
        account=AccountTerms(room_area_m2=Decimal(30)),
    )
    assert f'id="preview-total">{bill.total} CNY' in body
    assert "sharp" in body
    bad = client.post(
        reverse("console:tariff_preview", args=[tou.pk]),
        {
            "month": "2026-07",
            "step": "60",
            "readings": SimpleUploadedFile("r.csv", b"when,kwh\nx,1\n"),
        },
        HTTP_HX_REQUEST="true",
    )
    assert "path-errors" in bad.content.decode()


def test_preview_of_a_draft_shows_the_rerating_difference(
    client: Any, org: Any, tou: Tariff
) -> None:
    login(client, org)
    draft = dict(tou.document)
    draft["versions"] = json.loads(json.dumps(tou.document["versions"]))
    draft["versions"][0]["energy"]["periods"][0]["price"] = "0.7000"  # flat corrected
    response = client.post(
        reverse("console:tariff_preview", args=[tou.pk]),
        {"profile": "shop", "month": "2026-07", "step": "60", "document": json.dumps(draft)},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "difference against the saved tariff" in body
    assert "re-rating 2026-07 with corrected tariff" in body
    tou.refresh_from_db()
    assert tou.revisions.count() == 1  # a preview stores nothing
    bad = dict(draft, currency="XXX")
    response = client.post(
        reverse("console:tariff_preview", args=[tou.pk]),
        {"profile": "shop", "month": "2026-07", "step": "60", "document": json.dumps(bad)},
        HTTP_HX_REQUEST="true",
    )
    assert "<code>currency</code>" in response.content.decode()


def test_two_part_tariff_preview_uses_the_terms(client: Any, org: Any) -> None:
    tariff = services.tariff_create(
        actor="test", organisation=org.org, document=fixture_document("cn_two_part_demand_pf.json")
    )
    login(client, org, "viewer")
    page = client.get(reverse("console:tariff_detail", args=[tariff.pk])).content.decode()
    assert 'value="100"' in page  # the contract demand is pre-filled
    response = client.post(
        reverse("console:tariff_preview", args=[tariff.pk]),
        {"profile": "office", "month": "2026-07", "step": "15", "contract_demand_kw": "100"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert "power_factor" in body and "max demand" in body


def test_import_shows_urdb_warnings(client: Any, org: Any) -> None:
    login(client, org)
    response = client.post(
        reverse("console:tariff_import"),
        {"file": SimpleUploadedFile("rate.json", urdb_with_unimported_fields().encode())},
        follow=True,
    )
    body = response.content.decode()
    assert "Imported" in body
    assert body.count("fueladjustmentsmonthly") >= 2  # the message and the kept warning
    nothing = client.post(reverse("console:tariff_import"), {"text": "[1]"})
    assert "path-errors" in nothing.content.decode()


def test_export_downloads_the_document(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org, "viewer")
    response = client.get(reverse("console:tariff_export", args=[tou.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="cn-commercial-tou-cpp.json"'
    assert json.loads(response.content) == tou.document


@time_machine.travel(NOW, tick=False)
def test_schedule_a_price_change_in_the_console(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org, "finance")
    url = reverse("console:tariff_schedule", args=[tou.pk])
    page = client.get(url).content.decode()
    assert 'value="2026-12-01T00:00"' in page
    version = {"energy": {"periods": [{"name": "flat", "price": "0.70"}]}}
    past = client.post(url, {"effective_from": "2026-01-01T00:00", "version": json.dumps(version)})
    assert "<code>effective_from</code>" in past.content.decode()
    ok = client.post(url, {"effective_from": "2026-12-01T00:00", "version": json.dumps(version)})
    assert ok.status_code == 302
    detail = client.get(reverse("console:tariff_detail", args=[tou.pk])).content.decode()
    assert "scheduled" in detail and "2026-12-01 00:00" in detail


def test_archive_and_restore(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org)
    url = reverse("console:tariff_detail", args=[tou.pk])
    client.post(url, {"action": "archive"})
    tou.refresh_from_db()
    assert tou.archived
    assert tou.name not in client.get(reverse("console:tariff_list")).content.decode()
    assert tou.name in client.get(reverse("console:tariff_list") + "?archived=1").content.decode()
    client.post(url, {"action": "unarchive"})
    tou.refresh_from_db()
    assert not tou.archived
    client.logout()
    login(client, org, "operator")
    assert client.post(url, {"action": "archive"}).status_code == 403


def test_assign_a_tariff_to_an_account(client: Any, org: Any, tou: Tariff) -> None:
    login(client, org, "finance")
    url = reverse("console:account_tariffs", args=[org.account.pk])
    response = client.post(url, {"tariff": tou.pk, "tier_threshold_scale": "1.5"})
    assert response.status_code == 302
    assignment = AccountTariff.objects.get(account=org.account)
    assert assignment.tariff == tou and assignment.tier_threshold_scale == Decimal("1.5")
    detail = client.get(reverse("console:account_detail", args=[org.account.pk])).content.decode()
    assert tou.name in detail and "in force" in detail
    water = services.tariff_create(
        actor="test", organisation=org.org, document=fixture_document("water_stepped.json")
    )
    bad = client.post(url, {"tariff": water.pk, "tier_thresholds": "5"})
    assert "<code>tier_thresholds</code>" in bad.content.decode()
    client.logout()
    login(client, org, "operator")
    assert client.post(url, {"tariff": tou.pk}).status_code == 403
