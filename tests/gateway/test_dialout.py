"""Dialling out to serial servers in TCP-server mode: the platform connects, polls, commands,
and reconnects after the link drops. The serial server is our simulated meters behind a
listening socket whose links the test can cut."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import meter_command_request
from meterpay.apps.meters import services as meters
from meterpay.apps.readings.models import GatewayLink, RegisterRead
from meterpay.apps.readings.services import meter_link_set_max_demand
from meterpay.gateway.db_port import DbPort, PollIntervals
from meterpay.gateway.dialout import Dialler, DialTarget
from meterpay.gateway.dtu import DtuServer
from meterpay.gateway.main import load_dial_targets
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.process import GatewayProcess, ProcessOptions
from meterpay.gateway.readings import (
    Command,
    CommandResult,
    ElectricityReading,
    MeterProtocol,
    MeterReading,
)
from meterpay.simulate.bus import VirtualBus
from meterpay.simulate.clock import ScaledClock
from meterpay.simulate.meters import ModbusResponder, VirtualElectricityMeter
from tests.factories import build_org
from tests.simulate.factories import DLT_ADDRESS, bus_for, electricity_meter

WAIT = 20.0  # an upper bound for conditions, never a sleep that a result depends on


class ListeningSerialServer:
    """A serial server in TCP-server mode: simulated meters behind a listening socket."""

    def __init__(self, bus: VirtualBus, port: int = 0) -> None:
        self.bus = bus
        self.port = port
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def drop_links(self) -> None:
        """Cut every open link, as a power blip or a 4G router restart would."""
        for writer in list(self._writers):
            writer.close()

    async def stop(self) -> None:
        self.drop_links()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        session = self.bus.session()
        try:
            while data := await reader.read(4096):
                for reply in session.feed(data):
                    for chunk in reply.chunks:
                        writer.write(chunk)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class RecordingPort:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, object]] = []

    async def dtu_registered(self, dtu_id: str, attributes: Mapping[str, str]) -> None:
        self.events.append(("linked", dtu_id, dict(attributes)))

    async def dtu_disconnected(self, dtu_id: str, reason: str) -> None:
        self.events.append(("lost", dtu_id, reason))

    async def reading_received(self, dtu_id: str, reading: MeterReading) -> None:
        self.events.append(("reading", dtu_id, reading))

    async def command_result(self, dtu_id: str, result: CommandResult) -> None:
        self.events.append(("command", dtu_id, result))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


async def eventually(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fixed_targets(*targets: DialTarget) -> Callable[[], Any]:
    async def load() -> list[DialTarget]:
        return list(targets)

    return load


def test_dialled_link_reads_commands_and_comes_back_after_a_drop() -> None:
    meter = electricity_meter()
    spec = MeterSpec(MeterProtocol.DLT645, DLT_ADDRESS)

    async def scenario() -> None:
        serial_server = ListeningSerialServer(bus_for("dlt645", meter))
        await serial_server.start()
        port = RecordingPort()
        # DTUs that stay silent this long are dropped; a dialled link is not a DTU.
        server = DtuServer(port, request_timeout=0.5, heartbeat_timeout=0.1)
        target = DialTarget("SS-0001", "127.0.0.1", serial_server.port)
        dialler = Dialler(server, fixed_targets(target), backoff_first=0.05, request_timeout=0.5)
        task = asyncio.create_task(dialler.run())
        try:
            session = await server.wait_for_dtu("SS-0001", timeout=5)
            assert session.dialled and port.events[0] == (
                "linked",
                "SS-0001",
                {"host": "127.0.0.1", "port": str(serial_server.port)},
            )
            await asyncio.sleep(0.3)  # longer than the heartbeat timeout, without a byte
            assert not session.closed.is_set()

            reading = await session.read_meter(spec)
            assert isinstance(reading, ElectricityReading) and reading.relay is not None
            result = await session.execute(spec, Command.RELAY_TRIP)
            assert result.acknowledged and result.state == "open"
            assert not meter.relay_closed

            serial_server.drop_links()
            lost = ("lost", "SS-0001", "connection closed by the serial server")
            await eventually(lambda: lost in port.events, "the drop reported")

            again = await server.wait_for_dtu("SS-0001", timeout=5)
            assert again is not session and serial_server.connections == 2
            reading = await again.read_meter(spec)
            assert reading.relay.value == "open"  # type: ignore[union-attr]
            assert dialler.connections["SS-0001"] == 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.stop()
            await serial_server.stop()
        assert port.events[-1] == ("lost", "SS-0001", "gateway stopping")
        assert "SS-0001" not in server.sessions

    asyncio.run(asyncio.wait_for(scenario(), WAIT))


def test_unreachable_serial_server_is_retried_with_backoff_until_it_listens() -> None:
    async def scenario() -> None:
        listen_port = free_port()
        port = RecordingPort()
        server = DtuServer(port)
        target = DialTarget("SS-0002", "127.0.0.1", listen_port)
        dialler = Dialler(server, fixed_targets(target), backoff_first=0.05, backoff_max=0.2)
        attempts: list[float] = []
        original = asyncio.open_connection

        async def counting_open(*args: Any, **kwargs: Any) -> Any:
            attempts.append(asyncio.get_running_loop().time())
            return await original(*args, **kwargs)

        serial_server = ListeningSerialServer(bus_for("dlt645", electricity_meter()), listen_port)
        task = asyncio.create_task(dialler.run())
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(asyncio, "open_connection", counting_open)
                await eventually(lambda: len(attempts) >= 6, "six attempts")
                await serial_server.start()
                await server.wait_for_dtu("SS-0002", timeout=5)
            # waits of 0.05, 0.1, 0.2, then capped at 0.2 s (uncapped: 0.4, 0.8)
            gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[:6])]
            assert gaps[0] < gaps[2]
            assert gaps[4] < 0.35
            assert port.kinds() == ["linked"]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.stop()
            await serial_server.stop()

    asyncio.run(asyncio.wait_for(scenario(), WAIT))


def test_a_target_removed_from_the_list_is_hung_up() -> None:
    async def scenario() -> None:
        serial_server = ListeningSerialServer(bus_for("dlt645", electricity_meter()))
        await serial_server.start()
        targets = [DialTarget("SS-0003", "127.0.0.1", serial_server.port)]

        async def load() -> list[DialTarget]:
            return list(targets)

        port = RecordingPort()
        server = DtuServer(port)
        dialler = Dialler(server, load, refresh=0.05, backoff_first=0.05)
        task = asyncio.create_task(dialler.run())
        try:
            session = await server.wait_for_dtu("SS-0003", timeout=5)
            targets.clear()
            await asyncio.wait_for(session.closed.wait(), 5)
            await eventually(lambda: "SS-0003" not in server.sessions, "session forgotten")
            assert dialler.links == {}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.stop()
            await serial_server.stop()

    asyncio.run(asyncio.wait_for(scenario(), WAIT))


async def until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    check = sync_to_async(condition, thread_sensitive=True)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_gateway_process_polls_and_commands_meters_behind_a_dialled_serial_server() -> None:
    org = build_org("dial", 720)
    clock = ScaledClock(speed=600)
    virtual = VirtualElectricityMeter("000000000721", clock, unit_id=5)
    virtual.enforce_command_expiry = False
    serial_server = ListeningSerialServer(VirtualBus([ModbusResponder(virtual)]))

    async def scenario() -> None:
        listen_port = await serial_server.start()
        gateway = await sync_to_async(meters.gateway_create)(
            actor="t",
            site=org.site,
            identifier="SS-dial",
            kind="serial_server",
            protocol="modbus",
            host="127.0.0.1",
            port=listen_port,
        )
        meter = await sync_to_async(meters.meter_create)(
            actor="t",
            organisation=org.org,
            kind="electricity_1p",
            protocol="modbus",
            address="5",
            model="DDSY1352",
            gateway=gateway,
        )
        # the clock runs x600: lift the spike ceiling
        await sync_to_async(meter_link_set_max_demand)(
            actor="t", meter=meter, max_demand=Decimal(100000)
        )
        port = DbPort(
            intervals=PollIntervals(electricity=0.3, water=0.3), backoff_base=timedelta(0)
        )
        server = DtuServer(port, listen_port=0, request_timeout=0.5)
        await server.start()
        process = GatewayProcess(server, port, ProcessOptions(tick=0.05, plan_refresh=60))
        dialler = Dialler(server, load_dial_targets, backoff_first=0.05, request_timeout=0.5)
        tasks = [asyncio.create_task(process.run(ready=lambda: _start(dialler, tasks)))]
        try:
            await until(
                lambda: RegisterRead.objects.filter(meter=meter).count() >= 2, "two readings"
            )
            await until(
                lambda: GatewayLink.objects.filter(gateway=gateway, online=True).exists(),
                "gateway online",
            )

            trip = await sync_to_async(meter_command_request)(
                actor=org.users["operator"],
                meter=meter,
                kind="relay_trip",
                reason="arrears",
                requested_by="operator",
            )
            await until(
                lambda: MeterCommand.objects.get(pk=trip.pk).status == "confirmed", "trip confirmed"
            )
            assert not virtual.relay_closed

            serial_server.drop_links()
            await until(
                lambda: GatewayLink.objects.filter(gateway=gateway, online=False).exists(),
                "gateway offline",
            )
            before = await sync_to_async(RegisterRead.objects.filter(meter=meter).count)()
            await until(
                lambda: GatewayLink.objects.filter(gateway=gateway, online=True).exists(),
                "gateway back online",
            )
            await until(
                lambda: RegisterRead.objects.filter(meter=meter).count() > before,
                "readings after the reconnect",
            )
            assert serial_server.connections >= 2
        finally:
            process.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.stop()
            await port.close()
            await serial_server.stop()

    asyncio.run(asyncio.wait_for(scenario(), 60))


async def _start(dialler: Dialler, tasks: list[asyncio.Task[None]]) -> None:
    tasks.append(asyncio.create_task(dialler.run()))
