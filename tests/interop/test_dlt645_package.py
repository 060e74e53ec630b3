"""DL/T 645-2007 against an independent implementation: the ``dlt645`` package (3.2.0).

Its meter server answers our codec, transport and ``meterpay meter``; its client reads our
simulated meter. Where the two disagree, the comment at the test says which side the
standard supports.

Two conventions of the package differ from the standard's frame rules (DL/T 645-2007:
every multi-byte field, the address and the date-time items included, travels low byte
first):

- its string API takes a meter address in *wire* order, so ``000012345678`` has to be given
  to it as the bytes ``78 56 34 12 00 00`` (our codec: nameplate order, reversed on the wire);
- it sends the broadcast time as ``YY MM DD hh mm ss``; the standard's frame carries
  ``ss mm hh DD MM YY`` (see ``test_time_sync_byte_order_differs``).
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from dlt645 import MeterClientService, MeterServerService, TcpClient

from meterpay.gateway import commissioning
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import ElectricityReading, MeterProtocol, RelayState
from meterpay.gateway.transport import BusClient, TcpLink
from meterpay.protocols import dlt645
from meterpay.protocols.errors import ExceptionReply
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.meters import VirtualElectricityMeter
from meterpay.simulate.servers import serve_in_thread
from tests.simulate.factories import START, bus_for, electricity_meter

pytestmark = pytest.mark.interop

ADDRESS = "000012345678"
TIMEOUT = 2.0

#: What the package meter holds (DI → value), in the units of the standard's formats.
LOADED = {
    dlt645.TOTAL_ENERGY: 12345.67,
    dlt645.TARIFF_ENERGY[0]: 1000.01,
    dlt645.TARIFF_ENERGY[1]: 3000.02,
    dlt645.TARIFF_ENERGY[2]: 5000.03,
    dlt645.TARIFF_ENERGY[3]: 3345.61,
    dlt645.VOLTAGE_A: 220.3,
    dlt645.CURRENT_A: 5.123,
    dlt645.ACTIVE_POWER_TOTAL: 1.1275,
    dlt645.POWER_FACTOR_TOTAL: 0.987,
}


def wire_address(address: str) -> bytes:
    """The package's address convention: the six bytes as they travel, A0 first."""
    return bytes.fromhex(address)[::-1]


@pytest.fixture(scope="module")
def package_meter_server() -> Iterator[MeterServerService]:
    # Building the package's data tables takes about a second: one server per module.
    meter = MeterServerService.new_tcp_server("127.0.0.1", 0, timeout=TIMEOUT)
    meter.set_address(wire_address(ADDRESS))
    assert meter.start()
    try:
        yield meter
    finally:
        meter.stop()


@pytest.fixture
def package_meter(package_meter_server: MeterServerService) -> MeterServerService:
    """The package meter loaded with :data:`LOADED`, relay closed."""
    meter = package_meter_server
    for di, value in LOADED.items():
        loaded = meter.set_00(di, value) if di >> 24 == 0 else meter.set_02(di, value)
        assert loaded, f"the package meter has no DI {di:08X}"
    assert meter.set_04(dlt645.STATUS_WORD_3, "0000")
    vars(meter).pop("set_time", None)  # undo a test's recorder
    return meter


def endpoint(meter: MeterServerService) -> commissioning.Endpoint:
    return commissioning.Endpoint("127.0.0.1", meter.server.port, TIMEOUT)


def read(meter: MeterServerService) -> ElectricityReading:
    reading = commissioning.read_meter(endpoint(meter), MeterSpec(MeterProtocol.DLT645, ADDRESS))
    assert isinstance(reading, ElectricityReading)
    return reading


def test_our_driver_reads_every_register_the_package_meter_holds(
    package_meter: MeterServerService,
) -> None:
    reading = read(package_meter)
    # The package has no block read (00 01 FF 00): it answers "no data requested" and the
    # driver falls back to the five single registers.
    energy = reading.energy_kwh
    assert (energy.total, energy.sharp, energy.peak, energy.flat, energy.valley) == (
        Decimal("12345.67"),
        Decimal("1000.01"),
        Decimal("3000.02"),
        Decimal("5000.03"),
        Decimal("3345.61"),
    )
    assert reading.voltage_v == Decimal("220.3")
    assert reading.current_a == Decimal("5.123")
    assert reading.power_kw == Decimal("1.1275")
    assert reading.power_factor == Decimal("0.987")
    assert reading.relay is RelayState.CLOSED  # status word 3 is all zeros
    # Prepaid identifiers (remaining money, purchase count) are not in the package's tables.
    assert reading.remaining_money is None and reading.purchase_count is None


def test_status_word_3_relay_bit_and_a_negative_current(package_meter: MeterServerService) -> None:
    # Bit 4 of status word 3 = relay open; the package stores the word as four hex digits.
    assert package_meter.set_04(dlt645.STATUS_WORD_3, "0010")
    # A reverse current: the standard's sign is the top bit of the most significant byte.
    assert package_meter.set_02(dlt645.CURRENT_A, -5.123)
    reading = read(package_meter)
    assert reading.relay is RelayState.OPEN
    assert reading.current_a == Decimal("-5.123")


def test_meter_read_command_prints_the_package_meters_values(
    package_meter: MeterServerService,
) -> None:
    out = io.StringIO()
    call_command(
        "meter",
        "read",
        *("--protocol", "dlt645", "--host", "127.0.0.1", "--port", str(package_meter.server.port)),
        *("--address", ADDRESS, "--timeout", str(TIMEOUT), "--json"),
        stdout=out,
        stderr=io.StringIO(),
    )
    reading = json.loads(out.getvalue())
    assert reading["energy_kwh"] == {
        "total": "12345.67",
        "sharp": "1000.01",
        "peak": "3000.02",
        "flat": "5000.03",
        "valley": "3345.61",
    }
    assert (reading["voltage_v"], reading["current_a"]) == ("220.3", "5.123")
    assert reading["power_kw"] == "1.1275"
    assert reading["relay"] == "closed"


def test_an_identifier_the_meter_lacks_is_a_typed_error_reply(
    package_meter: MeterServerService,
) -> None:
    async def scenario() -> None:
        link = await TcpLink.connect("127.0.0.1", package_meter.server.port, TIMEOUT)
        try:
            reply = await BusClient(link, timeout=TIMEOUT).transact(
                dlt645.encode_frame(dlt645.read_request(ADDRESS, dlt645.PURCHASE_COUNT)),
                dlt645.Dlt645Framer(),
                lambda frame: frame.is_reply,
            )
        finally:
            await link.close()
        assert reply.control == 0xD1
        with pytest.raises(ExceptionReply) as error:
            dlt645.parse_read_reply(reply, dlt645.PURCHASE_COUNT)
        assert error.value.code == dlt645.ERROR_NO_DATA

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_relay_control_is_refused_by_the_package_meter(package_meter: MeterServerService) -> None:
    # The package implements no relay control (0x1C): it answers 0xDC "other error", which
    # must come out as a refused command (exit 2), not as success or a hang.
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "meter",
            "relay",
            "trip",
            *("--protocol", "dlt645", "--host", "127.0.0.1"),
            *("--port", str(package_meter.server.port), "--address", ADDRESS),
            *("--timeout", str(TIMEOUT)),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert exited.value.code == 2
    assert "other error" in err.getvalue()


def test_time_sync_byte_order_differs(package_meter: MeterServerService) -> None:
    """Our broadcast reaches the package meter, which reads the six bytes the other way round.

    DL/T 645-2007 broadcast time (C = 08H, address 999999999999): the data item is
    YYMMDDhhmmss and, like every data item, travels low byte first, so the frame carries
    ``ss mm hh DD MM YY``. The package takes the first byte as the year. Our codec follows
    the standard; the package's ``set_time`` is wrong.
    """
    received: list[bytes] = []
    done = threading.Event()

    def record(data: bytes) -> None:
        received.append(bytes(data))
        done.set()

    package_meter.set_time = record  # type: ignore[method-assign]
    moment = datetime(2026, 3, 2, 9, 15, 30)

    async def scenario() -> None:
        link = await TcpLink.connect("127.0.0.1", package_meter.server.port, TIMEOUT)
        try:
            await BusClient(link).send_only(dlt645.encode_frame(dlt645.time_sync_broadcast(moment)))
        finally:
            await asyncio.sleep(0.05)
            await link.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert done.wait(5)
    assert received == [bytes.fromhex("301509020326")]  # ss mm hh DD MM YY
    # Read as YY MM DD hh mm ss that is month 15: the package meter keeps no time at all.
    MeterServerService.set_time(package_meter, bytearray(received[0]))
    assert package_meter.time is None


@pytest.fixture(scope="module")
def package_client_service() -> MeterClientService:
    return MeterClientService.new_tcp_client("127.0.0.1", 0, timeout=TIMEOUT)


@pytest.fixture
def package_client(
    package_client_service: MeterClientService,
) -> Iterator[tuple[MeterClientService, VirtualElectricityMeter]]:
    """The package's client, connected to one of our simulated meters."""
    clock = ManualClock(START)
    meter = electricity_meter(clock)
    clock.advance(timedelta(hours=3))  # office hours: energy on more than one tariff
    meter.advance()
    with serve_in_thread(bus_for("dlt645", meter)) as port:
        service = package_client_service
        service.client = TcpClient(ip="127.0.0.1", port=port, timeout=TIMEOUT)
        service.address = bytearray(wire_address(meter.address))
        try:
            yield service, meter
        finally:
            service.disconnect()


def package_value(client: MeterClientService, di: int) -> Decimal:
    read = client.read_00 if di >> 24 == 0 else client.read_02
    item = read(di)
    assert item is not None, f"the package client could not read DI {di:08X}"
    # The package decodes BCD into a float; str() gives back the printed digits.
    return Decimal(str(item.value))


def test_package_client_reads_our_simulated_meter(
    package_client: tuple[MeterClientService, VirtualElectricityMeter],
) -> None:
    client, meter = package_client
    total, sharp, peak, flat, valley = meter.energy_registers()
    assert total > 0
    assert package_value(client, dlt645.TOTAL_ENERGY) == total
    tariffs = [package_value(client, di) for di in dlt645.TARIFF_ENERGY]
    assert tariffs == [sharp, peak, flat, valley]
    assert package_value(client, dlt645.VOLTAGE_A) == meter.voltage
    assert package_value(client, dlt645.CURRENT_A) == meter.current_a()
    assert package_value(client, dlt645.ACTIVE_POWER_TOTAL) == meter.power_kw()
    assert package_value(client, dlt645.POWER_FACTOR_TOTAL) == meter.power_factor


def test_package_client_reads_our_status_word_after_a_trip(
    package_client: tuple[MeterClientService, VirtualElectricityMeter],
) -> None:
    client, meter = package_client
    item = client.read_04(dlt645.STATUS_WORD_3)
    assert item is not None and item.value == "0200"  # money-prepaid, relay closed
    meter.trip()
    item = client.read_04(dlt645.STATUS_WORD_3)
    # bit 4 relay open, bit 6 last command trip, bits 8-9 money-prepaid
    assert item is not None and item.value == "0250"


def test_package_time_sync_is_not_taken_for_a_wrong_time(
    package_client: tuple[MeterClientService, VirtualElectricityMeter],
) -> None:
    # The package sends YY MM DD hh mm ss (see the module docstring). Read the standard's
    # way that is second 26, minute 03, hour 02, day 09, month 15: not a date, so our
    # meter ignores the broadcast instead of setting a wrong clock.
    client, meter = package_client
    assert client.broadcast_time_sync(datetime(2026, 3, 2, 9, 15, 30))
    assert client.read_00(dlt645.TOTAL_ENERGY) is not None  # the bus still answers
    assert meter.last_time_sync is None


def test_a_wrong_address_gets_an_empty_reading_from_the_package_meter(
    package_meter: MeterServerService,
) -> None:
    # A meter must stay silent for frames that are not addressed to it; the package meter
    # instead answers them with "other error", which the driver reads as "no data".
    reading = commissioning.read_meter(
        endpoint(package_meter), MeterSpec(MeterProtocol.DLT645, "000000000099")
    )
    assert isinstance(reading, ElectricityReading)
    assert reading.energy_kwh.total is None and reading.relay is None
