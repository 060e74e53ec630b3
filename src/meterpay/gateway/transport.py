"""Async request/response over a byte stream, using the sans-IO framers.

A :class:`ByteLink` is anything that moves bytes to and from one RS-485 bus: a TCP
connection to a serial server (:class:`TcpLink`) or the tunnel of a DTU session.
:class:`BusClient` puts one request at a time on the bus (RS-485 is half duplex and
meters answer in turn), feeds what comes back into the protocol's framer and returns
the first frame the caller accepts, within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from meterpay.gateway.errors import MeterProtocolError, MeterTimeout, MeterUnreachable
from meterpay.protocols.errors import ChecksumError, ProtocolError
from meterpay.protocols.framing import StreamFramer

DEFAULT_TIMEOUT = 3.0


class ByteLink(Protocol):
    async def send(self, data: bytes) -> None:
        """Write bytes to the bus; raise :class:`MeterUnreachable` if the link is gone."""

    async def receive(self) -> bytes:
        """Next bytes from the bus; ``b""`` once the link is closed."""

    async def close(self) -> None: ...


class TcpLink:
    """A TCP connection to a serial server (transparent TCP-server mode)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> TcpLink:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except TimeoutError:
            raise MeterUnreachable(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise MeterUnreachable(
                f"cannot connect to {host}:{port}: {exc.strerror or exc}"
            ) from None
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise MeterUnreachable(f"connection lost while sending: {exc}") from None

    async def receive(self) -> bytes:
        try:
            return await self._reader.read(4096)
        except (ConnectionError, OSError):
            return b""

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


class BusClient:
    """One request in flight per bus; replies matched by a predicate."""

    def __init__(
        self, link: ByteLink, *, timeout: float = DEFAULT_TIMEOUT, retries: int = 0
    ) -> None:
        self.link = link
        self.timeout = timeout
        #: Times a request is sent again after no reply (a lost frame). Meter requests are
        #: reads or idempotent commands (trip twice = trip), so a resend is safe.
        self.retries = retries
        self._lock = asyncio.Lock()

    async def transact[FrameT](
        self,
        request: bytes,
        framer: StreamFramer[FrameT],
        accept: Callable[[FrameT], bool],
        *,
        timeout: float | None = None,
    ) -> FrameT:
        """Send ``request`` and return the first reply frame that ``accept`` takes.

        Frames that are not accepted (the request's own echo, another meter talking)
        are skipped. Without a reply within the timeout the request is sent again, up to
        ``retries`` times. Raises :class:`MeterTimeout`, :class:`MeterUnreachable` or
        :class:`MeterProtocolError`.
        """
        async with self._lock:
            for _ in range(self.retries):
                with contextlib.suppress(MeterTimeout):
                    return await self._exchange(request, framer, accept, timeout)
            return await self._exchange(request, framer, accept, timeout)

    async def _exchange[FrameT](
        self,
        request: bytes,
        framer: StreamFramer[FrameT],
        accept: Callable[[FrameT], bool],
        timeout: float | None,
    ) -> FrameT:
        deadline = asyncio.get_running_loop().time() + (timeout or self.timeout)
        framer.reset()
        await self.link.send(request)
        while True:
            try:
                frame = framer.next_frame()
            except ChecksumError as exc:
                raise MeterProtocolError(f"checksum error in reply: {exc}") from None
            except ProtocolError as exc:  # pragma: no cover - framers raise ChecksumError
                raise MeterProtocolError(str(exc)) from None
            if frame is not None:
                if accept(frame):
                    return frame
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise MeterTimeout("no reply from the meter before the timeout")
            try:
                data = await asyncio.wait_for(self.link.receive(), remaining)
            except TimeoutError:
                raise MeterTimeout("no reply from the meter before the timeout") from None
            if not data:
                raise MeterUnreachable("connection closed while waiting for the reply")
            framer.feed(data)

    async def send_only(self, request: bytes) -> None:
        """Send a frame that gets no reply (broadcasts)."""
        async with self._lock:
            await self.link.send(request)
