"""A virtual serial server (TCP server) and a virtual DTU (TCP client) over a bus.

- :class:`VirtualSerialServer` behaves like a serial device server in transparent
  TCP-server mode: whoever connects talks straight to the RS-485 bus.
- :class:`VirtualDtu` behaves like a 4G DTU: it connects out to the platform, sends
  its registration packet, then a heartbeat every interval, and answers tunnelled
  frames from the meters behind it (packet format: :mod:`meterpay.protocols.dtu`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from meterpay.protocols import dtu as dtu_packets
from meterpay.simulate.bus import BusSession, FaultPlan, Reply, VirtualBus

SPLIT_PAUSE = 0.02


async def _write_reply(writer: asyncio.StreamWriter, reply: Reply) -> None:
    if reply.delay:
        await asyncio.sleep(reply.delay)
    for index, chunk in enumerate(reply.chunks):
        if index:
            await asyncio.sleep(SPLIT_PAUSE)
        writer.write(chunk)
        await writer.drain()


async def _answer(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    session: BusSession,
    faults: FaultPlan,
) -> None:
    """Answer frames until EOF (or the disconnect fault)."""
    sent = 0
    while data := await reader.read(4096):
        for reply in session.feed(data):
            await _write_reply(writer, reply)
            sent += 1
            if faults.disconnect_after is not None and sent >= faults.disconnect_after:
                return


class VirtualSerialServer:
    def __init__(
        self,
        bus: VirtualBus,
        *,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.bus = bus
        self.faults = faults or FaultPlan()
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def run(self) -> None:
        """Listen until :meth:`close` (the platform dials in, as to a device in TCP-server mode)."""
        self._closing = asyncio.Event()
        await self.start()
        try:
            await self._closing.wait()
        finally:
            await self.stop()

    def close(self) -> None:
        closing = getattr(self, "_closing", None)
        if closing is not None:
            closing.set()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _answer(reader, writer, self.bus.session(self.faults), self.faults)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


@contextlib.contextmanager
def serve_in_thread(bus: VirtualBus, faults: FaultPlan | None = None) -> Iterator[int]:
    """Run a :class:`VirtualSerialServer` on an ephemeral port in a background thread.

    For synchronous callers (CLI tests) that run their own ``asyncio.run``.
    """
    loop = asyncio.new_event_loop()
    server = VirtualSerialServer(bus, faults=faults)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="virtual-serial-server", daemon=True)
    thread.start()
    if not ready.wait(5):
        raise RuntimeError("virtual serial server did not start")
    try:
        yield server.port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


class VirtualDtu:
    def __init__(
        self,
        dtu_id: str,
        bus: VirtualBus,
        host: str,
        port: int,
        *,
        heartbeat_interval: float = 60.0,
        attributes: dict[str, str] | None = None,
        faults: FaultPlan | None = None,
        reconnect_delay: float | None = None,
    ) -> None:
        self.dtu_id = dtu_id
        self.bus = bus
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.attributes = attributes or {"imei": "861234567890123", "fw": "1.0.0"}
        self.faults = faults or FaultPlan()
        self.reconnect_delay = reconnect_delay
        self.connections = 0
        self.heartbeats_sent = 0
        self._stopping = False

    async def run(self) -> None:
        """Connect, register, heartbeat and answer; reconnect if ``reconnect_delay``."""
        while not self._stopping:
            with contextlib.suppress(ConnectionError, OSError):
                await self._connect_once()
            if self.reconnect_delay is None or self._stopping:
                return
            await asyncio.sleep(self.reconnect_delay)

    def stop(self) -> None:
        self._stopping = True

    async def _connect_once(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.connections += 1
        writer.write(dtu_packets.encode_registration(self.dtu_id, self.attributes))
        await writer.drain()
        heartbeat = asyncio.create_task(self._heartbeats(writer))
        try:
            await _answer(reader, writer, self.bus.session(self.faults), self.faults)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _heartbeats(self, writer: asyncio.StreamWriter) -> None:
        packet = dtu_packets.encode_heartbeat(self.dtu_id)
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            writer.write(packet)
            await writer.drain()
            self.heartbeats_sent += 1
