"""The gateway's batching store: pushed batches, supply states only when they change."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from meterpay.apps.control.models import MeterSupplyState
from meterpay.apps.meters.models import Meter
from meterpay.apps.readings.models import Interval, RegisterRead
from meterpay.gateway.db_port import DbPort, normalise_address
from meterpay.gateway.readings import (
    ElectricityReading,
    EnergyRegisters,
    MeterProtocol,
    MeterReading,
    RelayState,
)
from tests.factories import build_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def org() -> Any:
    return build_org("dbp", 1200)


def reading(meter: Any, minutes: int, total: str, relay: RelayState) -> MeterReading:
    return ElectricityReading(
        MeterProtocol.DLT645,
        normalise_address(meter.protocol, meter.address),
        EnergyRegisters(Decimal(total), None, None, None, None),
        relay=relay,
        read_at=timezone.now().replace(microsecond=0) - timedelta(hours=2, minutes=-minutes),
    )


def test_a_restarted_gateway_reports_only_supply_states_that_changed(org: Any) -> None:
    gateway = org.gateway.identifier
    DbPort().record_batch([(gateway, reading(org.meter, 0, "1", RelayState.CLOSED), "poll")])
    first = MeterSupplyState.objects.get(meter=org.meter)
    assert first.reported == "on"
    restarted = DbPort()  # knows nothing of the meter's state but what the database holds
    restarted.record_batch([(gateway, reading(org.meter, 15, "1.1", RelayState.CLOSED), "poll")])
    assert MeterSupplyState.objects.get(meter=org.meter).reported_at == first.reported_at
    restarted.record_batch([(gateway, reading(org.meter, 30, "1.2", RelayState.OPEN), "poll")])
    now = MeterSupplyState.objects.get(meter=org.meter)
    assert now.reported == "off" and now.reported_at > first.reported_at


@pytest.mark.django_db(transaction=True)  # the port stores from its own thread
def test_pushed_batches_are_buffered_and_stored_in_batches(org: Any) -> None:
    port = DbPort(batch_size=3, batch_delay=60, lanes=1)
    gateway = org.gateway.identifier
    readings = [
        reading(meter, minutes, f"{10 + minutes / 100}", RelayState.CLOSED)
        for minutes in range(0, 60, 15)
        for meter in (org.meter, org.free_meter)
    ]
    unknown = ElectricityReading(
        MeterProtocol.DLT645,
        "999999999999",
        EnergyRegisters(Decimal(1), None, None, None, None),
        read_at=timezone.now(),
    )

    async def push() -> None:
        await port.readings_pushed(gateway, [*readings[:5], unknown])
        assert port.stats["batches"] == 2  # 6 waiting, batch size 3: stored at once
        await port.readings_pushed(gateway, readings[5:])
        await port.close()  # stores what waits, closes the port's connection

    asyncio.run(push())
    assert RegisterRead.objects.filter(source="push").count() == 8
    assert Interval.objects.filter(meter__in=[org.meter, org.free_meter]).count() == 6
    assert port.stats["stored"] == 8 and port.stats["batches"] == 3


@pytest.mark.django_db(transaction=True)  # the lanes store from threads of their own
def test_two_lanes_store_every_meters_readings_in_order(org: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("lanes are for PostgreSQL: SQLite has one writer")
    meters = [org.meter, org.free_meter] + [
        Meter.objects.create(
            organisation=org.org,
            kind="electricity_1p",
            protocol="dlt645",
            address=f"{91_000 + n:012d}",
            gateway=org.gateway,
        )
        for n in range(8)
    ]
    port = DbPort(batch_size=8, batch_delay=60, lanes=2)
    readings = [
        reading(meter, minutes, f"{10 + minutes / 100 + index}", RelayState.CLOSED)
        for minutes in range(0, 120, 15)
        for index, meter in enumerate(meters)
    ]

    async def push() -> None:
        for start in range(0, len(readings), 7):
            await port.readings_pushed(org.gateway.identifier, readings[start : start + 7])
        await port.close()

    asyncio.run(push())
    assert len(port._lane_executors) == 0  # closed
    assert port.stats["stored"] == len(readings) == RegisterRead.objects.count()
    for meter in meters:
        intervals = Interval.objects.filter(meter=meter).order_by("end_at")
        assert [(i.status, i.consumption) for i in intervals] == [("ok", Decimal("0.15"))] * 7


def test_a_decision_waits_for_the_batches_other_lanes_are_storing() -> None:
    port = DbPort(lanes=2)
    with port._lanes_idle:
        port._lanes_busy = 1  # a lane is storing a batch
    decided = threading.Event()

    def decide() -> None:
        port._flush_sync()  # what a command's status check does first
        decided.set()

    thread = threading.Thread(target=decide)
    thread.start()
    assert not decided.wait(0.3)
    with port._lanes_idle:
        port._lanes_busy -= 1
        port._lanes_idle.notify_all()
    assert decided.wait(5)
    thread.join()


def test_senders_wait_when_the_lanes_fall_behind() -> None:
    """A backlog of batches is what a command's status check waits for: it stays small."""
    port = DbPort(batch_size=10, batch_delay=60, lanes=1)
    stored: list[int] = []
    backlog: list[int] = []

    def slow_store(batch: Any) -> None:
        backlog.append(sum(len(queue) for queue in port._queues))
        threading.Event().wait(0.01)  # the database is slow
        stored.append(len(batch))

    port.record_batch = slow_store  # type: ignore[method-assign]

    async def sender(number: int) -> None:
        for index in range(40):
            await port.readings_pushed(f"G{number}", [f"reading {index}"])  # type: ignore[list-item]

    async def run() -> None:
        await asyncio.gather(*(sender(n) for n in range(30)))
        await port.flush()

    asyncio.run(run())
    assert sum(stored) == 30 * 40
    assert max(backlog) <= 4  # two batches a lane waiting, and the senders that filled one


def test_a_decision_stores_what_the_lanes_were_given_even_with_no_sender_waiting() -> None:
    """A sender cancelled after sharing out its readings leaves no lane stuck."""
    port = DbPort(batch_size=2, lanes=2)
    port._lane_count = lambda: 2  # type: ignore[method-assign]  # as on PostgreSQL
    stored: list[str] = []
    port.record_batch = lambda batch: stored.extend(r.address for _, r, _ in batch)  # type: ignore[method-assign,misc]

    class Reading:
        def __init__(self, address: str) -> None:
            self.address = address

    items = [("G", Reading(f"{n:012d}"), "poll") for n in range(20)]
    given = port._queue(items)  # type: ignore[arg-type]
    assert given == [0, 1] and port._lanes_busy > 0  # and nobody drains them
    port._flush_sync()
    assert sorted(stored) == sorted(r.address for _, r, _ in items)
    assert port._lanes_busy == 0
    for executor in port._lane_executors:
        executor.shutdown()
