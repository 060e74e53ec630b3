"""The month end in a real browser: finance opens Billing, makes the mall's November run,
checks the review and the line-loss bill, confirms and issues the run, opens a bill and
downloads its PDF; then every billing page is photographed in English and in Chinese.
Screenshots go to ``artifacts/screenshots/``."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from meterpay.apps.billing.models import Bill, BillRun, BillTemplate, ChargeItem, GridReading
from meterpay.apps.billing.printing import default_template
from meterpay.apps.billing.sharing import allocation_members_set
from tests.billing.test_month_end import DEC, Mall
from tests.e2e.test_browser import SHOTS, browser  # noqa: F401 - the fixture
from tests.factories import PASSWORD, build_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=SHOTS / f"month-end-{name}.png", full_page=True)


def _pdf_text(content: bytes) -> str | None:
    if shutil.which("pdftotext") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bill.pdf"
        path.write_bytes(content)
        done = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
        )
    return done.stdout.decode("utf-8", "replace")


def test_month_end_in_the_browser(live_server: Any, browser: Any) -> None:  # noqa: F811
    mall = Mall(build_org("e2eme", 400))
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": base}])
    page.on("dialog", lambda dialog: dialog.accept())  # the "Issue 2 bills?" confirmations

    page.goto(base + "/login/")
    page.fill("#id_username", mall.org.users["finance"].username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")

    page.click("nav >> text=Billing")
    page.wait_for_selector("[data-testid=runs]")
    page.click("text=New bill run")
    page.wait_for_selector("#id_period_start")
    page.fill("#id_period_start", "2026-11-01")
    page.fill("#id_period_last", "2026-11-30")
    page.fill("#id_due_on", "2026-12-05")
    page.click("text=Make the draft bills")
    page.wait_for_selector("[data-testid=review]")
    run = BillRun.objects.get()
    assert page.url.endswith(f"/billing/runs/{run.pk}/")
    assert "2 draft bills to check" in page.inner_text(".messages")
    review = page.locator("[data-testid=review] tbody tr")
    assert review.count() == 2
    assert "no previous bill" in page.inner_text("[data-testid=review]")
    loss = page.inner_text("[data-testid=loss-group]")
    assert "5.00 %" in loss and "600" in loss and "570" in loss and "24.00" in loss
    assert "Mall lighting" in page.inner_text("[data-testid=public-group]")
    _shot(page, "en-run-draft")

    page.click("button:has-text('Confirm the run')")
    page.wait_for_selector("button:has-text('Issue the bills')")
    _shot(page, "en-run-confirmed")
    run.refresh_from_db()
    assert run.status == "confirmed"
    page.click("button:has-text('Issue the bills')")
    page.wait_for_selector(".badge.b-issued")
    run.refresh_from_db()
    assert run.status == "issued"
    assert set(run.bills.values_list("status", flat=True)) == {"issued"}

    bill = run.bills.get(account=mall.shop_b)
    page.click(f"[data-testid=review] >> text={bill.number}")
    page.wait_for_selector("[data-testid=bill-lines]")
    assert "Record a payment" in page.content()
    page.select_option("form.download select[name=language]", "en")
    action = page.get_attribute("form.download", "action")
    response = page.context.request.get(base + action + "?language=en")
    assert response.ok and response.headers["content-type"] == "application/pdf"
    content = response.body()
    assert content.startswith(b"%PDF")
    text = _pdf_text(content)
    if text is not None:
        assert bill.number in text

    # a part payment at the counter
    page.fill("#pay input[name=amount]", "1000.00")
    page.click("text=Record the payment")
    page.wait_for_selector(".messages .success")
    assert "1,240.60 is still unpaid" in page.inner_text(".messages")
    bill.refresh_from_db()
    assert bill.unpaid_minor == bill.due_minor - 100000

    # the template editor's preview (htmx) in a sandboxed frame
    page.goto(base + "/billing/templates/new/?language=en")
    page.click("button:has-text('Preview')")
    page.frame_locator("iframe.bill-preview").locator(".masthead").wait_for()
    assert page.get_attribute("iframe.bill-preview", "sandbox") == ""
    assert not BillTemplate.objects.exists()
    page.close()
    _photograph_every_page(browser, base, mall, run, bill)
    _photograph_refusals(browser, base, mall)


def _photograph_every_page(chromium: Any, base: str, mall: Mall, run: Any, bill: Bill) -> None:
    reading = GridReading.objects.get(group=mall.loss, read_on=DEC)
    reading.photo, reading.photo_type = PNG, "image/png"
    reading.save()
    template = BillTemplate.objects.create(
        organisation=mall.org.org, name="Ours", language="en", body=default_template("en")
    )
    rent = ChargeItem.objects.get(code="rent")
    pages = {
        "runs": "/billing/",
        "run-new": "/billing/runs/new/",
        "run": f"/billing/runs/{run.pk}/",
        "bills": "/billing/bills/",
        "bill": f"/billing/bills/{bill.pk}/",
        "arrears": "/billing/arrears/",
        "payments": "/billing/payments/?from=2026-11-01",
        "charge-items": "/billing/charges/",
        "charge-item": f"/billing/charges/{rent.pk}/",
        "charge-item-edit": f"/billing/charges/{rent.pk}/edit/",
        "public-areas": "/billing/public-areas/",
        "public-area": f"/billing/public-areas/{mall.group.pk}/",
        "public-area-edit": f"/billing/public-areas/{mall.group.pk}/edit/",
        "line-loss": "/billing/line-loss/",
        "line-loss-group": f"/billing/line-loss/{mall.loss.pk}/",
        "line-loss-edit": f"/billing/line-loss/{mall.loss.pk}/edit/",
        "templates": "/billing/templates/",
        "template": f"/billing/templates/{template.pk}/",
        "branding": "/billing/branding/",
        "schedules": "/billing/schedules/",
    }
    for language in ("en", "zh-hans"):
        page = chromium.new_page(viewport={"width": 1366, "height": 900})
        page.context.add_cookies([{"name": "django_language", "value": language, "url": base}])
        page.goto(base + "/login/")
        page.fill("#id_username", mall.org.users["owner"].username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        for name, path in pages.items():
            response = page.goto(base + path)
            assert response is not None and response.ok, (language, path)
            if name == "template":
                page.click(
                    "button:has-text('Preview')" if language == "en" else "button[value=preview]"
                )
                page.frame_locator("iframe.bill-preview").locator(".masthead").wait_for()
            _shot(page, f"{language}-{name}")
            if language == "zh-hans":
                heading = page.inner_text("h1")
                assert not re.search(r"\b(Billing|Bill|Run|Charge|Line|Group)\b", heading), (
                    path,
                    heading,
                )
        page.close()


def _login(chromium: Any, base: str, mall: Mall, language: str) -> Any:
    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base}])
    page.goto(base + "/login/")
    page.fill("#id_username", mall.org.users["finance"].username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    return page


def _photograph_refusals(chromium: Any, base: str, mall: Mall) -> None:
    """What a refused input looks like: a grid reading below the one before, a template that
    does not compile, and a run whose data has a problem (nothing is written by any)."""
    allocation_members_set(actor="t", group=mall.group, members=[])
    readings, runs = GridReading.objects.count(), BillRun.objects.count()
    for language in ("en", "zh-hans"):
        page = _login(chromium, base, mall, language)
        page.goto(base + f"/billing/line-loss/{mall.loss.pk}/")
        page.fill("#id_read_on", "2026-12-15")
        page.fill("#id_reading", "10500")
        page.click("[data-testid=grid-reading-form] button[type=submit]")
        page.wait_for_selector(".has-error")
        assert "10600" in page.inner_text("[data-testid=grid-reading-form]")
        _shot(page, f"{language}-line-loss-refused")

        page.goto(base + "/billing/templates/new/?language=en")
        page.fill("#id_body", "<h1>{{ bill.number }}</h1>\n{% for line in lines %}")
        page.click("button[value=save]")
        page.wait_for_selector("[data-testid=template-error]")
        assert "line 2" in page.inner_text("[data-testid=template-error]")
        _shot(page, f"{language}-template-refused")

        page.goto(base + "/billing/runs/new/")
        page.fill("#id_period_start", "2026-11-01")
        page.fill("#id_period_last", "2026-11-30")
        page.click("form.stacked button.primary")
        page.wait_for_selector("ul.problems")
        assert "Mall lighting" in page.inner_text("ul.problems")
        _shot(page, f"{language}-run-refused")
        page.close()
    assert (GridReading.objects.count(), BillRun.objects.count()) == (readings, runs)
