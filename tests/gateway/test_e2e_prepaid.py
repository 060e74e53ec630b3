"""The prepaid loop end to end on simulators, for a dormitory room's electricity meter (relay)
and for a water meter (valve):

a virtual meter behind a virtual DTU consumes on a fast clock → the real gateway process
polls it and stores readings → the deduction job rates them and posts deductions → the three
balance alarms are sent in order → at zero the cut-off command is written with the deduction,
the gateway sends it and the simulated relay/valve opens → the tenant pays online through the
portal's demo payment page (a signed provider notification, the path real providers take) →
the restore command goes out, the relay/valve closes again and consumption resumes.

No mocks above the wire. Runs on SQLite and (``DATABASE_URL=postgres://…``) on PostgreSQL.
The safety-net tick is 60 s: every command goes out through the commit wake-up
(LISTEN/NOTIFY on PostgreSQL, the short poll on SQLite). Protected periods (nights, weekends,
holidays) and quiet hours are switched off in the policy, so the time of day cannot matter.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core import mail
from django.test import Client
from django.urls import reverse

from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF, DEMO_WATER_TARIFF
from meterpay.apps.control.models import MeterCommand, MeterSupplyState
from meterpay.apps.customers import services as customers
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.models import JournalEntry, Wallet
from meterpay.apps.meters import services as meters
from meterpay.apps.meters.models import Meter
from meterpay.apps.notifications.models import Notification
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments.models import Recharge
from meterpay.apps.payments.online import demo_providers_create
from meterpay.apps.payments.services import recharge_record
from meterpay.apps.readings.models import RegisterRead
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.apps.sites import services as sites
from meterpay.apps.supply.models import BalancePolicy
from meterpay.apps.tariffs.services import default_tariffs_create
from meterpay.apps.users.models import User
from meterpay.apps.users.services import tenant_user_create
from meterpay.gateway.command_wakeups import command_wakeups
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.process import GatewayProcess, ProcessOptions
from meterpay.simulate.bus import VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import (
    Cjt188Responder,
    Dlt645Responder,
    VirtualElectricityMeter,
    VirtualWaterMeter,
)
from meterpay.simulate.profiles import ConsumptionProfile
from meterpay.simulate.servers import VirtualDtu
from tests.factories import PASSWORD
from tests.gateway.test_process import until

pytestmark = pytest.mark.django_db(transaction=True)

#: One simulated hour per real second.
SPEED = 3600
#: Steady demand, so the balance runs down at a known pace: 1 kW x 0.68 CNY/kWh = 0.68 CNY per
#: real second for electricity, 0.2 m³/h x 3.64 CNY/m³ = 0.73 CNY/s for water. Polled every
#: 0.2 s, one deduction is about 0.14 CNY: far below the 1.00 CNY between alarm thresholds,
#: so each threshold is crossed on its own.
STEADY_ELECTRICITY = ConsumptionProfile("steady electricity", Decimal("1.0"), (1.0,) * 24)
STEADY_WATER = ConsumptionProfile("steady water", Decimal("0.2"), (1.0,) * 24)
OPENING_BALANCE = "3.50"
THRESHOLDS_MINOR = [300, 200, 100]


@dataclass
class Room:
    org: Organisation
    meter: Meter
    account: Account
    tenant: User
    gateway: str


def dormitory_room(slug: str, *, water: bool) -> Room:
    """A campus with a dormitory room whose prepaid account has a small balance."""
    actor = "test"
    org = Organisation.objects.create(name=f"University {slug}", slug=slug)
    site = sites.site_create(actor=actor, organisation=org, name="North campus", kind="campus")
    building = sites.building_create(actor=actor, site=site, name="Dormitory 3")
    floor = sites.floor_create(actor=actor, building=building, name="2F", level=2)
    room = sites.room_create(
        actor=actor, floor=floor, number="3-212", kind="dormitory", area_m2=Decimal("18.00")
    )
    protocol = "cjt188" if water else "dlt645"
    gateway = meters.gateway_create(
        actor=actor, site=site, identifier=f"DTU-{slug}", kind="dtu_4g", protocol=protocol
    )
    meter = meters.meter_create(
        actor=actor,
        organisation=org,
        kind="water" if water else "electricity_1p",
        protocol=protocol,
        address="00000000003212" if water else "000000003212",
        gateway=gateway,
        room=room,
    )
    # the clock runs x3600: an hour's use arrives every real second
    meter_link_set_max_demand(actor=actor, meter=meter, max_demand=Decimal(100000))
    BalancePolicy.objects.create(
        organisation=org,
        alarm_thresholds_minor=THRESHOLDS_MINOR,
        restore_threshold_minor=0,
        night_start=None,
        night_end=None,
        protect_weekends=False,
        protect_holidays=False,
        quiet_start=None,
        quiet_end=None,
    )
    default_tariffs_create(
        actor=actor, organisation=org, electricity=DEMO_ELECTRICITY_TARIFF, water=DEMO_WATER_TARIFF
    )
    demo_providers_create(actor=actor, organisation=org)
    customer = customers.customer_create(
        actor=actor, organisation=org, name="Li Wei", phone="13900000000", email="li@example.test"
    )
    account = customers.account_open_new(
        actor=actor, customer=customer, rooms=[room], meters=[meter]
    )
    recharge_record(
        actor=actor,
        account=account,
        amount=OPENING_BALANCE,
        channel="cash",
        idempotency_key=f"{slug}-opening",
    )
    tenant = tenant_user_create(
        actor=actor, customer=customer, username=f"{slug}-tenant", password=PASSWORD
    )
    return Room(org, meter, account, tenant, gateway.identifier)


class RecordedWakeups:
    """A wake-up source that notes each wake-up in ``events`` before passing it on."""

    def __init__(self, inner: Any, events: list[str]) -> None:
        self.inner = inner
        self.events = events
        self.listening = inner.listening

    async def run(self, wake: Callable[[], None]) -> None:
        def recorded() -> None:
            self.events.append("wake")
            wake()

        await self.inner.run(recorded)


@asynccontextmanager
async def running_gateway(
    dtus: Sequence[VirtualDtu],
    *,
    tick: float = 60.0,
    wakeup: str = "auto",
    events: list[str] | None = None,
) -> AsyncIterator[GatewayProcess]:
    """The real gateway process (DtuServer, DbPort, GatewayProcess) with DTUs connected to it.

    With ``events``, wake-ups are noted there.
    """
    port = DbPort(
        intervals=PollIntervals(electricity=0.2, water=0.2),
        backoff_base=timedelta(0),
        batch_size=20,
        batch_delay=0.02,
    )
    server = DtuServer(port, listen_port=0, request_timeout=1.0)
    listen = await server.start()
    wakeups: Any = await sync_to_async(command_wakeups)(wakeup, poll_every=0.05)
    if wakeups is not None and events is not None:
        wakeups = RecordedWakeups(wakeups, events)
    process = GatewayProcess(
        server, port, ProcessOptions(tick=tick, plan_refresh=60), wakeups=wakeups
    )
    for dtu in dtus:
        dtu.port = listen
    tasks = [asyncio.create_task(process.run()), *(asyncio.create_task(d.run()) for d in dtus)]
    try:
        for dtu in dtus:
            await server.wait_for_dtu(dtu.dtu_id)
        if wakeups is not None:
            await asyncio.wait_for(wakeups.listening.wait(), 10)
        yield process
    finally:
        process.stop()
        for dtu in dtus:
            dtu.stop()
        await server.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await port.close()


def pay_online(tenant: User, account: Account, amount: str) -> dict[str, Any]:
    """The tenant pays on the portal's demo payment page; its signed notification is delivered
    to the provider notification endpoint over HTTP, as the page's script does."""
    client = Client()
    assert client.login(username=tenant.username, password=PASSWORD)
    chosen = client.post(
        reverse("portal:pay", args=[account.pk]), {"amount": amount, "provider": "wechat"}
    )
    assert chosen.status_code == 302, chosen.content
    page = client.get(chosen["Location"])
    assert page.status_code == 200
    simulated = client.post(chosen["Location"], headers={"X-Simulator": "fetch"})
    assert simulated.status_code == 200
    notification = simulated.json()
    delivered = client.post(
        notification["url"],
        data=base64.b64decode(notification["body_b64"]),
        content_type=notification["content_type"],
        headers=notification["headers"],
    )
    assert delivered.status_code == 204, delivered.content  # WeChat Pay: "received"
    return notification


def supply_is(meter: Meter, state: str) -> bool:
    return MeterSupplyState.objects.filter(meter=meter, desired=state, reported=state).exists()


def confirmed(meter: Meter, kind: str) -> bool:
    return MeterCommand.objects.filter(meter=meter, kind=kind, status="confirmed").exists()


@pytest.mark.parametrize("utility", ["electricity", "water"])
def test_prepaid_room_runs_down_is_cut_off_pays_online_and_is_restored(utility: str) -> None:
    water = utility == "water"
    room = dormitory_room(f"dorm-{utility}", water=water)
    clock = ScaledClock(speed=SPEED)
    virtual: VirtualElectricityMeter | VirtualWaterMeter
    if water:
        virtual = VirtualWaterMeter(room.meter.address, clock, profile=STEADY_WATER)
        responder: Any = Cjt188Responder(virtual)
        cut, restore = "valve_close", "valve_open"
    else:
        virtual = VirtualElectricityMeter(room.meter.address, clock, profile=STEADY_ELECTRICITY)
        virtual.prepaid = False  # the platform keeps the money, not the meter
        virtual.enforce_command_expiry = False  # the meter's clock runs x3600
        responder = Dlt645Responder(virtual)
        cut, restore = "relay_trip", "relay_close"

    def supply_on() -> bool:
        return (
            virtual.valve_open if isinstance(virtual, VirtualWaterMeter) else virtual.relay_closed
        )

    def used() -> Decimal:
        if isinstance(virtual, VirtualWaterMeter):
            return virtual.volume
        return virtual.energy_total

    dtu = VirtualDtu(room.gateway, VirtualBus([responder]), "127.0.0.1", 0, reconnect_delay=0.1)

    async def scenario() -> None:
        async with running_gateway([dtu]):
            # 1. consumption runs the balance down: three alarms, then the cut-off
            await until(lambda: confirmed(room.meter, cut), f"{cut} confirmed", timeout=30)
            assert not supply_on()
            await until(lambda: supply_is(room.meter, "off"), "reported supply off")
            reads = await sync_to_async(RegisterRead.objects.filter(meter=room.meter).count)()
            stopped_at = used()
            await until(
                lambda: RegisterRead.objects.filter(meter=room.meter).count() >= reads + 3,
                "three more reads",
            )
            assert used() == stopped_at  # cut off: nothing flows

            # 2. the tenant pays online; the restore command goes out and supply comes back
            await sync_to_async(pay_online)(room.tenant, room.account, "20.00")
            await until(lambda: confirmed(room.meter, restore), f"{restore} confirmed")
            assert supply_on()
            await until(lambda: supply_is(room.meter, "on"), "reported supply on")

            # 3. consumption resumes and is deducted again
            paid = await sync_to_async(Recharge.objects.select_related("entry").get)(
                account=room.account, provider="wechat", status="paid"
            )
            assert paid.entry is not None and paid.amount_minor == 2000
            await until(
                lambda: JournalEntry.objects.filter(
                    account=room.account, kind="deduction", pk__gt=paid.entry.pk
                ).exists(),
                "a deduction after the payment",
            )
            assert used() > stopped_at

    asyncio.run(scenario())

    alarms = list(Notification.objects.filter(account=room.account).order_by("created_at", "pk"))
    kinds = [(n.kind, n.level) for n in alarms]
    assert kinds[:5] == [
        ("alarm", 1),
        ("alarm", 2),
        ("alarm", 3),
        ("cut_off", None),
        ("restore", None),
    ], kinds
    for notification in alarms[:5]:
        assert notification.status == "sent"
        assert notification.result == "e-mail to li@example.test"
    assert [m.subject for m in mail.outbox[:3]] == [n.subject for n in alarms[:3]]
    commands = list(
        MeterCommand.objects.filter(meter=room.meter)
        .order_by("created_at", "pk")
        .values_list("kind", "requested_by", "status")
    )
    assert commands == [
        (cut, "balance_rule", "confirmed"),
        (restore, "balance_rule", "confirmed"),
    ]
    # the cut-off was written by the deduction that used the credit up, in its transaction
    trip = MeterCommand.objects.get(meter=room.meter, kind=cut)
    entry = (
        JournalEntry.objects.filter(account=room.account, kind="deduction")
        .filter(created_at__lte=trip.created_at)
        .latest("created_at", "pk")
    )
    wallet = Wallet.objects.get(account=room.account)
    assert wallet.supply == "on"
    balance_at_cut = sum(
        JournalEntry.objects.filter(account=room.account, pk__lte=entry.pk).values_list(
            "wallet_amount", flat=True
        )
    )
    assert balance_at_cut <= 0 < wallet.balance_minor
