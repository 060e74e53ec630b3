"""The room page as the operator's cockpit, in a real browser against simulated meters: the
owner opens room 101 from the grid, sells energy at the counter, trips the relay and closes it
again; the real gateway process sends the commands to a virtual DL/T 645 meter behind a virtual
DTU and confirms them by reading it. The balance, the command's progress and the supply change
on the page without a reload. Then the grid and the room page are photographed in English and
in Chinese (``artifacts/screenshots/room-cockpit-*.png``), and the Chinese page is checked for
English words that are not names."""

from __future__ import annotations

import asyncio
import re
import threading
from decimal import Decimal
from typing import Any

import pytest

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.ledger.models import Wallet
from meterpay.apps.ledger.services import wallet_for
from meterpay.apps.meters import services as meters
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings.models import MeterLink
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.simulate.bus import VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import (
    Cjt188Responder,
    Dlt645Responder,
    VirtualElectricityMeter,
    VirtualWaterMeter,
)
from meterpay.simulate.servers import VirtualDtu
from tests.e2e.test_browser import SHOTS, browser  # noqa: F401 - the fixture
from tests.factories import PASSWORD, build_org
from tests.gateway.test_e2e_prepaid import running_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: Words that may stay in Latin letters on a Chinese page: names (of people, sites, tariffs,
#: users, the product), units, protocol names and codes.
NAMES = {
    "meterpay",
    "kWh",
    "DTU",
    "e2erc",
    "Customer",
    "Site",
    "owner",
    "Wang",
    "Fang",
    "Zhang",
    "Wei",
    "Liu",
    "Yang",
    "Chen",
    "Jing",
    "Zhao",
    "Lei",
    "Sun",
    "Zhou",
    "Min",
}


class Gateway(threading.Thread):
    """The real gateway process with virtual DTUs connected to it, in a thread of their own."""

    def __init__(self, dtus: list[VirtualDtu]) -> None:
        super().__init__(daemon=True)
        self.dtus = dtus
        self.ready = threading.Event()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.ready.set()

    async def _serve(self) -> None:
        from asgiref.sync import sync_to_async
        from django.db import connections

        try:
            async with running_gateway(self.dtus, tick=5.0):
                self.ready.set()
                while not self.done.is_set():
                    await asyncio.sleep(0.1)
        finally:  # the worker thread's connection, so the test database can be dropped
            await sync_to_async(connections.close_all, thread_sensitive=True)()


@pytest.fixture
def one_writer(monkeypatch: Any) -> Any:
    """SQLite only: the test database lives in memory, shared by the live server's connection
    and the gateway's, and a shared in-memory database refuses a second writer at once
    ("database table is locked") instead of waiting. So here the gateway's database calls and
    the live server's requests take turns, and reads do not lock (read_uncommitted), as a
    real deployment's WAL file lets them. PostgreSQL needs none of this."""
    from django.core.handlers.base import BaseHandler
    from django.db import connection
    from django.db.backends.signals import connection_created

    from meterpay.gateway.db_port import DbPort

    if connection.vendor != "sqlite":
        yield
        return
    turn = threading.RLock()

    def uncommitted(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA read_uncommitted = 1")

    connection_created.connect(uncommitted)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA read_uncommitted = 1")
    db = DbPort._db
    get_response = BaseHandler.get_response

    async def db_in_turn(function: Any, *args: Any, **kwargs: Any) -> Any:
        def in_turn(*a: Any, **k: Any) -> Any:
            with turn:
                return function(*a, **k)

        return await db(in_turn, *args, **kwargs)

    def response_in_turn(self: Any, request: Any) -> Any:
        with turn:
            return get_response(self, request)

    monkeypatch.setattr(DbPort, "_db", staticmethod(db_in_turn))
    monkeypatch.setattr(BaseHandler, "get_response", response_in_turn)
    yield
    connection_created.disconnect(uncommitted)


def _login(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


def _balance(page: Any) -> Decimal:
    return Decimal(page.inner_text("[data-testid=balance]").replace(",", "").strip())


def test_operator_recharges_trips_and_closes_the_relay(
    live_server: Any,
    browser: Any,  # noqa: F811
    one_writer: Any,
) -> None:
    org = build_org("e2erc", 970)
    water_gateway = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-e2erc-W", kind="dtu_4g", protocol="cjt188"
    )
    water = meters.meter_create(
        actor="t",
        organisation=org.org,
        kind="water",
        protocol="cjt188",
        address="00000000000971",
        gateway=water_gateway,
        room=org.room,
    )
    for meter in (org.meter, water):
        meter_link_set_max_demand(actor="t", meter=meter, max_demand=Decimal(1000))
    recharge_record(
        actor="t", account=org.account, amount="20.00", channel="cash", idempotency_key="first"
    )
    _more_rooms(org)
    clock = ScaledClock(speed=1)
    virtual = VirtualElectricityMeter(org.meter.address, clock)
    virtual.prepaid = False  # the platform holds the money
    virtual_water = VirtualWaterMeter(water.address, clock)
    dtus = [
        VirtualDtu(org.gateway.identifier, VirtualBus([Dlt645Responder(virtual)]), "127.0.0.1", 0),
        VirtualDtu(
            water_gateway.identifier, VirtualBus([Cjt188Responder(virtual_water)]), "127.0.0.1", 0
        ),
    ]
    gateway = Gateway(dtus)
    gateway.start()
    assert gateway.ready.wait(30) and gateway.error is None, gateway.error
    try:
        _until(lambda: MeterLink.objects.filter(meter=org.meter, online=True).exists(), "online")
        _scenario(live_server.url, browser, org, virtual)
        _photograph(live_server.url, browser, org)
    finally:
        gateway.done.set()
        gateway.join(15)


def _more_rooms(org: Any) -> None:
    """Rooms 103-109, one for each fee status, so the grid shows its colours (written before
    the gateway starts; their meters are behind a gateway that never connects)."""
    from datetime import timedelta

    from django.utils import timezone

    from meterpay.apps.billing.models import Bill
    from meterpay.apps.control.models import MeterBalance, MeterSupplyState
    from meterpay.apps.customers import services as customers
    from meterpay.apps.customers.models import Account
    from meterpay.apps.sites import services as sites

    elsewhere = meters.gateway_create(
        actor="t", site=org.site, identifier="DTU-e2erc-X", kind="dtu_4g", protocol="dlt645"
    )
    plans = [
        ("103", "Wang Fang", {"recharge": "40.00"}),
        ("104", "Zhang Wei", {"recharge": "3.00"}),
        ("105", "Liu Yang", {"balance": -500}),
        ("106", "Chen Jing", {"balance": -1200, "supply": "cut_for_balance"}),
        ("107", "Zhao Lei", {"mode": "postpaid", "overdue": 8650}),
        ("108", "Sun Li", {"side": "meter", "on_meter": 1000}),
        ("109", "Zhou Min", {"preset": True}),
    ]
    for number, name, plan in plans:
        room = sites.room_create(
            actor="t", floor=org.floor, number=number, kind="shop", area_m2=Decimal(20)
        )
        meter = meters.meter_create(
            actor="t",
            organisation=org.org,
            kind="electricity_1p",
            protocol="dlt645",
            address=f"{9700 + int(number):012d}",
            gateway=elsewhere,
            room=room,
        )
        customer = customers.customer_create(actor="t", organisation=org.org, name=name)
        make = customers.account_preset if plan.get("preset") else customers.account_open_new
        account = make(
            actor="t",
            customer=customer,
            rooms=[room],
            meters=[meter],
            billing_mode=str(plan.get("mode", "prepaid")),
            billing_side=str(plan.get("side", "platform")),
        )
        if "recharge" in plan:
            recharge_record(
                actor="t",
                account=account,
                amount=str(plan["recharge"]),
                channel="cash",
                idempotency_key=f"more-{number}",
            )
        if "balance" in plan:
            wallet = wallet_for(account)
            Wallet.objects.filter(pk=wallet.pk).update(
                balance_minor=plan["balance"], supply=plan.get("supply", "on")
            )
            if plan.get("supply"):
                MeterSupplyState.objects.create(
                    organisation=org.org, meter=meter, desired="off", reported="off"
                )
        if "overdue" in plan:
            wallet = wallet_for(account)
            Wallet.objects.filter(pk=wallet.pk).update(balance_minor=-plan["overdue"])
            Bill.objects.create(
                organisation=org.org,
                number=f"B-{number}",
                account=account,
                status=Bill.Status.ISSUED,
                settles=Bill.Settles.WALLET,
                period_end=timezone.localdate() - timedelta(days=20),
                total_minor=plan["overdue"],
                due_minor=plan["overdue"],
                unpaid_minor=plan["overdue"],
                due_on=timezone.localdate() - timedelta(days=5),
            )
        if "on_meter" in plan:
            MeterBalance.objects.create(
                organisation=org.org,
                meter=meter,
                remaining_minor=plan["on_meter"],
                purchase_count=2,
                reported_at=timezone.now(),
                managed=True,
            )
        assert Account.objects.filter(pk=account.pk).exists()


def _until(condition: Any, what: str, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _scenario(base: str, chromium: Any, org: Any, virtual: VirtualElectricityMeter) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page(viewport={"width": 1366, "height": 900})
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": base}])
    _login(page, base, org.users["owner"].username)
    page.click("nav >> text=Room monitoring")
    page.wait_for_selector(".room-grid")
    fees = {
        room.get_attribute("data-room"): room.get_attribute("data-fee")
        for room in page.locator(".room").all()
    }
    assert fees == {
        "101": "alarm_2",  # 20.00: at alarm level 2
        "102": "",
        "103": "alarm_1",
        "104": "alarm_3",
        "105": "overdrawn",
        "106": "cut_off",
        "107": "arrears",
        "108": "meter_low",
        "109": "normal",
    }
    tile = page.locator(".room[data-room='101']")
    assert tile.get_attribute("data-fee") == "alarm_2"  # 20.00: at alarm level 2
    assert "20.00" in tile.inner_text()
    tile.click()
    page.wait_for_selector("[data-testid=balance]")
    assert page.url.endswith(f"/rooms/{org.room.pk}/")
    page.evaluate("window.__notReloaded = true")
    assert _balance(page) == Decimal("20.00")

    # sell energy: a confirmation dialog, then the balance changes in place
    page.click("button[data-op=recharge]")
    dialog = page.locator("#dlg-recharge")
    dialog.locator("input[name=amount]").fill("50.00")
    page.screenshot(path=SHOTS / "room-cockpit-en-recharge-dialog.png", full_page=False)
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=op-result][data-ok='1']")
    page.wait_for_function(
        "document.querySelector('[data-testid=balance]').innerText.trim() === '70.00'"
    )
    assert Wallet.objects.get(account=org.account).balance_minor == 7000
    assert page.inner_text("[data-testid=fee-status]") == "Normal"  # was "Alarm level 2"

    # trip the relay: the gateway sends it, reads the meter, the page follows it to the end
    page.click(f"button[data-command=relay_trip][data-meter='{org.meter.pk}']")
    trip = page.locator(f"#dlg-relay_trip-{org.meter.pk}")
    trip.locator("input[name=reason]").fill("browser test")
    trip.locator("button[type=submit]").click()
    page.wait_for_selector("[data-testid=command]")
    page.wait_for_selector("[data-testid=command][data-status=confirmed]", timeout=45_000)
    assert not virtual.relay_closed
    page.wait_for_selector(f"[data-testid=supply-{org.meter.pk}][data-supply=off]", timeout=20_000)
    assert "Relay tripped" in page.inner_text(f"[data-testid=supply-{org.meter.pk}]")
    page.screenshot(path=SHOTS / "room-cockpit-en-tripped.png", full_page=True)

    # close it again
    page.click(f"button[data-command=relay_close][data-meter='{org.meter.pk}']")
    page.locator(f"#dlg-relay_close-{org.meter.pk} button[type=submit]").click()
    page.wait_for_selector(
        "[data-testid=command][data-status=confirmed]:has-text('Close relay')", timeout=45_000
    )
    assert virtual.relay_closed
    page.wait_for_selector(f"[data-testid=supply-{org.meter.pk}][data-supply=on]", timeout=20_000)
    assert page.evaluate("window.__notReloaded === true")  # all of it without a reload
    assert _balance(page) == Decimal("70.00")
    commands = list(
        MeterCommand.objects.filter(meter=org.meter).order_by("id").values_list("kind", "status")
    )
    assert commands == [("relay_trip", "confirmed"), ("relay_close", "confirmed")]
    page.screenshot(path=SHOTS / "room-cockpit-en-room.png", full_page=True)
    page.close()


def _english_words(text: str, org: Any) -> list[str]:
    names = {*NAMES, org.account.number, *(u.username for u in org.users.values())}
    words = re.findall(r"\b[A-Za-z][A-Za-z0-9\-]{2,}\b", text)
    return [w for w in words if w not in names]


def _photograph(base: str, chromium: Any, org: Any) -> None:
    for language in ("en", "zh-hans"):
        page = chromium.new_page(viewport={"width": 1366, "height": 900})
        page.context.add_cookies([{"name": "django_language", "value": language, "url": base}])
        _login(page, base, org.users["owner"].username)
        page.goto(base + "/rooms/")
        page.wait_for_selector(".room-grid")
        page.click("#room-legend summary")
        page.screenshot(path=SHOTS / f"room-cockpit-{language}-grid.png", full_page=True)
        grid_text = page.inner_text("main")
        page.goto(f"{base}/rooms/{org.room.pk}/")
        page.wait_for_selector("[data-testid=balance]")
        page.wait_for_timeout(800)  # the chart draws itself
        page.screenshot(path=SHOTS / f"room-cockpit-{language}-room.png", full_page=True)
        room_text = page.inner_text("main")
        page.click("button[data-op=settle_close]")
        page.screenshot(path=SHOTS / f"room-cockpit-{language}-settle-dialog.png")
        page.keyboard.press("Escape")
        page.goto(f"{base}/rooms/{org.vacant_room.pk}/")
        page.screenshot(path=SHOTS / f"room-cockpit-{language}-vacant.png", full_page=True)
        vacant_text = page.inner_text("main")
        if language == "zh-hans":
            for where, text in (("grid", grid_text), ("room", room_text), ("vacant", vacant_text)):
                assert _english_words(text, org) == [], (where, _english_words(text, org))
        page.close()
