"""Dialling out to serial servers in TCP-server mode.

A 4G DTU, or a serial server in TCP-client mode, connects to the gateway and registers. A
serial server in TCP-server mode only listens: the platform has to connect to it. For each
such gateway (kind ``serial_server`` with a host and port) the :class:`Dialler` keeps one
link open:

- it connects and hands the link to the :class:`~meterpay.gateway.dtu.DtuServer` as a
  session named by the gateway's identifier (there is no registration packet), so the
  process polls and commands the meters behind it exactly like meters behind a DTU;
- the port hears ``dtu_registered`` / ``dtu_disconnected`` as for a DTU (online/offline);
- when the link drops or cannot be opened it tries again after 1 s, 2 s, 4 s … (capped at
  ``backoff_max``); a link that opens resets the delay.

Django-free: the list of gateways to dial comes from a ``targets`` coroutine function.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from meterpay.gateway.dtu import DtuServer, DtuSession
from meterpay.gateway.transport import DEFAULT_TIMEOUT

log = logging.getLogger("meterpay.gateway")


@dataclass(frozen=True, slots=True)
class DialTarget:
    """A serial server the platform connects to."""

    gateway: str  # the gateway's identifier
    host: str
    port: int


class Dialler:
    """Keeps a link open to every serial server in TCP-server mode."""

    def __init__(
        self,
        server: DtuServer,
        targets: Callable[[], Awaitable[Sequence[DialTarget]]],
        *,
        refresh: float = 30.0,
        connect_timeout: float = 5.0,
        backoff_first: float = 1.0,
        backoff_max: float = 60.0,
        request_timeout: float = DEFAULT_TIMEOUT,
        request_retries: int = 0,
    ) -> None:
        self.server = server
        self.targets = targets
        self.refresh = refresh
        self.connect_timeout = connect_timeout
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self.request_retries = request_retries
        self.links: dict[str, tuple[DialTarget, asyncio.Task[None]]] = {}
        #: Links opened per gateway identifier.
        self.connections: Counter[str] = Counter()

    async def run(self) -> None:
        """Follow the list of targets until cancelled."""
        try:
            while True:
                try:
                    self._follow(await self.targets())
                except Exception:  # a database hiccup must not stop the links already open
                    log.exception("cannot load the serial servers to dial")
                await asyncio.sleep(self.refresh)
        finally:
            await self._stop_all()

    def _follow(self, targets: Sequence[DialTarget]) -> None:
        wanted = {target.gateway: target for target in targets}
        for gateway, (target, task) in list(self.links.items()):
            if wanted.get(gateway) != target or task.done():
                task.cancel()  # removed, moved to another host/port, or ended
                del self.links[gateway]
        for gateway, target in wanted.items():
            if gateway not in self.links:
                task = asyncio.create_task(self._keep_linked(target), name=f"dial {gateway}")
                self.links[gateway] = (target, task)

    async def _stop_all(self) -> None:
        tasks = [task for _, task in self.links.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.links.clear()

    async def _keep_linked(self, target: DialTarget) -> None:
        delay = self.backoff_first
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(target.host, target.port), self.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                log.warning(
                    "serial server %s at %s:%s unreachable (%s); next try in %.0f s",
                    target.gateway,
                    target.host,
                    target.port,
                    exc,
                    delay,
                )
            else:
                delay = self.backoff_first
                await self._serve(target, reader, writer)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _serve(
        self, target: DialTarget, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Run one open link until it drops (or the task is cancelled)."""
        raw = writer.get_extra_info("socket")
        if raw is not None:  # notice a dead peer even when no poll is due for a long time
            with contextlib.suppress(OSError):
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.connections[target.gateway] += 1
        session = DtuSession.dialled_link(
            reader,
            writer,
            self.server.port,
            target.gateway,
            request_timeout=self.request_timeout,
            request_retries=self.request_retries,
        )
        log.info("serial server %s: linked to %s:%s", target.gateway, target.host, target.port)
        try:
            await self.server.port.dtu_registered(
                target.gateway, {"host": target.host, "port": str(target.port)}
            )
            await self.server.attach(session)
            await session.run()
        finally:
            if not session.closed.is_set():
                await session.close("gateway stopping")
            await self.server.detach(session)
        log.info("serial server %s: link lost (%s)", target.gateway, session.close_reason)
