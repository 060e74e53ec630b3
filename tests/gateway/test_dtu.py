"""DTU server and sessions against virtual DTUs connecting out to them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import (
    Command,
    CommandResult,
    ElectricityReading,
    MeterProtocol,
    MeterReading,
)
from meterpay.simulate.bus import FaultPlan, VirtualBus
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.meters import Dlt645Responder, VirtualElectricityMeter
from meterpay.simulate.servers import VirtualDtu
from tests.simulate.factories import (
    DLT_ADDRESS,
    START,
    WATER_ADDRESS,
    bus_for,
    electricity_meter,
    water_meter,
)


class RecordingPort:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    async def dtu_registered(self, dtu_id: str, attributes: Mapping[str, str]) -> None:
        self.events.append(("registered", (dtu_id, dict(attributes))))

    async def dtu_disconnected(self, dtu_id: str, reason: str) -> None:
        self.events.append(("disconnected", (dtu_id, reason)))

    async def reading_received(self, dtu_id: str, reading: MeterReading) -> None:
        self.events.append(("reading", (dtu_id, reading)))

    async def command_result(self, dtu_id: str, result: CommandResult) -> None:
        self.events.append(("command", (dtu_id, result)))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


async def start(
    port: RecordingPort, bus: VirtualBus, faults: FaultPlan | None = None, **server_options: float
):  # type: ignore[no-untyped-def]
    server = DtuServer(port, request_timeout=0.5, **server_options)
    listen_port = await server.start()
    dtu = VirtualDtu(
        "DTU-0001", bus, "127.0.0.1", listen_port, heartbeat_interval=0.02, faults=faults
    )
    task = asyncio.create_task(dtu.run())
    session = await server.wait_for_dtu("DTU-0001", timeout=2)
    return server, dtu, task, session


def test_registration_heartbeats_readings_and_commands() -> None:
    port = RecordingPort()
    clock = ManualClock(START)
    meter = electricity_meter(clock)
    clock.advance(timedelta(hours=1))

    async def scenario() -> None:
        server, dtu, task, session = await start(port, bus_for("dlt645", meter))
        spec = MeterSpec(MeterProtocol.DLT645, DLT_ADDRESS)
        await asyncio.sleep(0.1)  # let heartbeats interleave with the frames below
        reading = await session.read_meter(spec)
        assert isinstance(reading, ElectricityReading) and reading.relay.value == "closed"  # type: ignore[union-attr]
        result = await session.execute(spec, Command.RELAY_TRIP)
        assert result.acknowledged and result.state == "open"
        reading = await session.read_meter(spec)
        assert reading.relay.value == "open"  # type: ignore[union-attr]
        assert session.heartbeats >= 3
        assert session.attributes["imei"] == "861234567890123"
        dtu.stop()
        await session.close("test over")
        await task
        await server.stop()

    asyncio.run(scenario())
    assert port.kinds() == ["registered", "reading", "command", "reading", "disconnected"]
    assert port.events[0][1] == ("DTU-0001", {"imei": "861234567890123", "fw": "1.0.0"})


def test_lost_ack_reports_unacknowledged_result_and_read_reconciles() -> None:
    port = RecordingPort()
    meter = water_meter()

    async def scenario() -> None:
        server, dtu, task, session = await start(
            port, bus_for("cjt188", meter), FaultPlan(lose_ack_next=1)
        )
        spec = MeterSpec(MeterProtocol.CJT188, WATER_ADDRESS)
        result = await session.execute(spec, Command.VALVE_CLOSE)
        assert not result.acknowledged and "timeout" in (result.error or "")
        reading = await session.read_meter(spec)
        assert reading.valve == "closed"  # type: ignore[union-attr]
        dtu.stop()
        await server.stop()
        await task

    asyncio.run(scenario())
    assert port.kinds()[:3] == ["registered", "command", "reading"]


def test_silent_dtu_is_disconnected_after_heartbeat_timeout() -> None:
    port = RecordingPort()

    async def scenario() -> None:
        server = DtuServer(port, heartbeat_timeout=0.2)
        listen_port = await server.start()
        dtu = VirtualDtu(
            "DTU-9",
            bus_for("modbus", electricity_meter()),
            "127.0.0.1",
            listen_port,
            heartbeat_interval=10,
        )
        task = asyncio.create_task(dtu.run())
        session = await server.wait_for_dtu("DTU-9", timeout=2)
        await asyncio.wait_for(session.closed.wait(), 2)
        assert session.close_reason == "heartbeat timeout"
        await task
        await server.stop()

    asyncio.run(scenario())
    assert port.kinds() == ["registered", "disconnected"]


def test_dtu_reconnects_after_disconnect_fault() -> None:
    port = RecordingPort()
    meter = VirtualElectricityMeter(DLT_ADDRESS, ManualClock(START))

    async def scenario() -> None:
        server = DtuServer(port, request_timeout=0.5)
        listen_port = await server.start()
        faults = FaultPlan(disconnect_after=1)
        bus = VirtualBus([Dlt645Responder(meter)])
        dtu = VirtualDtu(
            "DTU-7", bus, "127.0.0.1", listen_port, faults=faults, reconnect_delay=0.05
        )
        task = asyncio.create_task(dtu.run())
        spec = MeterSpec(MeterProtocol.DLT645, DLT_ADDRESS)
        session = await server.wait_for_dtu("DTU-7")
        await session.execute(spec, Command.RELAY_TRIP)  # answered, then the DTU drops the line
        await asyncio.wait_for(session.closed.wait(), 2)
        await asyncio.sleep(0.2)
        assert dtu.connections >= 2
        dtu.stop()
        await server.stop()
        await asyncio.wait_for(task, 2)

    asyncio.run(scenario())
    assert port.kinds()[:3] == ["registered", "command", "disconnected"]
    assert "registered" in port.kinds()[3:]
    assert not meter.relay_closed
