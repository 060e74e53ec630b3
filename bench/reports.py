"""Reports on roll-ups: how fast they answer at a utility's scale, and how fast the roll-up
keeps up with new intervals.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/meterpay_reports_bench \\
        uv run python bench/reports.py [--meters 5000] [--buildings 10] [--repeat 30]
        [--fresh 240000] [--batch 50000] [--reuse] [--quick]

Runs against a fresh PostgreSQL test database (``DATABASE_URL`` → ``test_<name>``; the data
is generated in PostgreSQL's SQL, so SQLite is not measured). One site of ``--meters``
meters (a tenth of them water) in ``--buildings`` buildings of 5 floors, one room, account
and meter each, on a TOU tariff:

1. **data**: 13 months of 15-minute consumption *as roll-ups* (2025-10-01 to 2026-11-01:
   hourly buckets generated in SQL, four 15-minute intervals each, and the daily and monthly
   buckets and daily costs summed from them), the month-end bills of October 2026 (charges,
   public-area share, line loss), and October 2026's raw 15-minute intervals (for (4));
2. **comprehensive report**, the whole site, October 2026 with month-on-month and
   year-on-year: ``reports.selectors.comprehensive_report``, p50 / p95 of ``--repeat`` calls;
3. **efficiency view** of one building for October 2026 (load curve, heat map, ranking,
   anomalies over the 35 days before, peak-shaving suggestions rated by the engine):
   ``reports.efficiency.efficiency_view``, p50 / p95;
4. **the same from raw intervals**: October's consumption per row and period computed from
   its raw intervals (read, classified by the engine's rule and summed in memory, what a page
   would do without roll-ups; once: it takes minutes; checked equal to (2)), and a plain SQL
   ``SUM`` per meter (totals only, no periods); the ratios to (2);
5. **roll-up throughput**: ``--fresh`` new intervals (12 hours of November for every meter)
   inserted, then ``rollups_catch_up`` until it has taken them: intervals per second.

``--reuse`` measures the data of an earlier run again (the generation takes a quarter of an
hour); ``--quick`` leaves out (4).

Figures, machine and command: docs/reports.md, "Performance".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "src"))

ZONE = "Asia/Shanghai"
FIRST, MONTH, NEXT = date(2025, 10, 1), date(2026, 10, 1), date(2026, 11, 1)
FLOORS = 5
#: The bench tariff: whole-hour windows, so SQL can split the generated hours by period.
TARIFF: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "bench-tou",
    "name": "Bench commercial TOU",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2024-01-01T00:00:00",
            "energy": {
                "periods": [
                    {"name": "sharp", "price": "1.3000"},
                    {"name": "peak", "price": "1.0000"},
                    {"name": "flat", "price": "0.6500"},
                    {"name": "valley", "price": "0.3000"},
                ],
                "schedule": [
                    {
                        "months": "1-12",
                        "windows": [
                            {"start": "00:00", "end": "08:00", "period": "valley"},
                            {"start": "08:00", "end": "11:00", "period": "peak"},
                            {"start": "11:00", "end": "12:00", "period": "sharp"},
                            {"start": "18:00", "end": "22:00", "period": "peak"},
                            {"start": "23:00", "end": "24:00", "period": "valley"},
                        ],
                        "default_period": "flat",
                    }
                ],
            },
        }
    ],
}
#: kWh of an hour in 1/10000 (a multiple of 4, so each quarter hour gets a quarter): the
#: meter's size, the hour's shape (``bench_hours``), a deterministic noise; water a twentieth
_UNITS = """(4 * round(2500 * (0.4 + (m.id %% 17) * 0.1) * g.shape
    * (0.8 + ((m.id * 7919 + g.idx * 104729) %% 400) / 1000.0)
    * (CASE WHEN m.kind = 'water' THEN 0.05 ELSE 1 END)))::bigint"""


def hours_table(cursor: Any, start: datetime, end: datetime) -> None:
    """``bench_hours``: every local hour of ``[start, end)`` with its local hour of day, the
    load's shape, its tariff period (the bench tariff's whole-hour windows) and an index."""
    cursor.execute("DROP TABLE IF EXISTS bench_hours")
    cursor.execute(
        f"""
        CREATE TEMP TABLE bench_hours AS
        SELECT hour, h, extract(epoch FROM hour)::bigint / 3600 AS idx,
               (CASE WHEN h < 7 THEN 0.3 WHEN h < 9 THEN 0.8 WHEN h < 18 THEN 1.5
                     WHEN h < 22 THEN 1.2 ELSE 0.5 END)
               * (CASE WHEN dow IN (0, 6) THEN 0.7 ELSE 1 END) AS shape,
               CASE WHEN h < 8 OR h = 23 THEN 'valley' WHEN h IN (8, 9, 10, 18, 19, 20, 21)
                    THEN 'peak' WHEN h = 11 THEN 'sharp' ELSE 'flat' END AS slot
        FROM (
            SELECT hour, extract(hour FROM hour AT TIME ZONE '{ZONE}')::int AS h,
                   extract(dow FROM hour AT TIME ZONE '{ZONE}')::int AS dow
            FROM generate_series(%s::timestamp AT TIME ZONE '{ZONE}',
                                 %s::timestamp AT TIME ZONE '{ZONE}' - interval '1 hour',
                                 interval '1 hour') AS hour
        ) hours
        """,  # noqa: S608 - bench SQL, no input
        [start, end],
    )


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _local_instant(day: date) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(ZONE))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(call: Callable[[], Any], repeat: int, *, warm: bool = True) -> tuple[float, float, Any]:
    """p50 and p95 in ms of ``repeat`` calls (after one warm-up call)."""
    result = call() if warm else None
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), percentile(times, 0.95), result


def setup_site(args: argparse.Namespace) -> tuple[int, list[int]]:
    """The organisation, its site, buildings, floors, rooms, accounts and meters (bulk)."""
    from django.utils import timezone

    from meterpay.apps.billing.demo import DEMO_WATER_TARIFF
    from meterpay.apps.customers.models import Account, Customer
    from meterpay.apps.meters.models import Meter
    from meterpay.apps.organisations.models import Organisation
    from meterpay.apps.sites.models import Building, Floor, Room, Site
    from meterpay.apps.tariffs.services import default_tariffs_create

    org = Organisation.objects.create(name="Bench utility", slug="bench-reports", timezone=ZONE)
    default_tariffs_create(
        actor="bench", organisation=org, electricity=TARIFF, water=DEMO_WATER_TARIFF
    )
    site = Site.objects.create(organisation=org, name="Bench city", kind="park")
    buildings = Building.objects.bulk_create(
        Building(organisation=org, site=site, name=f"B{b + 1:02d}") for b in range(args.buildings)
    )
    floors = Floor.objects.bulk_create(
        Floor(organisation=org, building=building, name=f"{f + 1}F", level=f + 1)
        for building in buildings
        for f in range(FLOORS)
    )
    rooms = Room.objects.bulk_create(
        Room(
            organisation=org,
            floor=floors[n % len(floors)],
            number=f"R{n:05d}",
            kind="shop",
            area_m2=Decimal(20 + n % 80),
        )
        for n in range(args.meters)
    )
    customers = Customer.objects.bulk_create(
        Customer(organisation=org, name=f"Tenant {n:05d}") for n in range(args.meters)
    )
    opened = timezone.make_aware(datetime(2025, 9, 1))
    accounts = Account.objects.bulk_create(
        Account(
            organisation=org,
            number=f"A{n:06d}",
            customer=customer,
            status="open",
            opened_at=opened,
            move_in_on=opened.date(),
        )
        for n, customer in enumerate(customers)
    )
    Account.rooms.through.objects.bulk_create(
        Account.rooms.through(account_id=a.pk, room_id=r.pk)
        for a, r in zip(accounts, rooms, strict=True)
    )
    Meter.objects.bulk_create(
        Meter(
            organisation=org,
            kind="water" if n % 10 == 9 else "electricity_1p",
            protocol="cjt188" if n % 10 == 9 else "dlt645",
            address=f"{n + 1:014d}" if n % 10 == 9 else f"{n + 1:012d}",
            room=room,
            account=account,
            installed_on=date(2025, 9, 1),
        )
        for n, (room, account) in enumerate(zip(rooms, accounts, strict=True))
    )
    return org.pk, [b.pk for b in buildings]


def generate_rollups(org_id: int, cursor: Any) -> None:
    """13 months of hourly buckets in SQL (in meter order, the key's order), then days,
    months and daily costs from them."""
    from meterpay.apps.meters.models import Meter

    ids = list(
        Meter.objects.filter(organisation_id=org_id).order_by("pk").values_list("pk", flat=True)
    )
    hours_table(cursor, _midnight(FIRST), _midnight(NEXT))
    cursor.execute("SET synchronous_commit = off")
    chunk = 500
    began = time.perf_counter()
    for index in range(0, len(ids), chunk):
        part = ids[index : index + chunk]
        cursor.execute(
            f"""
            INSERT INTO reports_meterhour (organisation_id, meter_id, account_id, utility, hour,
                quantity, sharp, peak, flat, valley, other, night, intervals, estimated,
                flagged, seconds, estimated_seconds)
            SELECT m.organisation_id, m.id, m.account_id, x.utility, g.hour, x.units,
                   CASE WHEN x.timed AND g.slot = 'sharp' THEN x.units ELSE 0 END,
                   CASE WHEN x.timed AND g.slot = 'peak' THEN x.units ELSE 0 END,
                   CASE WHEN x.timed AND g.slot = 'flat' THEN x.units ELSE 0 END,
                   CASE WHEN x.timed AND g.slot = 'valley' THEN x.units ELSE 0 END,
                   0, CASE WHEN g.h < 6 THEN x.units ELSE 0 END, 4, 0, 0, 3600, 0
            FROM meters_meter m
            CROSS JOIN bench_hours g
            CROSS JOIN LATERAL (
                SELECT {_UNITS} AS units, m.kind <> 'water' AS timed,
                       CASE WHEN m.kind = 'water' THEN 'w' ELSE 'e' END AS utility
            ) x
            WHERE m.id = ANY(%s)
            ORDER BY m.id, g.hour
            """,  # noqa: S608 - bench SQL, no input
            [part],
        )
        done = index + len(part)
        rate = done / (time.perf_counter() - began)
        print(f"  hourly buckets: {done}/{len(ids)} meters ({rate:.0f} meters/s)", flush=True)
    sums = ", ".join(
        f"sum({c})"
        for c in ("quantity", "sharp", "peak", "flat", "valley", "other", "night", "intervals",
                  "estimated", "flagged", "seconds", "estimated_seconds")
    )  # fmt: skip
    columns = (
        "organisation_id, meter_id, account_id, utility, {bucket}, quantity, sharp, peak, flat,"
        " valley, other, night, intervals, estimated, flagged, seconds, estimated_seconds"
    )
    cursor.execute(
        f"INSERT INTO reports_meterday ({columns.format(bucket='day')})"  # noqa: S608
        f" SELECT organisation_id, meter_id, account_id, utility,"
        f" (hour AT TIME ZONE '{ZONE}')::date AS d, {sums} FROM reports_meterhour"
        " GROUP BY organisation_id, meter_id, account_id, utility, d ORDER BY meter_id, d"
    )
    cursor.execute(
        f"INSERT INTO reports_metermonth ({columns.format(bucket='month')})"  # noqa: S608
        " SELECT organisation_id, meter_id, account_id, utility,"
        f" date_trunc('month', day)::date AS mo, {sums} FROM reports_meterday"
        " GROUP BY organisation_id, meter_id, account_id, utility, mo"
    )
    # what the deductions would have taken: TOU prices for electricity, 3.64 a m³ for water
    cursor.execute(
        "INSERT INTO reports_costday (organisation_id, account_id, meter_id, utility, day,"
        " amount_minor, entries)"
        " SELECT organisation_id, account_id, meter_id, utility, day,"
        " round(CASE WHEN utility = 'w' THEN quantity * 364"
        " ELSE sharp * 130 + peak * 100 + flat * 65 + valley * 30 END / 10000.0)::bigint, 24"
        " FROM reports_meterday"
    )
    cursor.execute(
        "INSERT INTO reports_costmonth (organisation_id, account_id, meter_id, utility, month,"
        " amount_minor, entries)"
        " SELECT organisation_id, account_id, meter_id, utility, date_trunc('month', day)::date,"
        " sum(amount_minor), sum(entries) FROM reports_costday"
        " GROUP BY organisation_id, account_id, meter_id, utility, date_trunc('month', day)"
    )
    cursor.execute("ANALYZE")


def generate_bills(org_id: int) -> None:
    """October's issued bills: rent, the public-area share and the line loss."""
    from meterpay.apps.billing.models import Bill, BillLine
    from meterpay.apps.customers.models import Account

    accounts = list(Account.objects.filter(organisation_id=org_id).values_list("pk", flat=True))
    bills = Bill.objects.bulk_create(
        Bill(
            organisation_id=org_id,
            number=f"B202610-{n:05d}",
            account_id=account,
            kind="statement",
            status="issued",
            period_start=MONTH,
            period_end=NEXT,
            total_minor=300000 + 4000 + 1500,
            due_minor=305500,
            unpaid_minor=305500,
            due_on=date(2026, 11, 15),
        )
        for n, account in enumerate(accounts)
    )
    BillLine.objects.bulk_create(
        BillLine(
            bill=bill,
            position=position,
            section=section,
            label=section,
            amount_minor=amount,
            charge_type=section,
            settles="receivable",
            posted=True,
        )
        for bill in bills
        for position, (section, amount) in enumerate(
            (("charges", 300000), ("public_share", 4000), ("line_loss", 1500))
        )
    )


def generate_intervals(org_id: int, cursor: Any, start: datetime, end: datetime) -> int:
    """Raw 15-minute intervals of local ``[start, end)``: each hour's bucket in four quarters
    (their ids in time order, as the gateway stores them)."""
    hours_table(cursor, start, end)
    cursor.execute("SELECT coalesce(max(end_read_id), 0) FROM readings_interval")
    (base,) = cursor.fetchone()
    cursor.execute(
        f"""
        INSERT INTO readings_interval (organisation_id, meter_id, start_read_id, end_read_id,
            start_at, end_at, register_delta, multiplier, consumption, status, booked, note)
        SELECT m.organisation_id, m.id, 0, {base} + row_number() OVER (),
               g.hour + q * interval '15 minutes', g.hour + (q + 1) * interval '15 minutes',
               x.units / 40000.0, 1, x.units / 40000.0, 'ok', true, ''
        FROM meters_meter m
        CROSS JOIN bench_hours g
        CROSS JOIN generate_series(0, 3) AS q
        CROSS JOIN LATERAL (SELECT {_UNITS} AS units) x
        WHERE m.organisation_id = %s
        ORDER BY g.hour, q, m.id
        """,  # noqa: S608 - bench SQL, no input
        [org_id],
    )
    count = cursor.rowcount
    cursor.execute("ANALYZE readings_interval")
    return int(count)


def raw_report(org_id: int, start: date, end: date) -> dict[str, list[int]]:
    """October's consumption per row and period from its raw intervals: read, classified by
    the engine's rule and summed in memory (the roll-up's own code), what a report would do
    without roll-ups."""
    from meterpay.apps.meters.models import Meter
    from meterpay.apps.readings.models import Interval
    from meterpay.apps.reports.contexts import clock, meter_contexts
    from meterpay.core.reports.rollup import ConsumptionRollup, to_units

    local = clock(ZONE)
    ids = list(Meter.objects.filter(organisation_id=org_id).values_list("pk", flat=True))
    rows = [
        (meter_id, start_at, end_at, to_units(consumption), status, booked)
        for meter_id, start_at, end_at, consumption, status, booked in Interval.objects.filter(
            meter_id__in=ids, end_at__gt=local.day_start(start), end_at__lte=local.day_start(end)
        ).values_list("meter_id", "start_at", "end_at", "consumption", "status", "booked")
    ]
    rollup = ConsumptionRollup()
    rollup.add(rows, meter_contexts(ids))
    found: dict[str, list[int]] = {}
    for _org, _meter, account, _utility, _month, *figures in rollup.rows("month"):
        target = found.setdefault(f"account:{account}", [0] * len(figures))
        for index, value in enumerate(figures):
            target[index] += int(value)  # type: ignore[call-overload]
    return found


def raw_sql_totals(org_id: int, cursor: Any, start: date, end: date) -> int:
    """The month's booked kWh per meter from the raw intervals, in SQL (no periods)."""
    cursor.execute(
        "SELECT i.meter_id, sum(i.consumption) FROM readings_interval i"
        " JOIN meters_meter m ON m.id = i.meter_id"
        " WHERE m.organisation_id = %s AND i.booked"
        " AND i.end_at > (%s::timestamp AT TIME ZONE %s)"
        " AND i.end_at <= (%s::timestamp AT TIME ZONE %s) GROUP BY i.meter_id",
        [org_id, _midnight(start), ZONE, _midnight(end), ZONE],
    )
    return len(cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=5000)
    parser.add_argument("--buildings", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--fresh", type=int, default=240_000, help="new intervals rolled up")
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the data of an earlier run again"
    )
    parser.add_argument(
        "--quick", action="store_true", help="leave out (4), the minutes-long raw report"
    )
    args = parser.parse_args()

    os.environ["DJANGO_SETTINGS_MODULE"] = "meterpay.settings"
    os.environ["METERPAY_VAR"] = tempfile.mkdtemp(prefix="meterpay-bench-")
    os.environ.pop("HUEY_URL", None)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    from meterpay.apps.readings.models import Interval
    from meterpay.apps.reports.efficiency import efficiency_view
    from meterpay.apps.reports.models import RollupCursor
    from meterpay.apps.reports.selectors import comprehensive_report
    from meterpay.apps.reports.services import ENTRIES, INTERVALS, rollups_catch_up

    if connection.vendor != "postgresql":
        sys.exit("bench/reports.py generates its data in PostgreSQL's SQL: set DATABASE_URL")
    setup_test_environment()
    began = time.perf_counter()
    if args.reuse:  # the data of an earlier run: measure again without generating it
        connection.close()
        connection.settings_dict["NAME"] = connection.creation._get_test_db_name()
        from meterpay.apps.organisations.models import Organisation
        from meterpay.apps.sites.models import Building

        org_id = Organisation.objects.get(slug="bench-reports").pk
        buildings = list(
            Building.objects.filter(organisation_id=org_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    else:
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
    print(f"database            {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"machine             {platform.machine()}, {os.cpu_count()} cores, {platform.system()}")
    if not args.reuse:
        org_id, buildings = setup_site(args)
        print(f"site                {args.meters} meters, {args.buildings} buildings", flush=True)
        with connection.cursor() as cursor:
            generate_rollups(org_id, cursor)
            generate_bills(org_id)
            generate_intervals(org_id, cursor, _midnight(MONTH), _midnight(NEXT))
            cursor.execute("ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('reports_meterhour')")
        (size,) = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM readings_interval WHERE end_at <= %s", [_local_instant(NEXT)]
        )
        (raw,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM reports_meterhour")
        (hours,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM meters_meter")
        (meters,) = cursor.fetchone()
    print(
        f"data                {meters:,} meters, {hours:,} hourly buckets"
        f" ({size / 2**30:.1f} GiB with its key), {raw:,} raw intervals of October"
        f" ({time.perf_counter() - began:.0f} s)",
        flush=True,
    )
    today = date(2026, 11, 20)

    def report() -> Any:
        return comprehensive_report(organisation_id=org_id, start=MONTH, end=NEXT, today=today)

    def building() -> Any:
        return efficiency_view(
            organisation_id=org_id, start=MONTH, end=NEXT, building_id=buildings[0], today=today
        )

    p50, p95, result = timed(report, args.repeat)
    print(
        f"2. comprehensive report, whole site, Oct 2026 with MoM and YoY: p50 {p50:.0f} ms,"
        f" p95 {p95:.0f} ms ({len(result.rows)} rows, {len(result.subtotals)} subtotals,"
        f" {args.repeat} calls)",
        flush=True,
    )
    e50, e95, view = timed(building, args.repeat)
    print(
        f"3. efficiency view, one building: p50 {e50:.0f} ms, p95 {e95:.0f} ms"
        f" ({len(view.meters)} meters, {len(view.load_curve)} hours,"
        f" {len(view.suggestions)} suggestions, {len(view.anomalies)} anomalies)",
        flush=True,
    )
    if not args.quick:
        # minutes a call: once each (the SQL sum after a warm-up, as the report had)
        r50, _r95, raw_rows = timed(lambda: raw_report(org_id, MONTH, NEXT), 1, warm=False)
        with connection.cursor() as cursor:
            s50, _s95, _count = timed(lambda: raw_sql_totals(org_id, cursor, MONTH, NEXT), 3)
        # the raw path and the roll-ups agree
        rows = {row.key: row.figures for row in result.rows}
        differ = [
            (key, Decimal(raw_rows.get(key, [0])[0]) / 10000, figures.kwh + figures.m3)
            for key, figures in rows.items()
            if Decimal(raw_rows.get(key, [0])[0]) / 10000 != figures.kwh + figures.m3
        ]
        assert not differ, f"raw and roll-up totals differ: {differ[:3]}"
        print(
            f"4. same month from raw intervals: {r50:,.0f} ms (x{r50 / p50:.0f} the report's p50);"
            f" a bare SQL sum per meter (no periods, no bills): p50 {s50:,.0f} ms"
            f" (x{s50 / p50:.1f})",
            flush=True,
        )
    # 5. throughput: the cursors past what exists, then fresh intervals of November
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM readings_interval")
        (last,) = cursor.fetchone()
        cursor.execute("SELECT coalesce(max(id), 0) FROM ledger_journalentry")
        (last_entry,) = cursor.fetchone()
        RollupCursor.objects.update_or_create(
            name=INTERVALS, defaults={"last_id": last, "gaps": []}
        )
        RollupCursor.objects.update_or_create(
            name=ENTRIES, defaults={"last_id": last_entry, "gaps": []}
        )
        hours_fresh = max(1, args.fresh // (4 * args.meters))
        fresh = generate_intervals(
            org_id, cursor, _midnight(NEXT), _midnight(NEXT) + timedelta(hours=hours_fresh)
        )
    began = time.perf_counter()
    taken = 0
    while True:
        step = rollups_catch_up(batch=args.batch, max_seconds=600)
        taken += step.intervals
        if step.caught_up:
            break
    elapsed = time.perf_counter() - began
    print(
        f"5. roll-up of fresh intervals: {taken:,} of {fresh:,} in {elapsed:.1f} s ="
        f" {taken / elapsed:,.0f} intervals/s (batches of {args.batch:,})",
        flush=True,
    )
    assert taken == fresh == Interval.objects.filter(pk__gt=last).count()


if __name__ == "__main__":
    main()
