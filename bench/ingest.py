"""Readings pipeline throughput: simulated meters → gateway → database, readings and intervals/s.

    uv run python bench/ingest.py [--dtus 100] [--meters-per-dtu 10] [--protocol cjt188]
                                  [--seconds 10] [--db-reads 50000] [--batch 1000]

Runs against a fresh test database (SQLite, or ``DATABASE_URL``, e.g.
``postgres://postgres@127.0.0.1:5432/meterpay_bench`` → ``test_meterpay_bench``). Three
figures, in one run, on the same table:

1. whole path: virtual DTUs (in a child process) answer real frames over TCP, the gateway
   process (DtuServer, BusWorkers, the batching DbPort) polls every meter as fast as it can
   and stores readings and intervals;
2. database stage: the same gateway DbPort fed readings directly (no network), the batch path
   ``register_reads_record_batch`` at full speed;
3. raw bulk insert of the same rows into the same table (COPY on PostgreSQL, executemany
   elsewhere): the ceiling for (2).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def address(protocol: str, dtu: int, meter: int) -> str:
    if protocol == "modbus":
        return str(meter + 1)
    number = dtu * 1000 + meter + 1
    return f"{number:014d}" if protocol == "cjt188" else f"{number:012d}"


# --- the simulators' side (a child process) ------------------------------------------------


async def run_simulators(protocol: str, dtus: int, per_dtu: int, port: int) -> None:
    from meterpay.simulate.bus import VirtualBus
    from meterpay.simulate.clock import ScaledClock
    from meterpay.simulate.meters import (
        Cjt188Responder,
        Dlt645Responder,
        ModbusResponder,
        VirtualElectricityMeter,
        VirtualWaterMeter,
    )
    from meterpay.simulate.servers import VirtualDtu

    clock = ScaledClock()
    runs = []
    for d in range(dtus):
        responders: list[object] = []
        for m in range(per_dtu):
            if protocol == "cjt188":
                responders.append(
                    Cjt188Responder(VirtualWaterMeter(address(protocol, d, m), clock))
                )
                continue
            meter = VirtualElectricityMeter(f"{d * 1000 + m + 1:012d}", clock, unit_id=m + 1)
            meter.prepaid = False
            meter.tariff_energy = [Decimal(100 + m)] * 4
            responder = ModbusResponder if protocol == "modbus" else Dlt645Responder
            responders.append(responder(meter))
        bus = VirtualBus(responders)  # type: ignore[arg-type]
        runs.append(VirtualDtu(f"BENCH-{d}", bus, "127.0.0.1", port, heartbeat_interval=600).run())
    await asyncio.gather(*runs)


# --- the gateway side ----------------------------------------------------------------------


def setup_meters(protocol: str, dtus: int, per_dtu: int) -> list[int]:
    from tests.factories import build_org

    from meterpay.apps.meters import services as meters
    from meterpay.apps.meters.models import Gateway, Meter

    org = build_org("bench", 1)
    kind = "water" if protocol == "cjt188" else "electricity_1p"
    gateways = Gateway.objects.bulk_create(
        Gateway(
            organisation=org.org,
            site=org.site,
            identifier=f"BENCH-{d}",
            kind="dtu_4g",
            protocol=protocol,
        )
        for d in range(dtus)
    )
    assert meters  # the services module is imported for its models' side effects only
    created = Meter.objects.bulk_create(
        Meter(
            organisation=org.org,
            kind=kind,
            protocol=protocol,
            address=address(protocol, d, m).rjust(12, "0")
            if protocol == "modbus"
            else address(protocol, d, m),
            gateway=gateway,
            multiplier=1 + m % 3,
        )
        for d, gateway in enumerate(gateways)
        for m in range(per_dtu)
    )
    return [m.pk for m in created]


async def whole_path(args: argparse.Namespace) -> tuple[float, float, int]:
    from meterpay.gateway.db_port import DbPort, PollIntervals
    from meterpay.gateway.dtu import DtuServer
    from meterpay.gateway.process import GatewayProcess, ProcessOptions

    port = DbPort(
        intervals=PollIntervals(electricity=args.poll, water=args.poll),
        batch_size=args.batch,
        batch_delay=0.2,
    )
    server = DtuServer(port, listen_port=0, request_timeout=5.0)
    listen = await server.start()
    process = GatewayProcess(server, port, ProcessOptions(tick=0.5, plan_refresh=3600))
    child = subprocess.Popen(  # noqa: S603 - this very script, with fixed arguments
        [
            sys.executable,
            __file__,
            "--simulators",
            str(listen),
            "--protocol",
            args.protocol,
            "--dtus",
            str(args.dtus),
            "--meters-per-dtu",
            str(args.meters_per_dtu),
        ]
    )
    runner = asyncio.create_task(process.run())
    try:
        for d in range(args.dtus):
            await server.wait_for_dtu(f"BENCH-{d}", timeout=60)
        await asyncio.sleep(2.0)  # warm up: every meter's first (baseline) read
        stored0, intervals0 = port.stats["stored"], port.stats["intervals"]
        began = time.perf_counter()
        await asyncio.sleep(args.seconds)
        await port.flush()
        elapsed = time.perf_counter() - began
        stored = port.stats["stored"] - stored0
        intervals = port.stats["intervals"] - intervals0
    finally:
        process.stop()
        child.terminate()
        child.wait(10)
        await server.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await port.close()
    return stored / elapsed, intervals / elapsed, stored


def database_stage(args: argparse.Namespace, meter_ids: list[int]) -> tuple[float, float, list]:
    """The gateway DbPort's batch path fed directly: the same work without the network."""
    from django.utils import timezone

    from meterpay.apps.meters.models import Meter
    from meterpay.apps.readings.models import Interval, RegisterRead
    from meterpay.gateway.db_port import DbPort, PollIntervals, normalise_address
    from meterpay.gateway.readings import (
        ElectricityReading,
        EnergyRegisters,
        MeterProtocol,
        WaterReading,
    )

    port = DbPort(intervals=PollIntervals(60.0, 60.0))
    meters = list(Meter.objects.filter(pk__in=meter_ids).select_related("gateway"))
    rounds = 1 + max(1, args.db_reads // len(meters))
    start = timezone.now() - timedelta(days=2)
    items = []
    for r in range(rounds):
        for index, meter in enumerate(meters):
            assert meter.gateway is not None
            at = start + timedelta(minutes=r)
            total = Decimal(1000 + index) + Decimal(r) * Decimal("0.37")
            wire = normalise_address(meter.protocol, meter.address)
            reading: ElectricityReading | WaterReading
            if meter.protocol == "cjt188":
                reading = WaterReading(MeterProtocol.CJT188, wire, total, "open", read_at=at)
            else:
                energy = EnergyRegisters(total, None, None, None, None)
                reading = ElectricityReading(
                    MeterProtocol(meter.protocol), wire, energy, read_at=at
                )
            items.append((meter.gateway.identifier, reading, "poll"))
    # warm up: every meter's first contact (baseline read, link and supply rows) is not timed
    warm = len(meters)
    for offset in range(0, warm, args.batch):
        port.record_batch(items[offset : min(warm, offset + args.batch)])
    items = items[warm:]
    reads0, intervals0 = RegisterRead.objects.count(), Interval.objects.count()
    began = time.perf_counter()
    for offset in range(0, len(items), args.batch):
        port.record_batch(items[offset : offset + args.batch])
    elapsed = time.perf_counter() - began
    stored = RegisterRead.objects.count() - reads0
    intervals = Interval.objects.count() - intervals0
    rows = list(
        RegisterRead.objects.filter(read_at__gte=start, read_at__lt=start + timedelta(days=1))
        .order_by("pk")
        .values_list("organisation_id", "meter_id", "read_at", "source", "total")
    )
    return stored / elapsed, intervals / elapsed, rows


def raw_insert(rows: list) -> float:
    """The same rows, a year earlier, into the same table: COPY / executemany."""
    from django.db import connection, transaction
    from django.utils import timezone

    from meterpay.apps.readings.models import RegisterRead

    table = RegisterRead._meta.db_table
    year = timedelta(days=365)
    now = timezone.now()
    shifted = [(o, m, at - year, s, t, now) for o, m, at, s, t in rows]
    columns = "organisation_id, meter_id, read_at, source, total, received_at"
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in shifted:
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)"  # noqa: S608
            cursor.executemany(sql, shifted)
    elapsed = time.perf_counter() - began
    RegisterRead.objects.filter(read_at__lt=now - timedelta(days=300)).delete()
    return len(shifted) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="cjt188", choices=["cjt188", "modbus", "dlt645"])
    parser.add_argument("--dtus", type=int, default=100)
    parser.add_argument("--meters-per-dtu", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.01, help="poll interval per meter, s")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--db-reads", type=int, default=50_000)
    parser.add_argument("--simulators", type=int, help=argparse.SUPPRESS)  # child: gateway port
    args = parser.parse_args()
    if args.simulators:
        sys.path.insert(0, os.path.join(ROOT, "src"))
        asyncio.run(run_simulators(args.protocol, args.dtus, args.meters_per_dtu, args.simulators))
        return

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # setup only; the gateway uses a thread
    try:
        meter_ids = setup_meters(args.protocol, args.dtus, args.meters_per_dtu)
        # the database stage first: its reads lie in the past, the live polls come after them
        db_reads, db_intervals, rows = database_stage(args, meter_ids)
        raw = raw_insert(rows)
        path_reads, path_intervals, path_count = asyncio.run(whole_path(args))
        print(f"database            {connection.vendor} ({connection.settings_dict['NAME']})")
        print(
            f"machine             {platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
        )
        print(f"meters              {len(meter_ids)} {args.protocol} behind {args.dtus} DTUs")
        print(f"batch size          {args.batch}")
        print(
            f"1. whole path       {path_reads:,.0f} reads/s stored,"
            f" {path_intervals:,.0f} intervals/s ({path_count} reads in {args.seconds:g} s:"
            " meters → TCP → gateway → DB)"
        )
        print(
            f"2. database stage   {db_reads:,.0f} reads/s stored, {db_intervals:,.0f} intervals/s"
            f" ({len(rows)} reads: gateway DbPort batches → DB)"
        )
        print(f"3. raw bulk insert  {raw:,.0f} rows/s (same rows, same table)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
