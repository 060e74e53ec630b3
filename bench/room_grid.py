"""The room grid at a utility's scale: server time per grid render, and its queries.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterpay_bench \\
        uv run python bench/room_grid.py [--rooms 5000] [--repeat 30]

Runs against a fresh test database (``DATABASE_URL`` → ``test_<name>``; SQLite in memory
without it, for a small smoke run). One organisation with ``--rooms`` rooms (10 buildings of
20 floors), each with an electricity meter and every third with a water meter too; nine rooms
in ten have an account: prepaid, postpaid and meter-side, with balances and supply states that
cover every fee status, bills past their due date, offline meters and commands in flight
(written in bulk, not through the services: the grid only reads them).

Each view is rendered ``--repeat`` times through Django's test client (middleware, view,
template and every query, no network): the whole page, the live refresh (the htmx partial
the page polls every 10 s), a fee-status filter, the most urgent first, and a late page.
Prints p50 / p95 / max in milliseconds and the number of queries of each. Target: p50 of the
live refresh ≤ 300 ms on PostgreSQL. Figures, machine and command: docs/rooms.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "src"))

BUILDINGS, FLOORS = 10, 20
TARGET_MS = 300.0


def generate(rooms: int, seed: int = 16) -> Any:
    """The organisation, in bulk; returns its owner."""
    from django.utils import timezone

    from meterpay.apps.billing.models import Bill
    from meterpay.apps.control.models import MeterBalance, MeterCommand, MeterSupplyState
    from meterpay.apps.customers.models import Account, Customer
    from meterpay.apps.ledger.models import LedgerAccount, Wallet
    from meterpay.apps.meters.models import Gateway, Meter
    from meterpay.apps.organisations.models import Organisation
    from meterpay.apps.readings.models import MeterLink
    from meterpay.apps.sites.models import Building, Floor, Room, Site
    from meterpay.apps.supply.models import BalancePolicy
    from meterpay.apps.users.services import staff_user_create

    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate(now)
    org = Organisation.objects.create(name="Bench campus", slug="bench")
    owner = staff_user_create(
        actor="bench", organisation=org, username="bench-owner", password="x" * 12, role="owner"
    )
    BalancePolicy.objects.create(organisation=org, alarm_thresholds_minor=[5000, 2000, 500])
    site = Site.objects.create(organisation=org, name="North campus", kind="campus")
    buildings = Building.objects.bulk_create(
        Building(organisation=org, site=site, name=f"Building {b + 1}") for b in range(BUILDINGS)
    )
    floors = Floor.objects.bulk_create(
        Floor(organisation=org, building=b, name=f"{f + 1}F", level=f + 1)
        for b in buildings
        for f in range(FLOORS)
    )
    per_floor = -(-rooms // len(floors))
    room_rows = Room.objects.bulk_create(
        Room(
            organisation=org,
            floor=floors[n // per_floor],
            number=f"{floors[n // per_floor].level}{n % per_floor + 1:02d}",
            kind="dormitory" if n % 4 else "shop",
            area_m2=18,
        )
        for n in range(rooms)
    )
    electricity_gateway = Gateway.objects.create(
        organisation=org, site=site, identifier="DTU-bench", kind="dtu_4g", protocol="dlt645"
    )
    water_gateway = Gateway.objects.create(
        organisation=org, site=site, identifier="DTU-bench-w", kind="dtu_4g", protocol="cjt188"
    )
    customers = Customer.objects.bulk_create(
        Customer(organisation=org, name=f"Tenant {n:05d}") for n in range(rooms)
    )
    plans: list[tuple[int, str, str]] = []  # (room index, mode, side) of occupied rooms
    for n in range(rooms):
        if n % 10 == 9:
            continue  # vacant
        mode = "postpaid" if n % 10 == 7 else "prepaid"
        side = "meter" if n % 10 == 8 else "platform"
        plans.append((n, mode, side))
    accounts = Account.objects.bulk_create(
        Account(
            organisation=org,
            customer=customers[n],
            number=f"A{n + 1:06d}",
            billing_mode=mode,
            billing_side=side,
            status="suspended" if n % 50 == 3 else "open",
            opened_at=now - timedelta(days=90),
            move_in_on=today - timedelta(days=90),
        )
        for n, mode, side in plans
    )
    through = Account.rooms.through
    through.objects.bulk_create(
        through(account_id=a.pk, room_id=room_rows[n].pk)
        for a, (n, _m, _s) in zip(accounts, plans, strict=True)
    )
    ledger = LedgerAccount.objects.bulk_create(
        LedgerAccount(organisation=org, code=f"wallet:{a.pk}", kind="wallet") for a in accounts
    )
    wallets = []
    for account, ledger_account, (_n, mode, _side) in zip(accounts, ledger, plans, strict=True):
        balance = rng.choice([12000, 8000, 4000, 1500, 300, 0, -400]) if mode == "prepaid" else 0
        if mode == "postpaid":
            balance = -rng.randint(0, 40000)
        supply = "on"
        if mode == "prepaid" and balance < 0 and rng.random() < 0.5:
            supply = "cut_for_balance"
        wallets.append(
            Wallet(
                organisation=org,
                account=account,
                ledger_account=ledger_account,
                balance_minor=balance,
                supply=supply,
            )
        )
    Wallet.objects.bulk_create(wallets)
    by_room = {n: a for a, (n, _m, _s) in zip(accounts, plans, strict=True)}
    meters = []
    for n, room in enumerate(room_rows):
        account = by_room.get(n)
        meters.append(
            Meter(
                organisation=org,
                kind="electricity_1p",
                protocol="dlt645",
                address=f"{n + 1:012d}",
                gateway=electricity_gateway,
                room=room,
                account=account,
            )
        )
        if n % 3 == 0:
            meters.append(
                Meter(
                    organisation=org,
                    kind="water",
                    protocol="cjt188",
                    address=f"{n + 1:014d}",
                    gateway=water_gateway,
                    room=room,
                    account=account,
                )
            )
    meters = Meter.objects.bulk_create(meters)
    links, supplies, balances, commands = [], [], [], []
    for meter in meters:
        online = rng.random() > 0.04
        links.append(
            MeterLink(
                organisation=org,
                meter=meter,
                online=online,
                last_seen_at=now - timedelta(minutes=rng.randint(1, 30)),
                offline_since=None if online else now - timedelta(hours=rng.randint(1, 72)),
            )
        )
        reported = "off" if rng.random() < 0.05 else "on"
        supplies.append(
            MeterSupplyState(
                organisation=org, meter=meter, desired=reported, reported=reported, reported_at=now
            )
        )
        if meter.account_id and meter.kind != "water" and meter.address.endswith(("9",)):
            balances.append(
                MeterBalance(
                    organisation=org,
                    meter=meter,
                    remaining_minor=rng.randint(0, 20000),
                    purchase_count=3,
                    reported_at=now,
                    managed=True,
                )
            )
        if rng.random() < 0.01:
            commands.append(
                MeterCommand(
                    organisation=org,
                    meter=meter,
                    kind="relay_trip" if meter.kind != "water" else "valve_close",
                    requested_by="operator",
                    next_attempt_at=now,
                )
            )
    MeterLink.objects.bulk_create(links)
    MeterSupplyState.objects.bulk_create(supplies)
    MeterBalance.objects.bulk_create(balances)
    MeterCommand.objects.bulk_create(commands)
    bills = []
    for account, (n, mode, _side) in zip(accounts, plans, strict=True):
        if mode == "postpaid" or n % 25 == 0:
            overdue = rng.random() < 0.4
            bills.append(
                Bill(
                    organisation=org,
                    number=f"B{n:06d}",
                    account=account,
                    kind="statement" if mode == "postpaid" else "request",
                    status="issued",
                    settles="wallet" if mode == "postpaid" else "receivable",
                    period_end=today.replace(day=1),
                    total_minor=9000,
                    due_minor=9000,
                    unpaid_minor=9000,
                    due_on=today - timedelta(days=5) if overdue else today + timedelta(days=10),
                )
            )
    Bill.objects.bulk_create(bills)
    return owner


def measure(
    client: Any, params: dict[str, str], repeat: int, htmx: bool
) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    times = []
    queries = 0
    for n in range(repeat + 1):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get("/rooms/", params, **headers)
            elapsed = (time.perf_counter() - began) * 1000
        assert response.status_code == 200, response.status_code
        if n:  # the first warms the caches (templates, translations)
            times.append(elapsed)
        queries = len(captured)
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "meterpay.settings"
    os.environ["METERPAY_VAR"] = tempfile.mkdtemp(prefix="meterpay-bench-")
    os.environ.pop("HUEY_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    # the test client's host; no setup_test_environment: its template instrumentation would
    # be timed too, and a real server has none
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"database            {connection.vendor} ({connection.settings_dict['NAME']})")
        print(
            f"machine             {platform.machine()}, {os.cpu_count()} CPUs,"
            f" {platform.system()}, Python {platform.python_version()},"
            f" load average {os.getloadavg()[0]:.2f}"
        )
        began = time.perf_counter()
        owner = generate(args.rooms)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        print(f"generated           {args.rooms:,} rooms in {time.perf_counter() - began:.1f} s")
        client = Client()
        client.force_login(owner)
        pages = args.rooms // 120
        views = [
            ("whole page", {}, False),
            ("live refresh", {}, True),
            ("fee=alarm_1", {"fee": "alarm_1"}, True),
            ("order=urgent", {"order": "urgent"}, True),
            (f"page {pages}", {"page": str(pages)}, True),
        ]
        verdict = ""
        for label, params, htmx in views:
            times, queries = measure(client, params, args.repeat, htmx)
            p50 = statistics.median(times)
            p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
            print(
                f"{label:<19} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {max(times):6.1f} ms"
                f"   {queries} queries"
            )
            if label == "live refresh":
                verdict = "met" if p50 <= TARGET_MS else "MISSED"
        print(f"target              live refresh p50 ≤ {TARGET_MS:.0f} ms: {verdict}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
