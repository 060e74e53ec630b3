"""Commissioning client against the virtual serial server, with wire faults."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import pytest

from meterpay.gateway import commissioning
from meterpay.gateway.errors import (
    CommandRejected,
    MeterProtocolError,
    MeterTimeout,
    MeterUnreachable,
)
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import (
    Command,
    ElectricityReading,
    MeterProtocol,
    RelayState,
    WaterReading,
)
from meterpay.gateway.transport import BusClient, TcpLink
from meterpay.protocols import dlt645
from meterpay.simulate.bus import FaultPlan
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.servers import VirtualSerialServer
from tests.simulate.factories import (
    DLT_ADDRESS,
    START,
    WATER_ADDRESS,
    bus_for,
    electricity_meter,
    water_meter,
)

SPECS = {
    "dlt645": MeterSpec(MeterProtocol.DLT645, DLT_ADDRESS),
    "modbus": MeterSpec(MeterProtocol.MODBUS, "3"),
    "cjt188": MeterSpec(MeterProtocol.CJT188, WATER_ADDRESS),
}


async def with_server(protocol: str, meter: object, faults: FaultPlan, action):  # type: ignore[no-untyped-def]
    server = VirtualSerialServer(bus_for(protocol, meter), faults=faults)  # type: ignore[arg-type]
    port = await server.start()
    try:
        return await action(commissioning.Endpoint("127.0.0.1", port, timeout=0.5))
    finally:
        await server.stop()


def test_dlt645_reading_has_every_field_including_prepaid() -> None:
    clock = ManualClock(START)
    meter = electricity_meter(clock)
    clock.advance(timedelta(hours=3))

    async def read(endpoint: commissioning.Endpoint) -> object:
        return await commissioning.read_async(endpoint, SPECS["dlt645"])

    reading = asyncio.run(with_server("dlt645", meter, FaultPlan(), read))
    assert isinstance(reading, ElectricityReading)
    energy = reading.energy_kwh
    assert energy.total == energy.sharp + energy.peak + energy.flat + energy.valley  # type: ignore[operator]
    assert energy.total == meter.energy_registers()[0] and energy.total > 0
    assert reading.relay is RelayState.CLOSED
    assert reading.remaining_money == meter.remaining_money.quantize(Decimal("0.01"), ROUND_DOWN)
    assert reading.remaining_money < Decimal("100.00")  # consumption was paid for
    assert reading.purchase_count == 1
    assert reading.voltage_v == Decimal("229.8")


@pytest.mark.parametrize("protocol", ["dlt645", "modbus"])
def test_relay_trip_then_read_shows_open(protocol: str) -> None:
    meter = electricity_meter()

    async def scenario(endpoint: commissioning.Endpoint) -> tuple[str, object]:
        state = await commissioning.command_async(endpoint, SPECS[protocol], Command.RELAY_TRIP)
        return state, await commissioning.read_async(endpoint, SPECS[protocol])

    state, reading = asyncio.run(with_server(protocol, meter, FaultPlan(), scenario))
    assert state == "open"
    assert isinstance(reading, ElectricityReading) and reading.relay is RelayState.OPEN
    assert not meter.relay_closed


def test_valve_close_then_read_shows_closed() -> None:
    meter = water_meter()

    async def scenario(endpoint: commissioning.Endpoint) -> object:
        await commissioning.command_async(endpoint, SPECS["cjt188"], Command.VALVE_CLOSE)
        return await commissioning.read_async(endpoint, SPECS["cjt188"])

    reading = asyncio.run(with_server("cjt188", meter, FaultPlan(), scenario))
    assert isinstance(reading, WaterReading) and reading.valve == "closed"


@pytest.mark.parametrize("protocol", ["dlt645", "modbus", "cjt188"])
def test_split_and_delayed_replies_are_reassembled(protocol: str) -> None:
    meter = water_meter() if protocol == "cjt188" else electricity_meter()
    faults = FaultPlan(split_rate=1.0, delay=0.05)

    async def read(endpoint: commissioning.Endpoint) -> object:
        return await commissioning.read_async(endpoint, SPECS[protocol])

    reading = asyncio.run(with_server(protocol, meter, faults, read))
    assert reading.address in (DLT_ADDRESS, "3", WATER_ADDRESS)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        (FaultPlan(drop_next=1), MeterTimeout),
        (FaultPlan(corrupt_next=1), MeterProtocolError),
        (FaultPlan(disconnect_after=1), MeterUnreachable),
        (FaultPlan(delay=1.0), MeterTimeout),
    ],
)
def test_faults_become_typed_errors(faults: FaultPlan, error: type[Exception]) -> None:
    async def read(endpoint: commissioning.Endpoint) -> object:
        return await commissioning.read_async(endpoint, SPECS["dlt645"])

    with pytest.raises(error):
        asyncio.run(with_server("dlt645", electricity_meter(), faults, read))


def test_lost_acknowledgement_times_out_but_the_relay_acted() -> None:
    meter = electricity_meter()

    async def trip(endpoint: commissioning.Endpoint) -> object:
        return await commissioning.command_async(endpoint, SPECS["dlt645"], Command.RELAY_TRIP)

    with pytest.raises(MeterTimeout):
        asyncio.run(with_server("dlt645", meter, FaultPlan(lose_ack_next=1), trip))
    assert meter.relay_closed is False


def test_wrong_password_is_rejected() -> None:
    meter = electricity_meter()
    spec = MeterSpec(MeterProtocol.DLT645, DLT_ADDRESS, password="02999999")

    async def trip(endpoint: commissioning.Endpoint) -> object:
        return await commissioning.command_async(endpoint, spec, Command.RELAY_TRIP)

    with pytest.raises(CommandRejected, match="password"):
        asyncio.run(with_server("dlt645", meter, FaultPlan(), trip))
    assert meter.relay_closed


def test_modbus_three_phase_map() -> None:
    meter = electricity_meter(model="DTSY1352")
    spec = MeterSpec(MeterProtocol.MODBUS, "3", model="DTSY1352")

    async def read(endpoint: commissioning.Endpoint) -> object:
        return await commissioning.read_async(endpoint, spec)

    reading = asyncio.run(with_server("modbus", meter, FaultPlan(), read))
    assert isinstance(reading, ElectricityReading)
    assert reading.power_kw == meter.power_kw().quantize(Decimal("0.001"))
    assert reading.voltage_v == Decimal("229.8")


def test_one_request_in_flight_per_bus() -> None:
    meter = electricity_meter()

    async def scenario(endpoint: commissioning.Endpoint) -> list[object]:
        link = await TcpLink.connect(endpoint.host, endpoint.port)
        bus = BusClient(link, timeout=1.0)
        request = dlt645.encode_frame(dlt645.read_request(DLT_ADDRESS, dlt645.VOLTAGE_A))

        async def one() -> object:
            reply = await bus.transact(request, dlt645.Dlt645Framer(), lambda f: f.is_reply)
            return dlt645.parse_read_reply(reply, dlt645.VOLTAGE_A)

        try:
            return list(await asyncio.gather(*(one() for _ in range(5))))
        finally:
            await link.close()

    results = asyncio.run(with_server("dlt645", meter, FaultPlan(split_rate=1.0), scenario))
    assert results == [(Decimal("229.8"),)] * 5


def test_time_sync_broadcast_reaches_the_meter() -> None:
    meter = electricity_meter()
    moment = START + timedelta(minutes=5)

    async def scenario(endpoint: commissioning.Endpoint) -> None:
        link = await TcpLink.connect(endpoint.host, endpoint.port)
        try:
            await BusClient(link).send_only(dlt645.encode_frame(dlt645.time_sync_broadcast(moment)))
            await asyncio.sleep(0.1)
        finally:
            await link.close()

    asyncio.run(with_server("dlt645", meter, FaultPlan(), scenario))
    assert meter.last_time_sync == moment
