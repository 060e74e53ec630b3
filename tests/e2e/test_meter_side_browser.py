"""The meter-side account in a real browser, in English and Chinese: money on the meter, the
downloads with their purchase numbers, a discrepancy, and the energy refund button.
Screenshots go to ``artifacts/screenshots/``."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from meterpay.apps.control import credit
from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import meter_command_claim
from meterpay.apps.customers.models import Account
from meterpay.apps.payments.services import recharge_record
from tests.e2e.test_browser import SHOTS, browser  # noqa: F401 - the fixture
from tests.factories import PASSWORD, build_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def meter_side_account() -> Any:
    org = build_org("e2ems", 350)
    Account.objects.filter(pk=org.account.pk).update(billing_side=Account.BillingSide.METER)
    org.account.refresh_from_db()
    credit.meter_balances_reported(
        reports=[credit.BalanceReport(org.meter.pk, 0, 3, timezone.now())]
    )
    for key, amount in (("first", "50.00"), ("second", "20.00")):
        recharge_record(
            actor="t", account=org.account, amount=amount, channel="cash", idempotency_key=key
        )
    first = MeterCommand.objects.filter(kind="credit_download").order_by("id").first()
    assert first is not None
    meter_command_claim(command_id=first.command_id, worker="t")
    for count, sent in ((3, False), (4, True)):
        credit.meter_credit_checked(
            command_id=first.command_id,
            at=timezone.now(),
            sent=sent,
            purchase_count=count,
            remaining_minor=5000 if sent else 0,
            remaining_after_minor=5000 if sent else 0,
        )
    credit.meter_balances_reported(
        reports=[credit.BalanceReport(org.meter.pk, 4870, 5, timezone.now())]
    )  # a purchase the platform did not make
    return org


def test_meter_side_account_pages(live_server: Any, browser: Any) -> None:  # noqa: F811
    org = meter_side_account()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for language in ("en", "zh-hans"):
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        page.goto(live_server.url + "/login/")
        page.fill("#id_username", org.users["finance"].username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")
        page.goto(f"{live_server.url}/accounts/{org.account.pk}/")
        section = page.locator("[data-testid=meter-side]")
        assert "48.70" in section.inner_text()
        assert page.locator("[data-testid=discrepancies] tr").count() >= 2
        page.screenshot(path=SHOTS / f"meter-side-account-{language}.png", full_page=True)
        page.goto(f"{live_server.url}/finance/accounts/{org.account.pk}/")
        assert page.locator("button[value=energy_refund]").count() == 0  # a form input
        assert page.locator("form:has(input[value=energy_refund]) button").is_visible()
        page.screenshot(path=SHOTS / f"meter-side-finance-{language}.png", full_page=True)
        page.goto(f"{live_server.url}/meters/discrepancies/")
        page.screenshot(path=SHOTS / f"meter-side-discrepancies-{language}.png", full_page=True)
        page.goto(f"{live_server.url}/meters/{org.meter.pk}/")
        assert page.locator("[data-testid=meter-balance]").first.is_visible()
        page.screenshot(path=SHOTS / f"meter-side-meter-{language}.png", full_page=True)
        page.close()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.context.add_cookies(
        [{"name": "django_language", "value": "zh-hans", "url": live_server.url}]
    )
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "e2ems-tenant")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(f"[data-testid=meter-balance-{org.account.number}]")
    page.screenshot(path=SHOTS / "meter-side-portal-zh-hans.png", full_page=True)
    page.close()
