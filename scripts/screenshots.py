"""Log in to a running meterpay and screenshot every console page (system Chromium, headless).

uv run python scripts/screenshots.py [BASE_URL] [OUT_DIR]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    "/",
    "/sites/",
    "/rooms/",
    "/rooms/?status=vacant",
    "/customers/",
    "/accounts/",
    "/accounts/open/?restart=1",
    "/meters/",
    "/gateways/",
    "/imports/",
    "/audit/",
    "/settings/tokens/",
    "/tariffs/",
    "/tariffs/1/",
    "/tariffs/5/",
    "/tariffs/1/edit/",
    "/tariffs/1/schedule/",
    "/tariffs/1/preview/?profile=shop&month=2026-07&step=60",
    "/tariffs/import/",
    "/accounts/56/tariffs/",
    "/finance/",
    "/finance/income/",
    "/finance/income/?group=month",
    "/finance/reconciliation/",
    "/finance/shift/",
    "/finance/accounts/1/",
    "/settings/balance-policy/",
    "/settings/notifications/",
    "/settings/notifications/1/test/",
    "/settings/payment-providers/",
    "/settings/payment-providers/1/",
    "/accounts/1/balance-rules/",
    "/billing/",
    "/billing/runs/new/",
    "/billing/bills/",
    "/billing/bills/?overdue=1",
    "/billing/arrears/",
    "/billing/payments/",
    "/billing/charges/",
    "/billing/charges/new/",
    "/billing/public-areas/",
    "/billing/public-areas/new/",
    "/billing/line-loss/",
    "/billing/line-loss/new/",
    "/billing/schedules/",
    "/billing/templates/",
    "/billing/templates/new/?language=zh-hans",
    "/billing/branding/",
    "/api/v1/docs",
]
# Object pages reached from a list: (list page, link to follow, screenshot name).
FOLLOW = [
    ("/billing/", "[data-testid=runs] tbody a", "billing-run"),
    ("/billing/bills/", "[data-testid=bills] tbody a", "billing-bill"),
    ("/billing/charges/", "[data-testid=charge-items] tbody a", "billing-charge-item"),
    ("/billing/public-areas/", "[data-testid=allocation-groups] tbody a", "billing-public-area"),
    ("/billing/line-loss/", "[data-testid=loss-groups] tbody a", "billing-line-loss-group"),
]


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000"
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "artifacts/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for lang in ("en", "zh-hans"):
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.context.add_cookies([{"name": "django_language", "value": lang, "url": base}])
            page.goto(base + "/login/")
            page.screenshot(path=out / f"{lang}-login.png")
            page.fill("#id_username", "owner")
            page.fill("#id_password", "demo")
            page.click("button[type=submit]")
            for path in PAGES:
                page.goto(base + path)
                name = re.sub(r"[^a-z0-9]+", "-", path.strip("/").lower()) or "home"
                page.screenshot(path=out / f"{lang}-{name}.png", full_page=False)
            for start, link, name in FOLLOW:
                page.goto(base + start)
                if page.locator(link).count():
                    page.locator(link).first.click()
                    page.wait_for_load_state()
                    page.screenshot(path=out / f"{lang}-{name}.png", full_page=True)
            bad_rooms = out / "bad-rooms.csv"
            bad_rooms.write_text(
                "site,building,floor,room,type,area_m2\n"
                "Riverside Mall 江畔购物中心,Annex,1F,X-01,shop,20\n"
                "Riverside Mall 江畔购物中心,Annex,1F,X-02,castle,20\n"
                "Nowhere,Annex,1F,X-03,shop,-5\n",
                encoding="utf-8",
            )
            page.goto(base + "/imports/")
            page.set_input_files("input[type=file]", str(bad_rooms))
            page.click("#import-form button[type=submit]")
            page.wait_for_selector("#import-summary")
            page.screenshot(path=out / f"{lang}-import-preview-errors.png", full_page=True)
            bad_rooms.unlink()
            page.close()
        browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
