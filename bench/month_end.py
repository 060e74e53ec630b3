"""Month-end throughput: a generated mall of many accounts billed, issued and printed.

    uv run python bench/month_end.py [--accounts 100000] [--postpaid 0.1] [--low 0.02]
        [--deduct-sample 1000] [--pdf-bills 200] [--zip-bills 200] [--workers 2]
        [--language zh-hans] [--keepdb]

Runs against a fresh test database (``DATABASE_URL``, e.g.
``postgres://postgres@127.0.0.1:5432/meterpay_month_end`` → ``test_meterpay_month_end``;
SQLite without it, for small runs only) with the production settings (jobs queued in a SQLite
queue in a temporary directory, not run inline). The month billed is the one before today.

Generated in bulk (COPY on PostgreSQL, one ``executemany`` elsewhere), not through the
services one by one:

* one site of ``--accounts`` shops (rooms of 20 to 200 m², on 20 floors of 10 buildings, a
  gateway per floor), each with a customer, an open account (``--postpaid`` of them postpaid,
  the rest prepaid and recharged in cash) and one electricity meter; a public-area room with
  its master meter; the organisation's default tariff (flat, 0.68 per kWh);
* a daily register read of every meter at local midnight and the month's daily booked
  intervals between them (as the readings pipeline stores them);
* what real-time deduction leaves behind: the rating state of every meter
  (``DeductionState``) and one deduction entry per meter and day with its postings (the job
  rates each day's interval as it arrives). Meters follow one of 97 daily load profiles; each
  profile is rated day by day with the engine's ``incremental_charge``, so every state and
  amount is the engine's own. A sample of ``--deduct-sample`` meters is first deducted by the
  real batch path (``meters_deduct_batch``, in a transaction rolled back): its speed is
  printed, and its states and amounts must equal the generated ones;
* the month end's set-up: rent per m² (a payment request) and a fixed property fee (deducted
  from the wallet) subscribed by every account, a public-area group sharing the master meter
  by room area among all accounts, a line-loss group over every meter of the site with grid
  readings at both ends of the month (4 % more than the meters).

``--low`` of the prepaid accounts end the month with little credit, so that issuing their
bills raises alarms and cuts supply as it would. Timed, with the figures printed:

1. the bill run: ``bill_run_create`` for the site (the drafts computed and stored);
2. ``bill_run_confirm``; 3. ``bill_run_issue`` (every bill posted to the ledger, settled,
   notified; the ledger is checked afterwards);
4. single bill PDFs (``documents.bill_pdf_bytes``) of ``--pdf-bills`` bills spread over the
   run; the run as one PDF file and as a zip of PDFs with ``--workers`` processes, for
   ``--zip-bills`` of its bills.

``--keepdb`` keeps the generated database and reuses it when it holds the same mall; the
timed steps then run in one transaction that is rolled back at the end (deferred constraint
checks are forced within the issue's time). Measured figures, the machine and the command:
docs/billing.md, "Performance".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
ORG = "bench-month-end"
BUILDINGS, FLOORS = 10, 20
PROFILES = 97
#: Register at the first read of meter n: spread, far from the register's limit.
START_TOTAL = 1000
FOUR = Decimal("0.0001")
TARGET_RUN_SECONDS = 60.0
TARGET_PDFS_PER_SECOND = 50.0


class _Rollback(Exception):
    pass


def say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def timed(label: str, figures: dict[str, float]) -> Iterator[None]:
    began = time.perf_counter()
    yield
    figures[label] = time.perf_counter() - began


# --------------------------------------------------------------------------- bulk writing


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


def reserve_ids(model: Any, count: int) -> list[int]:
    """``count`` new primary keys of ``model``'s table (its sequence on PostgreSQL)."""
    from django.db import connection
    from django.db.models import Max

    if count == 0:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [model._meta.db_table, count],
            )
            return [pk for (pk,) in cursor.fetchall()]
    start = (model.objects.aggregate(n=Max("pk"))["n"] or 0) + 1
    return list(range(start, start + count))


def copy_rows(model: Any, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write raw rows (column attnames, values as Python objects; JSON as text) in bulk."""
    from django.db import connection

    meta = model._meta
    fields = [meta.get_field(name.removesuffix("_id")) for name in columns]
    quote = connection.ops.quote_name
    names = ", ".join(quote(f.column) for f in fields)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks})"  # noqa: S608
        chunk: list[list[Any]] = []
        for row in rows:
            chunk.append(
                [
                    value
                    if isinstance(value, str) and f.get_internal_type() == "JSONField"
                    else f.get_db_prep_save(value, connection)
                    for f, value in zip(fields, row, strict=True)
                ]
            )
            if len(chunk) >= 5000:
                cursor.executemany(sql, chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            cursor.executemany(sql, chunk)
            count += len(chunk)
    return count


def store(model: Any, objects: Sequence[Any]) -> list[Any]:
    """Unsaved model instances written in bulk with new primary keys (auto fields filled)."""
    from django.db import connection

    if not objects:
        return []
    for obj, pk in zip(objects, reserve_ids(model, len(objects)), strict=True):
        obj.pk = pk
    fields = list(model._meta.concrete_fields)
    vendor = connection.vendor

    def value(f: Any, obj: Any) -> Any:
        raw = f.pre_save(obj, True)
        if f.get_internal_type() == "JSONField":
            return None if raw is None else json.dumps(raw)
        return raw if vendor == "postgresql" else f.get_db_prep_save(raw, connection)

    copy_rows(model, [f.attname for f in fields], ([value(f, o) for f in fields] for o in objects))
    return list(objects)


@contextmanager
def triggers_off() -> Iterator[None]:
    """PostgreSQL: row triggers (foreign key checks, the ledger's balance check) off while the
    generator writes millions of rows it built consistent; checked afterwards instead."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = origin")


# --------------------------------------------------------------------------- the mall


@dataclass
class Profile:
    """A meter's daily consumption over the month and what real-time deduction made of it."""

    days: list[Decimal]
    amounts_minor: list[int] = field(default_factory=list)  # each day's deduction
    state: dict[str, Any] = field(default_factory=dict)  # the rating state at the month's end


@dataclass
class Mall:
    org: Any
    site: Any
    start: date
    end: date
    account_ids: list[int]
    meter_ids: list[int]  # meter_ids[n] is account n's meter
    master_id: int
    profiles: list[Profile]


def day_moments(start: date, end: date, zone: ZoneInfo) -> list[datetime]:
    """Local midnights from ``start`` to ``end`` inclusive, as UTC moments (as stored)."""
    from datetime import UTC, time

    days = (end - start).days
    return [
        datetime.combine(start + timedelta(days=n), time(), tzinfo=zone).astimezone(UTC)
        for n in range(days + 1)
    ]


def make_profiles(days: int, tariff: Any, zone: ZoneInfo, moments: list[datetime]) -> list[Profile]:
    """Load profiles rated day by day as the deduction job rates them (one interval a day)."""
    from meterpay.core import tariffs
    from meterpay.core.money import round_money, to_minor

    rng = random.Random(2026)
    profiles = []
    for _n in range(PROFILES):
        base = rng.randint(1500, 20000)
        profile = Profile(
            # four places, as the interval table stores them (and the state then keeps them)
            days=[
                (Decimal(max(100, base + rng.randint(-base // 3, base // 3))) / 100).quantize(FOUR)
                for _ in range(days)
            ]
        )
        state = None
        for day, quantity in enumerate(profile.days):
            interval = tariffs.Interval(
                start=moments[day].astimezone(zone).replace(tzinfo=None),
                end=moments[day + 1].astimezone(zone).replace(tzinfo=None),
                quantity=quantity,
            )
            result = tariffs.incremental_charge(
                tariff=tariff, new_intervals=[interval], state=state
            )
            state = result.state
            profile.amounts_minor.append(
                to_minor(round_money(result.amount, tariff.currency), tariff.currency)
            )
        profile.state = dict(state or {})
        profiles.append(profile)
    return profiles


def generate(args: argparse.Namespace, figures: dict[str, float]) -> Mall:
    from django.db import connection, transaction
    from django.utils import timezone

    from meterpay.apps.billing.charges import charge_item_save
    from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF
    from meterpay.apps.billing.models import (
        AllocationMember,
        ChargeItem,
        ChargeSubscription,
    )
    from meterpay.apps.billing.runs import previous_month
    from meterpay.apps.billing.sharing import allocation_group_save, loss_group_save
    from meterpay.apps.customers.models import Account, Customer
    from meterpay.apps.ledger import services as ledger_services
    from meterpay.apps.ledger.models import JournalEntry, LedgerAccount, Posting, Wallet
    from meterpay.apps.meters.models import Gateway, Meter
    from meterpay.apps.organisations.models import Organisation
    from meterpay.apps.readings.models import Interval, RegisterRead
    from meterpay.apps.sites.models import Building, Floor, Room, Site
    from meterpay.apps.supply.models import BalancePolicy
    from meterpay.apps.tariffs.selectors import engine_tariff
    from meterpay.apps.tariffs.services import default_tariffs_create
    from meterpay.core import ledger
    from meterpay.core.ledger import Channel, ChargeType

    n = args.accounts
    zone = ZoneInfo(timezone.get_current_timezone_name())
    start, end = previous_month(timezone.localdate())
    moments = day_moments(start, end, zone)
    days = len(moments) - 1
    now = timezone.now()
    opened = moments[0] - timedelta(days=90)
    rng = random.Random(7)
    actor = "bench"

    with transaction.atomic(), timed("set-up", figures):
        org = Organisation.objects.create(name="Bench month end", slug=ORG)
        BalancePolicy.objects.create(organisation=org, alarm_thresholds_minor=[5000, 2000, 500])
        [default] = default_tariffs_create(
            actor=actor, organisation=org, electricity=DEMO_ELECTRICITY_TARIFF
        )
        tariff = engine_tariff(default.tariff)
        site = Site.objects.create(organisation=org, name="Bench mall", kind="mall")
        buildings = store(
            Building,
            [Building(organisation=org, site=site, name=f"B{b + 1}") for b in range(BUILDINGS)],
        )
        floors = store(
            Floor,
            [
                Floor(organisation=org, building=b, name=f"{f + 1}F", level=f + 1)
                for b in buildings
                for f in range(FLOORS)
            ],
        )
        gateways = store(
            Gateway,
            [
                Gateway(
                    organisation=org, site=site, identifier=f"BENCH-{fl.pk}", kind="dtu_4g",
                    protocol="dlt645",
                )
                for fl in floors
            ],
        )  # fmt: skip
        per_floor = -(-n // len(floors))
        areas = [Decimal(rng.randint(2000, 20000)) / 100 for _ in range(n)]
        rooms = store(
            Room,
            [
                Room(
                    organisation=org, floor=floors[i // per_floor], kind="shop",
                    number=f"{i // per_floor + 1:03d}-{i % per_floor + 1:04d}", area_m2=areas[i],
                )
                for i in range(n)
            ],
        )  # fmt: skip
        public = Room.objects.create(
            organisation=org, floor=floors[0], number="P1", kind="public_area"
        )
        customers = store(
            Customer,
            [
                Customer(organisation=org, name=f"Shop {i + 1}", phone="13800000000")
                for i in range(n)
            ],
        )
        postpaid = set(rng.sample(range(n), int(n * args.postpaid)))
        prepaid = [i for i in range(n) if i not in postpaid]
        low = set(rng.sample(prepaid, int(len(prepaid) * args.low)))
        accounts = store(
            Account,
            [
                Account(
                    organisation=org, number=f"A{i + 1:06d}", customer=customers[i],
                    billing_mode="postpaid" if i in postpaid else "prepaid",
                    billing_side="platform", status="open", opened_at=opened,
                    move_in_on=opened.astimezone(zone).date(),
                )
                for i in range(n)
            ],
        )  # fmt: skip
        through = Account.rooms.through
        copy_rows(
            through,
            ["account_id", "room_id"],
            ((a.pk, r.pk) for a, r in zip(accounts, rooms, strict=True)),
        )
        meters = store(
            Meter,
            [
                Meter(
                    organisation=org, kind="electricity_1p", protocol="dlt645",
                    address=f"{i + 1:012d}", gateway=gateways[i // per_floor], room=rooms[i],
                    account=accounts[i],
                )
                for i in range(n)
            ],
        )  # fmt: skip
        master = Meter.objects.create(
            organisation=org, kind="electricity_3p", protocol="dlt645", address="999999999999",
            gateway=gateways[0], room=public, multiplier=1,
        )  # fmt: skip
    say(f"set-up              {figures['set-up']:.1f} s ({n:,} accounts, rooms, meters)")

    profiles = make_profiles(days, tariff, zone, moments)
    master_days = [(Decimal(rng.randint(80000, 120000)) / 100).quantize(FOUR) for _ in range(days)]

    def usage(i: int) -> list[Decimal]:
        return profiles[i % PROFILES].days

    # the readings: a read at every local midnight, the day's interval between two reads
    with transaction.atomic(), triggers_off(), timed("readings", figures):
        everyone = [(m.pk, usage(i), START_TOTAL + (i * 37) % 90000) for i, m in enumerate(meters)]
        everyone.append((master.pk, master_days, 0))
        chunk = 5000
        reads = intervals = 0
        for offset in range(0, len(everyone), chunk):
            part = everyone[offset : offset + chunk]
            ids = reserve_ids(RegisterRead, len(part) * (days + 1))
            read_rows, interval_rows = [], []
            k = 0
            for meter_id, daily, first in part:
                total = Decimal(first)
                previous = None
                for day, moment in enumerate(moments):
                    if day:
                        total += daily[day - 1]
                    read_rows.append((ids[k], org.pk, meter_id, moment, "poll", total, now))
                    if previous is not None:
                        interval_rows.append(
                            (
                                org.pk, meter_id, previous, ids[k], moments[day - 1], moment,
                                daily[day - 1], 1, daily[day - 1], "ok", True, "",
                            )
                        )  # fmt: skip
                    previous = ids[k]
                    k += 1
            reads += copy_rows(
                RegisterRead,
                ["id", "organisation_id", "meter_id", "read_at", "source", "total", "received_at"],
                read_rows,
            )
            intervals += copy_rows(
                Interval,
                [
                    "organisation_id", "meter_id", "start_read_id", "end_read_id", "start_at",
                    "end_at", "register_delta", "multiplier", "consumption", "status", "booked",
                    "note",
                ],
                interval_rows,
            )  # fmt: skip
    say(
        f"readings            {figures['readings']:.1f} s ({reads:,} reads,"
        f" {intervals:,} intervals)"
    )

    # wallets, and the money every account had before the month's deductions
    with transaction.atomic(), triggers_off(), timed("wallets", figures):
        codes = [ledger.wallet_account(str(a.pk)).code for a in accounts]
        ledger_accounts = store(
            LedgerAccount,
            [LedgerAccount(organisation=org, code=code, kind="wallet") for code in codes],
        )
        spent = [sum(p.amounts_minor) for p in profiles]
        recharges: dict[int, int] = {}
        for i in prepaid:
            month = spent[i % PROFILES]
            # most have two months' credit and more; the low ones about the property fee left
            recharges[i] = month + (15000 if i in low else month + 100000 + rng.randint(0, 500000))
        balances = [recharges.get(i, 0) - spent[i % PROFILES] for i in range(n)]
        store(
            Wallet,
            [
                Wallet(
                    organisation=org, account=a, ledger_account=la, currency="CNY",
                    balance_minor=balances[i],
                )
                for i, (a, la) in enumerate(zip(accounts, ledger_accounts, strict=True))
            ],
        )  # fmt: skip
        cash = ledger_services.ledger_account_get(
            org.pk, ledger.channel_account(channel=Channel.CASH).code
        )
        recharge_at = moments[0] - timedelta(days=3)
        entries = []
        for i in sorted(recharges):
            built = ledger.build_recharge(
                account_id=str(accounts[i].pk), amount=Decimal(recharges[i]) / 100,
                channel=Channel.CASH, reference=f"bench-{accounts[i].pk}", occurred_at=recharge_at,
            )  # fmt: skip
            entries.append(
                (i, JournalEntry(
                    organisation=org, idempotency_key=built.idempotency_key,
                    occurred_at=recharge_at, memo=built.memo, kind="recharge", channel="cash",
                    reference=f"bench-{accounts[i].pk}", account=accounts[i],
                    wallet_amount=recharges[i], currency="CNY", actor_label=actor,
                ))
            )  # fmt: skip
        store(JournalEntry, [e for _i, e in entries])
        copy_rows(
            Posting,
            ["organisation_id", "entry_id", "ledger_account_id", "amount"],
            (
                row
                for i, e in entries
                for row in (
                    (org.pk, e.pk, cash.pk, recharges[i]),
                    (org.pk, e.pk, ledger_accounts[i].pk, -recharges[i]),
                )
            ),
        )
    say(
        f"wallets             {figures['wallets']:.1f} s ({n:,} wallets,"
        f" {len(entries):,} recharges)"
    )

    mall = Mall(
        org=org, site=site, start=start, end=end, account_ids=[a.pk for a in accounts],
        meter_ids=[m.pk for m in meters], master_id=master.pk, profiles=profiles,
    )  # fmt: skip
    analyze()
    if args.deduct_sample:
        check_deductions(args, mall, figures)

    # what real-time deduction wrote: the states and a deduction entry per meter and day
    with transaction.atomic(), triggers_off(), timed("deductions", figures):
        from meterpay.apps.billing.models import DeductionState

        copy_rows(
            DeductionState,
            ["organisation_id", "account_id", "meter_id", "state", "rated_until", "updated_at"],
            (
                (org.pk, a.pk, m.pk, json.dumps(profiles[i % PROFILES].state), moments[-1], now)
                for i, (a, m) in enumerate(zip(accounts, meters, strict=True))
            ),
        )
        revenue = ledger_services.ledger_account_get(
            org.pk, ledger.revenue_account(ChargeType.ENERGY).code
        )
        count = 0
        for offset in range(0, n, 5000):
            rows = []
            for i in range(offset, min(n, offset + 5000)):
                account, meter = accounts[i], meters[i]
                code = codes[i]
                for day, amount in enumerate(profiles[i % PROFILES].amounts_minor):
                    end_at = moments[day + 1]
                    reference = f"meter-{meter.pk}/{end_at.isoformat()}"
                    rows.append(
                        (
                            org.pk,
                            ledger.make_idempotency_key(
                                movement="deduction", parts=[code, reference]
                            ),
                            end_at,
                            f"meter {meter.address}: 1 interval(s) to {end_at:%Y-%m-%d %H:%M}",
                            "deduction", "", reference, account.pk, -amount, "CNY", "rating", now,
                        )
                    )  # fmt: skip
            count += copy_rows(
                JournalEntry,
                [
                    "organisation_id", "idempotency_key", "occurred_at", "memo", "kind", "channel",
                    "reference", "account_id", "wallet_amount", "currency", "actor_label",
                    "created_at",
                ],
                rows,
            )  # fmt: skip
        quote = connection.ops.quote_name
        entry_table, wallet_table = (
            quote(JournalEntry._meta.db_table),
            quote(Wallet._meta.db_table),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(Posting._meta.db_table)}"  # noqa: S608
                " (organisation_id, entry_id, ledger_account_id, amount)"
                " SELECT e.organisation_id, e.id, w.ledger_account_id, -e.wallet_amount"
                f" FROM {entry_table} e JOIN {wallet_table} w ON w.account_id = e.account_id"
                " WHERE e.organisation_id = %s AND e.kind = 'deduction'"
                " UNION ALL SELECT e.organisation_id, e.id, %s, e.wallet_amount"
                f" FROM {entry_table} e WHERE e.organisation_id = %s AND e.kind = 'deduction'",
                [org.pk, revenue.pk, org.pk],
            )
    say(f"deductions          {figures['deductions']:.1f} s ({n:,} states, {count:,} entries)")

    with transaction.atomic(), timed("month end set-up", figures):
        rent = charge_item_save(
            actor=actor, organisation_id=org.pk,
            values={"code": "rent", "name": "Rent", "basis": "per_area", "unit_price": "60",
                    "frequency": "monthly", "settlement": "bill", "revenue": "rent"},
        )  # fmt: skip
        fee = charge_item_save(
            actor=actor, organisation_id=org.pk,
            values={"code": "property", "name": "Property fee", "basis": "fixed",
                    "unit_price": "300", "frequency": "monthly", "settlement": "deduct",
                    "revenue": "property_fee"},
        )  # fmt: skip
        for item in (rent, fee):
            store(
                ChargeSubscription,
                [ChargeSubscription(organisation=org, item=item, account=a) for a in accounts],
            )
        assert ChargeItem.objects.filter(organisation=org).count() == 2
        group = allocation_group_save(
            actor=actor, organisation_id=org.pk,
            values={"name": "Mall lighting", "site": site, "master_meter": master, "rule": "area"},
        )  # fmt: skip
        store(
            AllocationMember,
            [AllocationMember(organisation=org, group=group, account=a) for a in accounts],
        )
        loss = loss_group_save(
            actor=actor, organisation_id=org.pk,
            values={"name": "Grid meter 1", "site": site, "unit_price": "0.80", "rule": "usage"},
        )  # fmt: skip
        metered = sum((sum(usage(i)) for i in range(n)), Decimal(0)) + sum(master_days)
        grid = (metered * Decimal("1.04")).quantize(Decimal(1))
        from meterpay.apps.billing.sharing import grid_reading_enter

        grid_reading_enter(actor=actor, group=loss, read_on=start, reading=Decimal(100000))
        grid_reading_enter(actor=actor, group=loss, read_on=end, reading=100000 + grid)
    say(
        f"month end set-up    {figures['month end set-up']:.1f} s (2 charge items x {n:,},"
        f" a public-area group of {n:,}, a line-loss group)"
    )
    analyze()
    ledger_check(org.pk, "generated")
    return mall


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them in production."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def ledger_check(organisation_id: int, when: str) -> None:
    """Every entry balanced, every wallet the sum of its postings (one query each)."""
    from django.db import connection

    from meterpay.apps.ledger.models import JournalEntry, Posting, Wallet
    from meterpay.apps.ledger.selectors import ledger_mismatches

    began = time.perf_counter()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT p.entry_id FROM"  # noqa: S608
            f" {quote(Posting._meta.db_table)} p JOIN {quote(JournalEntry._meta.db_table)} e"
            " ON e.id = p.entry_id WHERE e.organisation_id = %s"
            " GROUP BY p.entry_id HAVING sum(p.amount) <> 0) AS unbalanced",
            [organisation_id],
        )
        (unbalanced,) = cursor.fetchone()
    mismatches = ledger_mismatches(organisation_id)
    wallets = Wallet.objects.filter(organisation_id=organisation_id).count()
    say(
        f"ledger ({when})     {unbalanced} unbalanced entries, {len(mismatches)} of {wallets:,}"
        f" wallets differ from their postings ({time.perf_counter() - began:.1f} s)"
    )
    if unbalanced or mismatches:
        raise SystemExit("the ledger does not add up")


def check_deductions(args: argparse.Namespace, mall: Mall, figures: dict[str, float]) -> None:
    """The real batch deduction over a sample of meters (rolled back): its speed, and its states
    and amounts equal to what the generator writes for them."""
    from django.db import transaction

    from meterpay.apps.billing.deductions import BATCH_SIZE, meters_deduct_batch
    from meterpay.apps.billing.models import DeductionState
    from meterpay.apps.ledger.models import JournalEntry

    step = max(1, len(mall.meter_ids) // args.deduct_sample)
    sample = mall.meter_ids[::step][: args.deduct_sample]
    index = {meter_id: i for i, meter_id in enumerate(mall.meter_ids)}
    bad = 0
    seconds = 0.0
    try:
        with transaction.atomic():
            began = time.perf_counter()
            for offset in range(0, len(sample), BATCH_SIZE):
                meters_deduct_batch(meter_ids=sample[offset : offset + BATCH_SIZE])
            seconds = time.perf_counter() - began
            states = dict(
                DeductionState.objects.filter(meter_id__in=sample).values_list("meter_id", "state")
            )
            taken = dict(
                JournalEntry.objects.filter(
                    kind="deduction", organisation_id=mall.org.pk
                ).values_list("reference", "wallet_amount")
            )
            for meter_id in sample:
                profile = mall.profiles[index[meter_id] % PROFILES]
                month = [v for k, v in taken.items() if k.startswith(f"meter-{meter_id}/")]
                if states.get(meter_id) != profile.state or month != [-sum(profile.amounts_minor)]:
                    bad += 1
            raise _Rollback
    except _Rollback:
        pass
    figures["deduct sample"] = seconds
    rate = len(sample) / seconds if seconds else 0.0
    say(
        f"deduction check     real batch path: {rate:,.0f} meters/s ({len(sample)} meters, a"
        f" month of daily intervals each, {seconds:.1f} s); {len(sample) - bad} of"
        f" {len(sample)} states and amounts equal the generated ones"
    )
    if bad:
        raise SystemExit("the generated deductions differ from the real path's")


def existing(args: argparse.Namespace) -> Mall | None:
    """The mall a kept database holds, if it is the one asked for."""
    from django.utils import timezone

    from meterpay.apps.billing.runs import previous_month
    from meterpay.apps.customers.models import Account
    from meterpay.apps.meters.models import Meter
    from meterpay.apps.organisations.models import Organisation
    from meterpay.apps.sites.models import Site

    org = Organisation.objects.filter(slug=ORG).first()
    if org is None:
        return None
    ids = list(
        Account.objects.filter(organisation=org).order_by("number").values_list("pk", flat=True)
    )
    if len(ids) != args.accounts:
        raise SystemExit(f"the kept database holds {len(ids):,} accounts: run without --keepdb")
    meters = dict(Meter.objects.filter(account_id__in=ids).values_list("account_id", "pk"))
    start, end = previous_month(timezone.localdate())
    return Mall(
        org=org, site=Site.objects.get(organisation=org), start=start, end=end, account_ids=ids,
        meter_ids=[meters[pk] for pk in ids],
        master_id=Meter.objects.get(organisation=org, account__isnull=True).pk, profiles=[],
    )  # fmt: skip


# --------------------------------------------------------------------------- the month end


def verdict(value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else "NOT met"


def month_end(args: argparse.Namespace, mall: Mall, figures: dict[str, float], keep: bool) -> None:
    from django.db import connection
    from django.db.models import Count

    from meterpay.apps.billing.models import Bill, BillLine
    from meterpay.apps.billing.runs import bill_run_confirm, bill_run_create, bill_run_issue
    from meterpay.apps.ledger.models import JournalEntry
    from meterpay.apps.notifications.models import Notification

    n = len(mall.account_ids)

    def step(label: str, work: Callable[[], Any]) -> Any:
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        began = time.perf_counter()
        result = work()
        if keep and connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the checks a commit would run, in the time
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        figures[label] = time.perf_counter() - began
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.path.join(args.profile, f"{label}.prof"))
        return result

    entries0 = JournalEntry.objects.filter(organisation_id=mall.org.pk).count()
    run = step(
        "create",
        lambda: bill_run_create(
            actor="bench", organisation_id=mall.org.pk, period_start=mall.start,
            period_end=mall.end, site=mall.site,
        ),
    )  # fmt: skip
    bills = Bill.objects.filter(run=run).count()
    lines = BillLine.objects.filter(bill__run=run).count()
    seconds = figures["create"]
    say(
        f"1. bill run         {seconds:.1f} s to create {bills:,} draft bills ({lines:,} lines):"
        f" {bills / seconds:,.0f} bills/s; target ≤ {TARGET_RUN_SECONDS:.0f} s:"
        f" {verdict(seconds, TARGET_RUN_SECONDS, at_most=True)}"
    )
    if args.stop_after == "create":
        return
    step("confirm", lambda: bill_run_confirm(actor="bench", run=run))
    say(f"2. confirm          {figures['confirm']:.1f} s")
    step("issue", lambda: bill_run_issue(actor="bench", run=run))
    seconds = figures["issue"]
    entries = JournalEntry.objects.filter(organisation_id=mall.org.pk).count() - entries0
    statuses = dict(
        Bill.objects.filter(run=run).values_list("status").annotate(n=Count("id")).order_by()
    )
    notes = Notification.objects.filter(account__organisation_id=mall.org.pk).count()
    say(
        f"3. issue            {seconds:.1f} s to issue {bills:,} bills: {bills / seconds:,.0f}"
        f" bills/s ({entries:,} journal entries, {notes:,} notifications; bills {statuses})"
    )
    say(f"   create + issue   {figures['create'] + figures['issue']:.1f} s for {n:,} accounts")
    ledger_check(mall.org.pk, "issued")
    if args.stop_after != "issue":
        pdfs(args, run, figures)


def pdfs(args: argparse.Namespace, run: Any, figures: dict[str, float]) -> None:
    import io
    import zipfile

    from meterpay.apps.billing import documents
    from meterpay.apps.billing.models import Bill

    if not args.pdf_bills and not args.zip_bills:
        return
    ids = list(Bill.objects.filter(run=run).order_by("number").values_list("pk", flat=True))
    began = time.perf_counter()
    first = Bill.objects.get(pk=ids[0])
    documents.bill_pdf_bytes(bill=first, language=args.language)
    say(f"4. first PDF        {time.perf_counter() - began:.2f} s (fonts, stylesheet: warm-up)")
    if args.pdf_bills:
        step = max(1, len(ids) // args.pdf_bills)
        sample = ids[::step][: args.pdf_bills]
        began = time.perf_counter()
        for pk in sample:  # what the application does for a bill before rendering it
            documents.bill_context(Bill.objects.get(pk=pk), args.language)
        seconds = time.perf_counter() - began
        say(
            f"4. bill contexts    {len(sample) / seconds:,.0f} bills/s ({len(sample)} bills in"
            f" {seconds:.2f} s: a bill read and made the print context, not rendered)"
        )
        size = 0
        began = time.perf_counter()
        for pk in sample:
            bill = Bill.objects.get(pk=pk)  # as the bill page's download loads it
            size += len(documents.bill_pdf_bytes(bill=bill, language=args.language))
        seconds = time.perf_counter() - began
        rate = len(sample) / seconds
        figures["single PDFs/s"] = rate
        say(
            f"4. single PDFs      {rate:,.1f} PDFs/s ({len(sample)} bills in {seconds:.1f} s,"
            f" {size / len(sample) / 1000:,.0f} kB each); target ≥ {TARGET_PDFS_PER_SECOND:.0f}"
            f"/s: {verdict(rate, TARGET_PDFS_PER_SECOND, at_most=False)}"
        )
    if args.zip_bills:
        step = max(1, len(ids) // args.zip_bills)
        sample = ids[::step][: args.zip_bills]
        began = time.perf_counter()
        pdf = documents.run_pdf_bytes(
            run=run, language=args.language, bill_ids=sample, workers=args.workers
        )
        seconds = time.perf_counter() - began
        rate = len(sample) / seconds
        figures["run PDF bills/s"] = rate
        say(
            f"5. run as one PDF   {rate:,.1f} bills/s ({len(sample)} bills of the run in"
            f" {seconds:.1f} s, {args.workers} workers, {len(pdf) / 1000:,.0f} kB); target ≥"
            f" {TARGET_PDFS_PER_SECOND:.0f}/s:"
            f" {verdict(rate, TARGET_PDFS_PER_SECOND, at_most=False)}"
        )
        began = time.perf_counter()
        archive = documents.run_zip_bytes(
            run=run, language=args.language, workers=args.workers, bill_ids=sample
        )
        seconds = time.perf_counter() - began
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            files = len(opened.namelist())
        rate = len(sample) / seconds
        figures["zip PDFs/s"] = rate
        say(
            f"6. zip, {args.workers} workers    {rate:,.1f} PDFs/s ({files} PDFs in"
            f" {seconds:.1f} s,"
            f" workers started included); target ≥ {TARGET_PDFS_PER_SECOND:.0f}/s:"
            f" {verdict(rate, TARGET_PDFS_PER_SECOND, at_most=False)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--postpaid", type=float, default=0.1, help="share of postpaid accounts")
    parser.add_argument(
        "--low", type=float, default=0.02, help="share of prepaid ones low on credit"
    )
    parser.add_argument("--deduct-sample", type=int, default=1000, help="0: no check")
    parser.add_argument("--pdf-bills", type=int, default=200)
    parser.add_argument("--zip-bills", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--language", default="zh-hans", choices=["zh-hans", "en"])
    parser.add_argument("--keepdb", action="store_true", help="keep and reuse the generated data")
    parser.add_argument("--stop-after", choices=["create", "issue"])
    parser.add_argument("--profile", metavar="DIR", help="cProfile each timed step into DIR")
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "meterpay.settings"
    var = tempfile.mkdtemp(prefix="meterpay-bench-")
    os.environ["METERPAY_VAR"] = var
    os.environ.pop("HUEY_URL", None)
    os.environ.pop("HUEY_IMMEDIATE", None)
    import django

    django.setup()
    import logging

    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # its progress messages
    from django.db import connection, transaction
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keepdb)
    figures: dict[str, float] = {}
    try:
        say(f"database            {connection.vendor} ({connection.settings_dict['NAME']})")
        say(
            f"machine             {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()},"
            f" Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
        )
        mall = existing(args) if args.keepdb else None
        if mall is None:
            began = time.perf_counter()
            mall = generate(args, figures)
            say(f"generated           {time.perf_counter() - began:.0f} s in all")
        say(
            f"month               {mall.start} to {mall.end} (exclusive),"
            f" {len(mall.account_ids):,} accounts"
        )
        if args.keepdb:
            try:
                with transaction.atomic():
                    month_end(args, mall, figures, keep=True)
                    raise _Rollback
            except _Rollback:
                say("(kept database: the month end was rolled back)")
        else:
            month_end(args, mall, figures, keep=False)
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
