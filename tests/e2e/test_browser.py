"""End to end in a real browser (Debian's Chromium, headless, driven by Playwright): log in,
open the room grid, filter it, walk the account-opening wizard. Screenshots go to
``artifacts/screenshots/`` for people to look at."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.factories import PASSWORD, build_org

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def browser() -> Any:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in {"1", "true"}:
            pytest.fail(f"{CHROMIUM} is missing (make test installs the chromium package as root)")
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_login_room_grid_and_wizard(live_server: Any, browser: Any) -> None:
    org = build_org("e2e", 300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])

    page.goto(live_server.url + "/login/")
    page.screenshot(path=SHOTS / "e2e-01-login.png")
    page.fill("#id_username", org.users["operator"].username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.click("nav >> text=Room monitoring")
    page.wait_for_selector(".room-grid")
    assert page.locator(".room").count() == 2
    page.screenshot(path=SHOTS / "e2e-02-room-grid.png", full_page=True)

    page.select_option("select[name=status]", "vacant")  # htmx swaps the grid in place
    page.wait_for_function("document.querySelectorAll('.room').length === 1")
    assert page.locator(".room .no").inner_text() == "102"
    assert "status=vacant" in page.url  # the filter is in the address for sharing
    page.screenshot(path=SHOTS / "e2e-03-room-grid-vacant.png", full_page=True)

    page.goto(live_server.url + "/accounts/open/?restart=1")
    page.screenshot(path=SHOTS / "e2e-04-wizard-room.png", full_page=True)
    page.click(".pick-list button:has-text('102')")
    page.wait_for_url("**step=customer")
    page.fill("input[name=name]", "Browser Tenant")
    page.fill("input[name=phone]", "13900001111")
    page.screenshot(path=SHOTS / "e2e-05-wizard-customer.png", full_page=True)
    page.click("text=Create and continue")
    page.wait_for_url("**step=meters")
    page.screenshot(path=SHOTS / "e2e-06-wizard-meters.png", full_page=True)
    page.click("text=Continue")
    page.wait_for_url("**step=billing")
    page.click("text=Continue")
    page.wait_for_url("**step=confirm")
    page.screenshot(path=SHOTS / "e2e-07-wizard-confirm.png", full_page=True)
    page.click("text=Open the account")
    page.wait_for_selector(".messages .success")
    assert "is open" in page.inner_text(".messages")
    page.screenshot(path=SHOTS / "e2e-08-account-opened.png", full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(live_server.url + "/rooms/")
    page.screenshot(path=SHOTS / "e2e-09-room-grid-phone.png", full_page=False)
    page.close()
