"""Modbus-RTU against an independent implementation: pymodbus's server and client.

A pymodbus server with the RTU framer on TCP is what a serial server in transparent
TCP-server mode puts in front of an RS-485 meter. Its datastore is loaded with raw register
values of the Acrel DDSY1352 / DTSY1352 maps (docs/protocols.md), written out here by hand
rather than with our codec, so both sides are checked against the table. A small action
stands in for the meter firmware: 0x5555 / 0xAAAA in the relay control register (0x0041)
trip / close the relay (status register 0x0040), anything else is exception 3.

The other direction: pymodbus's client reads and switches our simulated meter.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from meterpay.gateway import commissioning
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import ElectricityReading, MeterProtocol, RelayState
from meterpay.gateway.transport import BusClient, TcpLink
from meterpay.protocols import modbus_rtu
from meterpay.protocols.errors import ExceptionReply
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.servers import VirtualSerialServer
from tests.simulate.factories import START, bus_for, electricity_meter

pytestmark = pytest.mark.interop

UNIT = 7
TIMEOUT = 2.0
RELAY_STATUS, RELAY_CONTROL = 0x0040, 0x0041

#: DDSY1352 (single phase), raw register values.
DDSY1352 = [
    # 0x0000-0x0009: total, sharp, peak, flat, valley; UINT32 high word first, 0.01 kWh
    SimData(0x0000, values=[1234567, 100001, 300002, 500003, 334561], datatype=DataType.UINT32),
    SimData(0x000A, values=0, datatype=DataType.UINT16),  # password
    SimData(0x000B, values=2203, datatype=DataType.UINT16),  # voltage 220.3 V
    SimData(0x000C, values=512, datatype=DataType.UINT16),  # current 5.12 A
    SimData(0x000D, values=1127, datatype=DataType.INT16),  # active power 1.127 kW
    SimData(0x000E, values=0, datatype=DataType.UINT16),  # (not used by the map)
    SimData(0x000F, values=1150, datatype=DataType.UINT16),  # apparent power 1.150 kVA
    SimData(0x0010, values=980, datatype=DataType.INT16),  # power factor 0.980
]

#: DTSY1352 (three phase), raw register values.
DTSY1352 = [
    SimData(0x0000, values=[8800000, 1, 2, 3, 8799994], datatype=DataType.UINT32),
    SimData(0x000A, values=0, datatype=DataType.UINT16),
    SimData(0x000B, values=[2301, 2302, 2303], datatype=DataType.UINT16),  # Ua Ub Uc
    SimData(0x000E, values=[1001, 1002, 1003], datatype=DataType.UINT16),  # Ia Ib Ic
    SimData(0x0011, values=-6915, datatype=DataType.INT32),  # -6.915 kW (exporting)
    SimData(0x0013, values=-875, datatype=DataType.INT16),  # power factor -0.875
]


async def acrel_relay(
    function: int,
    start: int,
    address: int,
    count: int,
    registers: list[int],
    values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    """The meter firmware's relay control: pymodbus calls this on every access."""
    if function != 6 or address != RELAY_CONTROL or values is None:
        return None
    if values[0] == 0x5555:
        registers[RELAY_STATUS - start] = 1
    elif values[0] == 0xAAAA:
        registers[RELAY_STATUS - start] = 0
    else:
        return ExcCodes.ILLEGAL_VALUE
    return None


@dataclass
class PymodbusMeter:
    port: int
    loop: asyncio.AbstractEventLoop
    server: ModbusTcpServer

    def registers(self, address: int, count: int = 1) -> list[int]:
        """Holding registers straight from the pymodbus datastore."""
        future = asyncio.run_coroutine_threadsafe(
            self.server.async_getValues(UNIT, 3, address, count), self.loop
        )
        return [int(value) for value in future.result(5)]


@pytest.fixture
def pymodbus_meter(request: pytest.FixtureRequest) -> Iterator[PymodbusMeter]:
    """A pymodbus RTU-over-TCP server in its own thread (the CLI runs its own event loop)."""
    simdata = getattr(request, "param", DDSY1352)
    relay = SimData(RELAY_STATUS, values=[0, 0], datatype=DataType.UINT16)
    device = SimDevice(UNIT, simdata=[*simdata, relay], action=acrel_relay)
    loop = asyncio.new_event_loop()
    started: list[ModbusTcpServer] = []
    ready = threading.Event()

    async def serve() -> None:
        server = ModbusTcpServer(device, framer=FramerType.RTU, address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        started.append(server)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.run_forever()
        loop.run_until_complete(started[0].shutdown())
        loop.close()

    thread = threading.Thread(target=run, name="pymodbus-meter", daemon=True)
    thread.start()
    assert ready.wait(5), "pymodbus server did not start"
    server = started[0]
    port = server.transport.sockets[0].getsockname()[1]
    try:
        yield PymodbusMeter(port, loop, server)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def spec(model: str = "DDSY1352") -> MeterSpec:
    return MeterSpec(MeterProtocol.MODBUS, str(UNIT), model=model)


def read(meter: PymodbusMeter, model: str = "DDSY1352") -> ElectricityReading:
    endpoint = commissioning.Endpoint("127.0.0.1", meter.port, TIMEOUT)
    reading = commissioning.read_meter(endpoint, spec(model))
    assert isinstance(reading, ElectricityReading)
    return reading


def cli(meter: PymodbusMeter, *args: str) -> str:
    out = io.StringIO()
    call_command(
        "meter",
        *args,
        *("--protocol", "modbus", "--host", "127.0.0.1", "--port", str(meter.port)),
        *("--address", str(UNIT), "--timeout", str(TIMEOUT)),
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue()


def cli_failing(meter: PymodbusMeter, *args: str) -> str:
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "meter",
            *args,
            *("--protocol", "modbus", "--host", "127.0.0.1", "--port", str(meter.port)),
            *("--address", str(UNIT), "--timeout", str(TIMEOUT)),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert exited.value.code == 2
    return err.getvalue()


def test_single_phase_map_read_by_our_driver(pymodbus_meter: PymodbusMeter) -> None:
    reading = read(pymodbus_meter)
    energy = reading.energy_kwh
    assert (energy.total, energy.sharp, energy.peak, energy.flat, energy.valley) == (
        Decimal("12345.67"),
        Decimal("1000.01"),
        Decimal("3000.02"),
        Decimal("5000.03"),
        Decimal("3345.61"),
    )
    assert reading.voltage_v == Decimal("220.3")
    assert reading.current_a == Decimal("5.12")
    assert reading.power_kw == Decimal("1.127")
    assert reading.power_factor == Decimal("0.980")
    assert reading.relay is RelayState.CLOSED


@pytest.mark.parametrize("pymodbus_meter", [DTSY1352], indirect=True)
def test_three_phase_map_with_signed_power_read_by_our_driver(
    pymodbus_meter: PymodbusMeter,
) -> None:
    reading = read(pymodbus_meter, "DTSY1352")
    assert reading.energy_kwh.total == Decimal("88000.00")
    assert reading.energy_kwh.valley == Decimal("87999.94")
    assert reading.voltage_v == Decimal("230.1")
    assert reading.current_a == Decimal("10.01")
    assert reading.power_kw == Decimal("-6.915")
    assert reading.power_factor == Decimal("-0.875")


def test_meter_commands_read_and_switch_the_pymodbus_meter(pymodbus_meter: PymodbusMeter) -> None:
    reading = json.loads(cli(pymodbus_meter, "read", "--json"))
    assert reading["energy_kwh"]["total"] == "12345.67"
    assert (reading["voltage_v"], reading["current_a"], reading["power_kw"]) == (
        "220.3",
        "5.12",
        "1.127",
    )
    assert reading["relay"] == "closed"

    assert cli(pymodbus_meter, "relay", "trip").strip() == "relay open"
    assert pymodbus_meter.registers(RELAY_STATUS, 2) == [1, 0x5555]
    assert json.loads(cli(pymodbus_meter, "read", "--json"))["relay"] == "open"

    assert cli(pymodbus_meter, "relay", "close").strip() == "relay closed"
    assert pymodbus_meter.registers(RELAY_STATUS, 2) == [0, 0xAAAA]
    assert json.loads(cli(pymodbus_meter, "read", "--json"))["relay"] == "closed"


def test_illegal_address_is_a_typed_error_and_exit_2(pymodbus_meter: PymodbusMeter) -> None:
    # The three-phase map reaches 0x0013; this meter has the single-phase map up to 0x0010.
    err = cli_failing(pymodbus_meter, "read", "--model", "DTSY1352")
    assert err.count("\n") == 1 and "illegal data address" in err

    async def scenario() -> None:
        link = await TcpLink.connect("127.0.0.1", pymodbus_meter.port, TIMEOUT)
        try:
            reply = await BusClient(link, timeout=TIMEOUT).transact(
                modbus_rtu.encode(modbus_rtu.read_registers_request(UNIT, 0x0100, 2)),
                modbus_rtu.ModbusRtuFramer(expected_unit=UNIT),
                lambda frame: frame.unit_id == UNIT,
            )
        finally:
            await link.close()
        with pytest.raises(ExceptionReply) as error:
            modbus_rtu.parse_read_registers_reply(reply, UNIT, 2)
        assert error.value.code == modbus_rtu.ILLEGAL_DATA_ADDRESS

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_illegal_relay_value_is_refused(pymodbus_meter: PymodbusMeter) -> None:
    async def scenario() -> None:
        link = await TcpLink.connect("127.0.0.1", pymodbus_meter.port, TIMEOUT)
        try:
            reply = await BusClient(link, timeout=TIMEOUT).transact(
                modbus_rtu.encode(modbus_rtu.write_register_request(UNIT, RELAY_CONTROL, 0x1234)),
                modbus_rtu.ModbusRtuFramer(expected_unit=UNIT),
                lambda frame: frame.unit_id == UNIT,
            )
        finally:
            await link.close()
        with pytest.raises(ExceptionReply) as error:
            modbus_rtu.parse_write_register_reply(reply, UNIT, RELAY_CONTROL, 0x1234)
        assert error.value.code == modbus_rtu.ILLEGAL_DATA_VALUE

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert pymodbus_meter.registers(RELAY_STATUS) == [0]


def test_pymodbus_client_reads_and_switches_our_simulated_meter() -> None:
    clock = ManualClock(START)
    meter = electricity_meter(clock)  # unit id 3
    clock.advance(timedelta(hours=3))
    meter.advance()

    async def scenario() -> None:
        server = VirtualSerialServer(bus_for("modbus", meter))
        port = await server.start()
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=port, framer=FramerType.RTU, timeout=TIMEOUT, retries=0
        )
        try:
            assert await client.connect()
            block = await client.read_holding_registers(0x0000, count=0x11, device_id=3)
            assert not block.isError()
            uint32 = client.DATATYPE.UINT32
            energy = [
                client.convert_from_registers(block.registers[i : i + 2], uint32)
                for i in range(0, 10, 2)
            ]
            assert [Decimal(raw) / 100 for raw in energy] == meter.energy_registers()
            assert Decimal(block.registers[0x0B]) / 10 == meter.voltage
            power = client.convert_from_registers([block.registers[0x0D]], client.DATATYPE.INT16)
            assert Decimal(power) / 1000 == meter.power_kw().quantize(Decimal("0.001"))
            assert Decimal(block.registers[0x10]) / 1000 == meter.power_factor

            written = await client.write_register(RELAY_CONTROL, 0x5555, device_id=3)
            assert not written.isError() and meter.relay_closed is False
            status = await client.read_holding_registers(RELAY_STATUS, count=1, device_id=3)
            assert status.registers == [1]

            refused = await client.write_register(RELAY_CONTROL, 0x1234, device_id=3)
            assert refused.isError() and refused.exception_code == ExcCodes.ILLEGAL_VALUE
            missing = await client.read_holding_registers(0x0100, count=1, device_id=3)
            assert missing.isError() and missing.exception_code == ExcCodes.ILLEGAL_ADDRESS
        finally:
            client.close()
            await server.stop()

    asyncio.run(asyncio.wait_for(scenario(), 20))
