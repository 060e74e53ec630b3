"""Readings pipeline throughput: simulated meters → gateway → database, and deductions.

    uv run python bench/ingest.py [--dtus 100] [--meters-per-dtu 10] [--protocol cjt188]
        [--mqtt-gateways 10] [--meters-per-mqtt 200] [--mqtt-every 0.066]
        [--seconds 10] [--db-reads 50000] [--batch 1000] [--lanes 2] [--accounts 100]
        [--deduct-seconds 10] [--only deductions]

Runs against a fresh test database (SQLite, or ``DATABASE_URL``, e.g.
``postgres://postgres@127.0.0.1:5432/meterpay_bench`` → ``test_meterpay_bench``), with the
production settings (jobs queued in a SQLite queue in a temporary directory, not run inline)
and Mosquitto on 127.0.0.1:1883 for the MQTT path. Figures, in one run, on the same tables:

1. whole path, MQTT: virtual IoT gateways (in a child process) publish their meters'
   readings as batched telemetry (``{"readings": [...]}``) through Mosquitto, more than the
   gateway takes (30,000 readings/s by default); the gateway's MQTT adapter hands them to the
   batching DbPort, which stores readings and intervals;
2. whole path, DTUs: virtual DTUs (in a child process) answer real frames over TCP, the
   gateway process (DtuServer, BusWorkers, the batching DbPort) polls every meter as fast
   as it can, one request in flight per bus;
3. database stage: the gateway DbPort fed readings directly (no network), the batch path
   ``register_reads_record_batch`` at full speed, one read of every meter (DTU and MQTT)
   per flush of ``--batch`` readings for each of ``--lanes`` lanes;
4. raw bulk insert of the same rows into the same table (COPY on PostgreSQL, executemany
   elsewhere): the ceiling for (3);
5. deductions as readings arrive: ``--accounts`` DTU meters have an open prepaid account
   with a tariff; after each batch of (3) is stored, the deduction job it queued runs (the
   job worker's code, ``meters_deduct_task``), timed apart from the store, for up to
   ``--deduct-seconds``; the jobs left then are counted, not run. ``--only deductions``
   measures (5) alone: the database stage over the ``--accounts`` meters only, so that each
   job deducts every one of them for one interval.

Measured figures, the machine and the command: docs/readings.md, "Performance".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
#: The organisation of the benchmark's meters (its slug is in the MQTT topics).
ORG = "bench-ingest"
BROKER = ("127.0.0.1", 1883)


def address(protocol: str, dtu: int, meter: int) -> str:
    if protocol == "modbus":
        return str(meter + 1)
    number = dtu * 1000 + meter + 1
    return f"{number:014d}" if protocol == "cjt188" else f"{number:012d}"


def mqtt_address(gateway: int, meter: int) -> str:
    return f"{900_000_000 + gateway * 10_000 + meter:014d}"


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


async def run_mqtt_simulators(gateways: int, per_gateway: int, every: float) -> None:
    from meterpay.simulate.clock import ScaledClock
    from meterpay.simulate.meters import VirtualWaterMeter
    from meterpay.simulate.mqtt import VirtualMqttGateway

    clock = ScaledClock()
    devices = [
        VirtualMqttGateway(
            ORG,
            f"BENCH-MQTT-{g}",
            {
                mqtt_address(g, m): VirtualWaterMeter(mqtt_address(g, m), clock)
                for m in range(per_gateway)
            },
            host=BROKER[0],
            port=BROKER[1],
            telemetry_every=every,
            telemetry_batch=per_gateway,  # one message per gateway and round
        )
        for g in range(gateways)
    ]
    await asyncio.gather(*(device.run() for device in devices))


# --- the gateway side ----------------------------------------------------------------------


def setup_meters(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """DTU meters (the first ``--accounts`` with an open prepaid account and a tariff) and
    MQTT meters: their ids."""
    from django.utils import timezone
    from tests.factories import build_org

    from meterpay.apps.billing.demo import DEMO_ELECTRICITY_TARIFF, DEMO_WATER_TARIFF
    from meterpay.apps.customers import services as customers
    from meterpay.apps.customers.models import Account
    from meterpay.apps.meters.models import Gateway, Meter
    from meterpay.apps.payments.services import recharge_record
    from meterpay.apps.sites.models import Room
    from meterpay.apps.supply.models import BalancePolicy
    from meterpay.apps.tariffs.services import default_tariffs_create

    org = build_org(ORG, 1)
    BalancePolicy.objects.create(
        organisation=org.org,
    )
    default_tariffs_create(
        actor="bench",
        organisation=org.org,
        electricity=DEMO_ELECTRICITY_TARIFF,
        water=DEMO_WATER_TARIFF,
    )
    protocol = args.protocol
    kind = "water" if protocol == "cjt188" else "electricity_1p"
    gateways = Gateway.objects.bulk_create(
        Gateway(
            organisation=org.org,
            site=org.site,
            identifier=f"BENCH-{d}",
            kind="dtu_4g",
            protocol=protocol,
        )
        for d in range(args.dtus)
    )
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
        for m in range(args.meters_per_dtu)
    )
    rooms = Room.objects.bulk_create(
        Room(
            organisation=org.org, floor=org.floor, number=f"B{n}", kind="shop", area_m2=Decimal(20)
        )
        for n in range(min(args.accounts, len(created)))
    )
    for meter, room in zip(created[: args.accounts], rooms, strict=False):
        account = customers.account_open_new(
            actor="bench", customer=org.customer, rooms=[room], meters=[meter]
        )
        recharge_record(
            actor="bench",
            account=account,
            amount="100000.00",
            channel="cash",
            idempotency_key=f"bench-{meter.pk}",
        )
    # the database stage's readings lie in the past: the accounts were open then
    Account.objects.filter(organisation=org.org).update(
        opened_at=timezone.now() - timedelta(days=5)
    )
    mqtt_gateways = Gateway.objects.bulk_create(
        Gateway(
            organisation=org.org, site=org.site, identifier=f"BENCH-MQTT-{g}", kind="mqtt",
            protocol="cjt188",
        )
        for g in range(args.mqtt_gateways)
    )  # fmt: skip
    mqtt_meters = Meter.objects.bulk_create(
        Meter(
            organisation=org.org,
            kind="water",
            protocol="cjt188",
            address=mqtt_address(g, m),
            gateway=gateway,
        )
        for g, gateway in enumerate(mqtt_gateways)
        for m in range(args.meters_per_mqtt)
    )
    return [m.pk for m in created], [m.pk for m in mqtt_meters]


async def whole_path_dtu(args: argparse.Namespace) -> tuple[float, float, int]:
    from meterpay.gateway.db_port import DbPort, PollIntervals
    from meterpay.gateway.dtu import DtuServer
    from meterpay.gateway.process import GatewayProcess, ProcessOptions

    port = DbPort(
        intervals=PollIntervals(electricity=args.poll, water=args.poll),
        batch_size=args.batch,
        batch_delay=0.2,
        lanes=args.lanes,
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
        return await measure(port, args.dtus * args.meters_per_dtu, args.seconds)
    finally:
        process.stop()
        child.terminate()
        child.wait(10)
        await server.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await port.close()


async def measure(port: object, meters: int, seconds: float) -> tuple[float, float, int]:
    """Readings and intervals the port stored per second over ``seconds`` (and flushed),
    once every meter's first (baseline) read is stored."""
    from meterpay.gateway.db_port import DbPort
    from meterpay.gateway.main import collector_settle

    assert isinstance(port, DbPort)
    deadline = time.perf_counter() + 300
    while port.stats["stored"] < meters and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    await port.flush()
    collector_settle()  # as the gateway does once started
    stored0, intervals0 = port.stats["stored"], port.stats["intervals"]
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    await port.flush()
    elapsed = time.perf_counter() - began
    stored = port.stats["stored"] - stored0
    intervals = port.stats["intervals"] - intervals0
    return stored / elapsed, intervals / elapsed, stored


async def whole_path_mqtt(args: argparse.Namespace) -> tuple[float, float, int] | None:
    from meterpay.gateway.db_port import DbPort, PollIntervals
    from meterpay.gateway.mqtt import MqttAdapter

    try:
        socket.create_connection(BROKER, timeout=1).close()
    except OSError:
        return None
    if args.mqtt_gateways == 0:
        return None
    # the expected interval is the telemetry period: plausible spans are not gaps
    port = DbPort(
        intervals=PollIntervals(args.mqtt_every, args.mqtt_every),
        batch_size=args.batch,
        batch_delay=0.2,
        lanes=args.lanes,
    )
    adapter = MqttAdapter(port, *BROKER, identifier=f"meterpay-{ORG}-{os.getpid()}")
    runner = asyncio.create_task(adapter.run())  # no plans: nothing to poll, telemetry only
    await asyncio.wait_for(adapter.connected.wait(), 10)
    child = subprocess.Popen(  # noqa: S603 - this very script, with fixed arguments
        [
            sys.executable,
            __file__,
            "--mqtt-simulators",
            "--mqtt-gateways",
            str(args.mqtt_gateways),
            "--meters-per-mqtt",
            str(args.meters_per_mqtt),
            "--mqtt-every",
            str(args.mqtt_every),
        ]
    )
    try:
        return await measure(port, args.mqtt_gateways * args.meters_per_mqtt, args.seconds)
    finally:
        child.terminate()
        child.wait(10)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await port.close()


class Deductions:
    """The job worker's part, run by hand: the queued deduction jobs, timed on their own."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.seconds = 0.0
        self.jobs = 0
        self.posted = 0
        self.left = 0

    def run_queued(self) -> None:
        from huey.contrib.djhuey import HUEY

        while (task := HUEY.dequeue()) is not None:
            if self.seconds >= self.budget:
                self.left += 1
                continue
            began = time.perf_counter()
            self.posted += int(HUEY.execute(task) or 0)
            self.seconds += time.perf_counter() - began
            self.jobs += 1


def database_stage(
    args: argparse.Namespace, meter_ids: list[int], deductions: Deductions
) -> tuple[float, float, list]:
    """The gateway DbPort's batch path fed directly: the same work without the network."""
    from django.utils import timezone

    from meterpay.apps.meters.models import Meter
    from meterpay.apps.readings.models import Interval, RegisterRead
    from meterpay.gateway.db_port import DbPort, PollIntervals, normalise_address
    from meterpay.gateway.main import collector_settle
    from meterpay.gateway.readings import (
        ElectricityReading,
        EnergyRegisters,
        MeterProtocol,
        WaterReading,
    )

    port = DbPort(intervals=PollIntervals(60.0, 60.0), batch_size=args.batch, lanes=args.lanes)
    meters = list(Meter.objects.filter(pk__in=meter_ids).select_related("gateway"))
    rounds = 1 + max(1, args.db_reads // len(meters))
    start = timezone.now() - timedelta(days=2)
    items = []
    for r in range(rounds):
        for index, meter in enumerate(meters):
            assert meter.gateway is not None
            at = start + timedelta(minutes=r)
            # plausible use per minute: electricity well under 25 kW, water under 5 m³/h
            total = Decimal(1000 + index) + Decimal(r) * Decimal("0.05")
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
    loop = asyncio.new_event_loop()  # the port's store, as the gateway's buffer calls it
    # warm up: every meter's first contact (baseline read, link and supply rows) is not timed
    warm = len(meters)
    for offset in range(0, warm, args.batch):
        loop.run_until_complete(port.store(items[offset : min(warm, offset + args.batch)]))
    items = items[warm:]
    deductions.run_queued()
    reads0, intervals0 = RegisterRead.objects.count(), Interval.objects.count()
    collector_settle()  # as the gateway does once started (the readings to feed included)
    elapsed = 0.0
    flush = args.batch * max(1, args.lanes)  # what fills the gateway's buffer: a batch a lane
    for offset in range(0, len(items), flush):
        began = time.perf_counter()
        loop.run_until_complete(port.store(items[offset : offset + flush]))
        elapsed += time.perf_counter() - began
        deductions.run_queued()  # the job worker, after each batch: not in the store's time
    loop.run_until_complete(port.close())
    loop.close()
    stored = RegisterRead.objects.count() - reads0
    intervals = Interval.objects.count() - intervals0
    rows = list(
        RegisterRead.objects.filter(read_at__gte=start, read_at__lt=start + timedelta(days=1))
        .order_by("pk")
        .values_list("organisation_id", "meter_id", "read_at", "source", "total")
    )
    return stored / elapsed, intervals / elapsed, rows


def deductions_only(args: argparse.Namespace, meter_ids: list[int], deductions: Deductions) -> None:
    """(5) alone: the database stage over the meters with an account, one read per meter per
    batch, and the deduction job of each batch, timed."""
    from django.db import connection

    args.batch = min(args.batch, len(meter_ids))  # each job: every meter, one interval each
    database_stage(args, meter_ids, deductions)
    print(f"database            {connection.vendor} ({connection.settings_dict['NAME']})")
    print(f"machine             {platform.machine()}, {os.cpu_count()} cores, {platform.system()}")
    print(f"meters              {len(meter_ids)} {args.protocol} with an open prepaid account")
    print(f"batch size          {args.batch}")
    print_deductions(deductions)


def print_deductions(deductions: Deductions) -> None:
    rate = deductions.posted / deductions.seconds if deductions.seconds else 0.0
    print(
        f"5. deductions       {rate:,.0f} deductions posted/s ({deductions.posted} by"
        f" {deductions.jobs} jobs in {deductions.seconds:.1f} s, after each batch of 3;"
        f" {deductions.left} jobs left unrun)"
    )


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
    parser.add_argument("--mqtt-gateways", type=int, default=10, help="0: no MQTT path")
    parser.add_argument("--meters-per-mqtt", type=int, default=200)
    # 10 x 200 readings every 0.066 s offers 30,000 readings/s: more than the gateway takes,
    # so the figure is what it keeps up with, not what the simulators send
    parser.add_argument("--mqtt-every", type=float, default=0.066, help="telemetry period, s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.01, help="poll interval per meter, s")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--db-reads", type=int, default=50_000)
    parser.add_argument("--lanes", type=int, default=2, help="the gateway's storing lanes")
    parser.add_argument("--accounts", type=int, default=100, help="DTU meters with an account")
    parser.add_argument("--deduct-seconds", type=float, default=10.0)
    parser.add_argument(
        "--only",
        choices=["deductions"],
        help="deductions: only (5), the --accounts meters read by the database stage",
    )
    parser.add_argument("--simulators", type=int, help=argparse.SUPPRESS)  # child: gateway port
    parser.add_argument("--mqtt-simulators", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulators or args.mqtt_simulators:
        sys.path.insert(0, os.path.join(ROOT, "src"))
        if args.mqtt_simulators:
            simulators = run_mqtt_simulators(
                args.mqtt_gateways, args.meters_per_mqtt, args.mqtt_every
            )
        else:
            simulators = run_simulators(
                args.protocol, args.dtus, args.meters_per_dtu, args.simulators
            )
        asyncio.run(simulators)
        return

    # The production settings: jobs go to a queue (here a throw-away one), not run inline.
    os.environ["DJANGO_SETTINGS_MODULE"] = "meterpay.settings"
    var = tempfile.mkdtemp(prefix="meterpay-bench-")
    os.environ["METERPAY_VAR"] = var
    os.environ.pop("HUEY_URL", None)
    os.environ.pop("HUEY_IMMEDIATE", None)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # setup only; the gateway uses a thread
    try:
        began = time.perf_counter()
        meter_ids, mqtt_ids = setup_meters(args)
        print(f"setup               {time.perf_counter() - began:.0f} s", flush=True)
        # the database stage first: its reads lie in the past, the live ones come after them
        deductions = Deductions(args.deduct_seconds)
        if args.only == "deductions":
            deductions_only(args, meter_ids[: args.accounts], deductions)
            return
        # every meter: a flush (a batch for each lane) holds one read of each
        db_reads, db_intervals, rows = database_stage(args, meter_ids + mqtt_ids, deductions)
        raw = raw_insert(rows)
        mqtt = asyncio.run(whole_path_mqtt(args))
        dtu_reads, dtu_intervals, dtu_count = asyncio.run(whole_path_dtu(args))
        print(f"database            {connection.vendor} ({connection.settings_dict['NAME']})")
        print(
            f"machine             {platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
        )
        print(
            f"meters              {len(meter_ids)} {args.protocol} behind {args.dtus} DTUs,"
            f" {len(mqtt_ids)} water behind {args.mqtt_gateways} MQTT gateways"
        )
        print(f"batch size          {args.batch}")
        lanes = args.lanes if connection.vendor == "postgresql" else 1  # SQLite: one writer
        offered = args.mqtt_gateways * args.meters_per_mqtt / args.mqtt_every
        if mqtt is None:
            print("1. whole path MQTT  skipped (no MQTT gateways, or no broker at 127.0.0.1:1883)")
        else:
            print(
                f"1. whole path MQTT  {mqtt[0]:,.0f} reads/s stored, {mqtt[1]:,.0f} intervals/s"
                f" ({mqtt[2]} reads in {args.seconds:g} s: batched telemetry every"
                f" {args.mqtt_every:g} s, {offered:,.0f}/s offered → Mosquitto → gateway → DB)"
            )
        print(
            f"2. whole path DTUs  {dtu_reads:,.0f} reads/s stored,"
            f" {dtu_intervals:,.0f} intervals/s ({dtu_count} reads in {args.seconds:g} s:"
            " meters → TCP → gateway → DB)"
        )
        print(
            f"3. database stage   {db_reads:,.0f} reads/s stored, {db_intervals:,.0f} intervals/s"
            f" ({len(rows)} reads of {len(meter_ids) + len(mqtt_ids)} meters: gateway DbPort"
            f" batches of {args.batch} in {lanes} lane{'s' if lanes > 1 else ''} → DB)"
        )
        print(f"4. raw bulk insert  {raw:,.0f} rows/s (same rows, same table)")
        print_deductions(deductions)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    main()
