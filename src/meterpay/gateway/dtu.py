"""DTU sessions: DTUs connect in, register, heartbeat, and tunnel meter frames.

The gateway process owns a :class:`DtuServer`. Each accepted connection becomes a
:class:`DtuSession` once the DTU's registration packet arrives (format in
:mod:`meterpay.protocols.dtu` and ``docs/protocols.md``). The session reports through a
:class:`GatewayPort` — the seam where the Django side plugs in (store readings, update
command rows) without this package importing Django::

    class DbPort:                       # in the gateway process, later
        async def dtu_registered(self, dtu_id, attributes): ...
        async def dtu_disconnected(self, dtu_id, reason): ...
        async def reading_received(self, dtu_id, reading): ...   # Electricity/WaterReading
        async def command_result(self, dtu_id, result): ...      # CommandResult

    server = DtuServer(DbPort(), host="0.0.0.0", port=9000)
    await server.start()
    session = await server.wait_for_dtu("DTU-0001")
    await session.read_meter(MeterSpec(MeterProtocol.DLT645, "000012345678"))
    await session.execute(MeterSpec(...), Command.RELAY_TRIP)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Protocol

from meterpay.gateway import meters
from meterpay.gateway.errors import GatewayError, MeterTimeout, MeterUnreachable
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import Command, CommandResult, MeterReading
from meterpay.gateway.transport import DEFAULT_TIMEOUT, BusClient
from meterpay.protocols import dtu as packets
from meterpay.protocols.errors import ProtocolError

#: How long bytes that might start a packet are held before being passed on as frame bytes.
PACKET_HOLD_SECONDS = 0.05


class GatewayPort(Protocol):
    """What a DTU session reports. Implementations must not block the event loop."""

    async def dtu_registered(self, dtu_id: str, attributes: Mapping[str, str]) -> None: ...

    async def dtu_disconnected(self, dtu_id: str, reason: str) -> None: ...

    async def reading_received(self, dtu_id: str, reading: MeterReading) -> None: ...

    async def command_result(self, dtu_id: str, result: CommandResult) -> None: ...


class NullPort:
    """A port that ignores everything."""

    async def dtu_registered(self, dtu_id: str, attributes: Mapping[str, str]) -> None:
        return None

    async def dtu_disconnected(self, dtu_id: str, reason: str) -> None:
        return None

    async def reading_received(self, dtu_id: str, reading: MeterReading) -> None:
        return None

    async def command_result(self, dtu_id: str, result: CommandResult) -> None:
        return None


class _Tunnel:
    """The :class:`ByteLink` of a session: frame bytes with DTU packets removed."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()

    async def send(self, data: bytes) -> None:
        # Bytes that arrived while no request was waiting are stale; drop them.
        while not self.incoming.empty():
            if self.incoming.get_nowait() == b"":
                self.incoming.put_nowait(b"")
                break
        if self._writer.is_closing():
            raise MeterUnreachable("the DTU connection is closed")
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise MeterUnreachable(f"DTU connection lost: {exc}") from None

    async def receive(self) -> bytes:
        data = await self.incoming.get()
        if data == b"":
            self.incoming.put_nowait(b"")  # keep reporting EOF to later requests
        return data

    async def close(self) -> None:
        self._writer.close()


class DtuSession:
    """One connected DTU: its registration, liveness and request/response tunnel."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        port: GatewayPort,
        *,
        registration_timeout: float = 30.0,
        heartbeat_timeout: float = 180.0,
        request_timeout: float = DEFAULT_TIMEOUT,
        request_retries: int = 0,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.port = port
        self.registration_timeout = registration_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.dtu_id: str | None = None
        self.attributes: dict[str, str] = {}
        self.heartbeats = 0
        self.last_seen = asyncio.get_running_loop().time()
        self.registered = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_reason: str | None = None
        self._splitter = packets.DtuStreamSplitter()
        self._tunnel = _Tunnel(writer)
        self.bus = BusClient(self._tunnel, timeout=request_timeout, retries=request_retries)
        #: True for a link the platform opened (a serial server in TCP-server mode).
        self.dialled = False

    @classmethod
    def dialled_link(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        port: GatewayPort,
        gateway_id: str,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
        request_retries: int = 0,
    ) -> DtuSession:
        """A session on a link the platform opened to a serial server in TCP-server mode.

        Such a device sends no registration or heartbeat packets: the link belongs to the
        gateway ``gateway_id`` from the start, every byte is meter frame data, and silence is
        normal (polls may be many minutes apart), so there is no heartbeat timeout.
        """
        session = cls(
            reader,
            writer,
            port,
            request_timeout=request_timeout,
            request_retries=request_retries,
        )
        session.dialled = True
        session.dtu_id = gateway_id
        session.registered.set()
        return session

    @property
    def peer(self) -> str:
        address = self._writer.get_extra_info("peername")
        return f"{address[0]}:{address[1]}" if address else "?"

    async def run(self) -> None:
        """Read until the DTU disconnects or goes silent; report both ends to the port."""
        reason = (
            "connection closed by the serial server" if self.dialled else "connection closed by DTU"
        )
        try:
            while True:
                wait: float | None
                if self._splitter.holding:
                    wait = PACKET_HOLD_SECONDS
                elif self.dialled:
                    wait = None
                elif self.dtu_id is None:
                    wait = self.registration_timeout
                else:
                    wait = self.heartbeat_timeout
                try:
                    data = await asyncio.wait_for(self._reader.read(4096), wait)
                except TimeoutError:
                    if self._splitter.holding:
                        await self._dispatch(self._splitter.flush())
                        continue
                    reason = "no registration" if self.dtu_id is None else "heartbeat timeout"
                    break
                except (ConnectionError, OSError) as exc:
                    reason = f"connection error: {exc}"
                    break
                if not data:
                    break
                self.last_seen = asyncio.get_running_loop().time()
                if self.dialled:
                    self._tunnel.incoming.put_nowait(data)
                else:
                    await self._dispatch(self._splitter.feed(data))
        except asyncio.CancelledError:
            reason = "gateway stopping"
            raise
        finally:
            await self._finish(reason)

    async def _dispatch(self, events: list[packets.DtuEvent]) -> None:
        for event in events:
            if isinstance(event, packets.Registration):
                if self.dtu_id is None:
                    self.dtu_id = event.dtu_id
                    self.attributes = dict(event.attributes)
                    self._splitter.accept_heartbeat_from = event.dtu_id
                    self.registered.set()
                    await self.port.dtu_registered(event.dtu_id, self.attributes)
            elif isinstance(event, packets.Heartbeat):
                self.heartbeats += 1
            elif self.dtu_id is not None:  # frame bytes before registration are noise
                self._tunnel.incoming.put_nowait(event.data)

    async def _finish(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        self._tunnel.incoming.put_nowait(b"")
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        if self.dtu_id is not None:
            await self.port.dtu_disconnected(self.dtu_id, reason)

    async def close(self, reason: str = "closed by the platform") -> None:
        await self._finish(reason)

    async def read_meter(self, spec: MeterSpec) -> MeterReading:
        """Read one meter behind this DTU and report it via ``reading_received``."""
        try:
            reading = await meters.read(self.bus, spec)
        except ProtocolError as exc:
            raise GatewayError(str(exc)) from None
        await self.port.reading_received(self._registered_id(), reading)
        return reading

    async def execute(self, spec: MeterSpec, command: Command) -> CommandResult:
        """Run a relay/valve command; the result (ack or error) goes to ``command_result``.

        A timeout means "unknown": the meter may have acted and lost its reply, so the
        caller should read the meter before retrying.
        """
        try:
            state = await meters.execute(self.bus, spec, command)
            result = CommandResult(spec.protocol, spec.address, command, True, state=state)
        except MeterTimeout as exc:
            result = CommandResult(
                spec.protocol, spec.address, command, False, error=f"timeout: {exc}"
            )
        except (GatewayError, ProtocolError) as exc:
            result = CommandResult(spec.protocol, spec.address, command, False, error=str(exc))
        await self.port.command_result(self._registered_id(), result)
        return result

    def _registered_id(self) -> str:
        if self.dtu_id is None:
            raise GatewayError("the DTU has not registered yet")
        return self.dtu_id


class DtuServer:
    """Accept DTU connections; keep the latest session per DTU id."""

    def __init__(
        self,
        port: GatewayPort,
        *,
        host: str = "127.0.0.1",
        listen_port: int = 0,
        registration_timeout: float = 30.0,
        heartbeat_timeout: float = 180.0,
        request_timeout: float = DEFAULT_TIMEOUT,
        request_retries: int = 0,
    ) -> None:
        self.port = port
        self.host = host
        self.listen_port = listen_port
        self._options = {
            "registration_timeout": registration_timeout,
            "heartbeat_timeout": heartbeat_timeout,
            "request_timeout": request_timeout,
            "request_retries": request_retries,
        }
        self.sessions: dict[str, DtuSession] = {}
        self._server: asyncio.Server | None = None
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self.listen_port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions.values()):
            await session.close("gateway stopping")
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def attach(self, session: DtuSession) -> None:
        """Serve a registered session; a session of the same id is replaced."""
        dtu_id = session._registered_id()
        previous = self.sessions.get(dtu_id)
        if previous is not None and previous is not session:
            await previous.close("replaced by a new connection")
        async with self._changed:
            self.sessions[dtu_id] = session
            self._changed.notify_all()

    async def detach(self, session: DtuSession) -> None:
        """Forget a session that has ended (unless a newer one replaced it already)."""
        if session.dtu_id is not None and self.sessions.get(session.dtu_id) is session:
            async with self._changed:
                del self.sessions[session.dtu_id]
                self._changed.notify_all()

    async def wait_for_dtu(self, dtu_id: str, timeout: float = 10.0) -> DtuSession:
        async def registered() -> DtuSession:
            async with self._changed:
                await self._changed.wait_for(lambda: dtu_id in self.sessions)
                return self.sessions[dtu_id]

        return await asyncio.wait_for(registered(), timeout)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = DtuSession(reader, writer, self.port, **self._options)
        runner = asyncio.create_task(session.run())
        self._tasks.add(runner)
        runner.add_done_callback(self._tasks.discard)
        registered = asyncio.create_task(session.registered.wait())
        await asyncio.wait({runner, registered}, return_when=asyncio.FIRST_COMPLETED)
        if session.dtu_id is not None:
            await self.attach(session)
        else:
            registered.cancel()
        await runner
        await self.detach(session)
