"""The gateway process: DTUs connect in, meters get polled, commands get sent and confirmed.

Django-free: everything that touches the database goes through a :class:`Store` (the
gateway process wires :class:`meterpay.gateway.db_port.DbPort`, which is also the
:class:`~meterpay.gateway.dtu.GatewayPort` of the :class:`DtuServer`).

- one :class:`BusWorker` per connected DTU/serial server: commands first (someone is
  waiting for them), then the meters whose poll is due, one at a time (RS-485 is half duplex)
- meters behind a gateway that is not connected count a missed poll when due, so they turn
  offline after ``offline_after`` polls like any other silent meter
- every meter has a fixed offset inside its poll interval (from its id), so a site's meters
  are not all polled at the same moment
- commands go out as soon as they are committed: a :class:`CommandWakeups` source (LISTEN/NOTIFY
  on PostgreSQL, a cheap short poll on SQLite) wakes the dispatcher; the outbox is still read
  every ``tick`` as the safety net (retries after a back-off, a missed wake-up)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from meterpay.gateway import meters as drivers
from meterpay.gateway.dtu import DtuServer, DtuSession, GatewayPort
from meterpay.gateway.errors import CommandRejected, GatewayError, MeterTimeout
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import (
    Command,
    CommandResult,
    ElectricityReading,
    MeterReading,
    PurchaseState,
    RelayState,
)
from meterpay.protocols.errors import ProtocolError

log = logging.getLogger("meterpay.gateway")

#: Gateway kinds whose devices connect in over TCP (DTU registration packets).
TCP_KINDS = ("dtu_4g", "serial_server")


@dataclass(frozen=True, slots=True)
class MeterPlan:
    """What the process needs to know about one meter (plain data, loaded from the store)."""

    meter_id: int
    gateway: str  # the gateway's identifier
    gateway_kind: str
    spec: MeterSpec
    water: bool
    poll_every: float  # seconds


@dataclass(frozen=True, slots=True)
class CommandJob:
    command_id: UUID
    meter_id: int
    kind: str
    target: str  # "on" | "off"
    amount_minor: int | None = None  # credit commands: the money to add / to leave


class Store(Protocol):
    """The database side, as the process needs it. All async; implementations must not block."""

    async def load_plan(self) -> list[MeterPlan]: ...

    async def commands_due(self, gateways: Sequence[str]) -> list[CommandJob]: ...

    async def claim(self, command_id: UUID) -> int | None:
        """Claim a pending command for sending; its attempt number, or None if not ours."""

    async def command_is_final(self, command_id: UUID) -> bool: ...

    async def command_not_done(self, command_id: UUID, error: str, *, refused: bool) -> None: ...

    async def poll_failed(self, meter_id: int, error: str) -> None: ...

    async def credit_checked(
        self,
        command_id: UUID,
        state: PurchaseState | None,
        *,
        sent: bool,
        error: str = "",
        refused: bool = False,
    ) -> int | None:
        """A credit command's purchase state read; the purchase number to send, or None."""

    async def housekeeping(self, connected: Sequence[str]) -> None:
        """Periodic: gateways' last_seen, expiry of undeliverable commands."""

    async def startup(self) -> None:
        """Once at start: mark gateways offline, recover commands left in flight."""


def supply_of(reading: MeterReading) -> str:
    """A reading's relay/valve as a supply state: "on", "off" or "unknown"."""
    if isinstance(reading, ElectricityReading):
        if reading.relay is None:
            return "unknown"
        return "on" if reading.relay is RelayState.CLOSED else "off"
    return {"open": "on", "closed": "off"}.get(reading.valve, "unknown")


def poll_offset(meter_id: int, every: float) -> float:
    """A stable offset inside the poll interval: the jitter that spreads a site's polls."""
    return (zlib.crc32(str(meter_id).encode()) % 10_000) / 10_000 * every


@dataclass(frozen=True, slots=True)
class _Sent:
    """A command on the wire, waiting for its acknowledgement to be recorded and confirmed."""

    job: CommandJob
    plan: MeterPlan
    result: CommandResult
    refused: bool


@dataclass
class _Due:
    plan: MeterPlan
    at: float


class BusWorker:
    """Polls and commands the meters behind one connected DTU, one request at a time."""

    def __init__(
        self,
        session: DtuSession,
        port: GatewayPort,
        store: Store,
        finished: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.port = port
        self.store = store
        #: Called after each command: the meter's next command may be due now.
        self.finished = finished
        self.commands: asyncio.Queue[CommandJob] = asyncio.Queue()
        self.sent: asyncio.Queue[_Sent] = asyncio.Queue()
        self.queued: set[UUID] = set()
        self.plans: dict[int, MeterPlan] = {}
        self.wake = asyncio.Event()

    @property
    def gateway(self) -> str:
        return self.session.dtu_id or "?"

    def submit(self, job: CommandJob) -> None:
        if job.command_id not in self.queued:
            self.queued.add(job.command_id)
            self.commands.put_nowait(job)
            self.wake.set()

    async def poll(self, plan: MeterPlan) -> None:
        try:
            await self.session.read_meter(plan.spec)  # the port stores the reading
        except (GatewayError, ProtocolError) as exc:
            await self.store.poll_failed(plan.meter_id, str(exc))

    async def run_commands(self) -> None:
        """Put every queued command on the wire; their confirmations run beside (see
        :meth:`confirm_sent`), so a tenant waiting for supply never waits for the bookkeeping
        of the command before. The bus client's lock keeps one request on the bus at a time."""
        while not self.commands.empty():
            job = self.commands.get_nowait()
            try:
                sent = await self._send(job)
            except (GatewayError, ProtocolError) as exc:  # pragma: no cover - caught inside
                log.warning("command %s: %s", job.command_id, exc)
                sent = None
            if sent is None:
                self._done(job)
            else:
                self.sent.put_nowait(sent)

    async def confirm_sent(self) -> None:
        """Record the outcome of each sent command and confirm it by a status read, in order."""
        while True:
            sent = await self.sent.get()
            try:
                await self._confirm(sent)
            except (GatewayError, ProtocolError) as exc:  # pragma: no cover - caught inside
                log.warning("command %s: %s", sent.job.command_id, exc)
            finally:
                self._done(sent.job)

    def _done(self, job: CommandJob) -> None:
        self.queued.discard(job.command_id)
        if self.finished is not None:
            self.finished()

    async def _read_status(self, plan: MeterPlan) -> str | None:
        try:
            reading = await self.session.read_meter(plan.spec)
        except (GatewayError, ProtocolError):
            return None
        return supply_of(reading)

    async def _send(self, job: CommandJob) -> _Sent | None:
        """Claim the command and put it on the bus; None if there is nothing (more) to send."""
        plan = self.plans.get(job.meter_id)
        if plan is None:
            return None
        if job.kind in drivers.CREDIT_OPERATIONS:
            await self.execute_credit(job, plan)
            return None
        attempt = await self.store.claim(job.command_id)
        if attempt is None:
            return None  # taken, superseded or finished meanwhile
        if attempt > 1 and await self._read_status(plan) == job.target:
            # the previous attempt did act; the status read confirmed it
            return None
        command = Command(job.kind)
        refused = False
        try:
            state = await drivers.execute(self.session.bus, plan.spec, command)
            result = CommandResult(
                plan.spec.protocol, plan.spec.address, command, True, state=state
            )
        except MeterTimeout as exc:
            result = CommandResult(
                plan.spec.protocol, plan.spec.address, command, False, error=f"timeout: {exc}"
            )
        except CommandRejected as exc:
            refused = True
            result = CommandResult(
                plan.spec.protocol, plan.spec.address, command, False, error=str(exc)
            )
        except (GatewayError, ProtocolError) as exc:
            result = CommandResult(
                plan.spec.protocol, plan.spec.address, command, False, error=str(exc)
            )
        return _Sent(job, plan, result, refused)

    async def _confirm(self, sent: _Sent) -> None:
        job, result = sent.job, sent.result
        await self.port.command_result(self.gateway, result)
        # Acknowledged or not, the meter's status decides: a lost ack must not leave a wrong state.
        status = None if sent.refused else await self._read_status(sent.plan)
        if status == job.target or await self.store.command_is_final(job.command_id):
            return
        error = result.error or f"acknowledged, but the meter reports supply {status or 'unknown'}"
        await self.store.command_not_done(job.command_id, error, refused=sent.refused)

    async def _purchase_state(self, plan: MeterPlan) -> tuple[PurchaseState | None, str]:
        try:
            return await drivers.read_purchase_state(self.session.bus, plan.spec), ""
        except (GatewayError, ProtocolError) as exc:
            return None, str(exc)

    async def execute_credit(self, job: CommandJob, plan: MeterPlan) -> None:
        """Read the purchase count, send under the next number, read again: the count decides.

        A lost reply is harmless: the meter applies one purchase number once, and the read
        after (or the next attempt's read before) sees whether it did.
        """
        if await self.store.claim(job.command_id) is None:
            return
        state, error = await self._purchase_state(plan)
        number = await self.store.credit_checked(job.command_id, state, sent=False, error=error)
        if number is None:
            return
        refused = False
        try:
            await drivers.write_credit(
                self.session.bus, plan.spec, job.kind, job.amount_minor or 0, number
            )
        except CommandRejected as exc:
            refused, error = True, str(exc)
        except (GatewayError, ProtocolError) as exc:
            error = str(exc)
        state, read_error = await self._purchase_state(plan)
        await self.store.credit_checked(
            job.command_id, state, sent=True, error=error or read_error, refused=refused
        )

    async def run(self, now: Callable[[], float]) -> None:
        confirming = asyncio.create_task(self.confirm_sent())
        try:
            await self._serve(now)
        finally:
            confirming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await confirming

    async def _serve(self, now: Callable[[], float]) -> None:
        due: dict[int, float] = {}
        while not self.session.closed.is_set():
            await self.run_commands()
            moment = now()
            for meter_id, plan in list(self.plans.items()):
                at = due.setdefault(meter_id, moment + poll_offset(meter_id, plan.poll_every))
                if at <= moment:
                    await self.poll(plan)
                    # skip polls missed while busy rather than bursting to catch up
                    due[meter_id] = max(at + plan.poll_every, now())
                    await self.run_commands()
            moment = now()
            wait = min((at - moment for at in due.values()), default=1.0)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(0.01, min(wait, 1.0)))


@dataclass
class ProcessOptions:
    tick: float = 1.0  # how often the outbox is read without a wake-up (the safety net)
    plan_refresh: float = 30.0  # how often meters and gateways are reloaded
    housekeeping_every: float = 30.0
    #: Absent meters count their missed polls at least this often (and every tick).
    bookkeeping_every: float = 1.0


class CommandWakeups(Protocol):
    """Tells the process that commands were written, right after their transaction commits."""

    async def run(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` for new commands until cancelled; never raise for a lost connection."""


class CommandSink(Protocol):
    """Another transport that can carry commands (the MQTT adapter)."""

    plans: list[MeterPlan]

    def connected_gateways(self) -> set[str]: ...

    def submit(self, job: CommandJob, plan: MeterPlan) -> None: ...


@dataclass
class GatewayProcess:
    """Runs the DTU server's workers, the outbox loop and the offline bookkeeping."""

    server: DtuServer
    store: Store
    options: ProcessOptions = field(default_factory=ProcessOptions)
    sinks: list[CommandSink] = field(default_factory=list)
    workers: dict[str, tuple[BusWorker, asyncio.Task[None]]] = field(default_factory=dict)
    plans: list[MeterPlan] = field(default_factory=list)
    wakeups: CommandWakeups | None = None
    _absent_due: dict[int, float] = field(default_factory=dict)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _commands_written: asyncio.Event = field(default_factory=asyncio.Event)
    #: The plans by gateway and by meter, made when the plans change (not on every wake-up).
    _by_gateway: dict[str, dict[int, MeterPlan]] = field(default_factory=dict)
    _by_meter: dict[int, MeterPlan] = field(default_factory=dict)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _set_plans(self, plans: list[MeterPlan]) -> None:
        self.plans = plans
        self._by_gateway = {}
        for plan in plans:
            self._by_gateway.setdefault(plan.gateway, {})[plan.meter_id] = plan
        self._by_meter = {plan.meter_id: plan for plan in plans}
        for sink in self.sinks:
            sink.plans = plans

    def _sync_workers(self) -> None:
        grouped = self._by_gateway
        for gateway, (worker, task) in list(self.workers.items()):
            if task.done() or self.server.sessions.get(gateway) is not worker.session:
                task.cancel()
                del self.workers[gateway]
        for gateway, session in self.server.sessions.items():
            if gateway not in self.workers and not session.closed.is_set():
                worker = BusWorker(session, self.server.port, self.store, finished=self.wake)
                self.workers[gateway] = (worker, asyncio.create_task(worker.run(self._now)))
        for gateway, (worker, _) in self.workers.items():
            worker.plans = grouped.get(gateway, {})

    async def _count_absent(self) -> None:
        """Meters behind gateways that are not connected miss their polls too."""
        connected = set(self.workers)
        for sink in self.sinks:
            connected |= sink.connected_gateways()
        moment = self._now()
        for plan in self.plans:
            if plan.gateway in connected or plan.gateway_kind == "mqtt":
                self._absent_due.pop(plan.meter_id, None)
                continue
            at = self._absent_due.setdefault(plan.meter_id, moment + plan.poll_every)
            if at <= moment:
                self._absent_due[plan.meter_id] = at + plan.poll_every
                await self.store.poll_failed(
                    plan.meter_id, f"gateway {plan.gateway} is not connected"
                )

    async def _dispatch_commands(self) -> None:
        connected = set(self.workers)
        for sink in self.sinks:
            connected |= sink.connected_gateways()
        if not connected:
            return
        by_meter = self._by_meter
        for job in await self.store.commands_due(sorted(connected)):
            plan = by_meter.get(job.meter_id)
            if plan is None:
                continue
            if plan.gateway in self.workers:
                self.workers[plan.gateway][0].submit(job)
            else:
                for sink in self.sinks:
                    if plan.gateway in sink.connected_gateways():
                        sink.submit(job, plan)

    def wake(self) -> None:
        """Commands were written: read the outbox now instead of at the next tick."""
        self._commands_written.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep until stopped, woken for commands, or ``seconds`` pass."""
        stopping = asyncio.ensure_future(self._stopping.wait())
        written = asyncio.ensure_future(self._commands_written.wait())
        try:
            await asyncio.wait(
                {stopping, written}, timeout=max(seconds, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()
            written.cancel()

    async def run(self, ready: Callable[[], Awaitable[None]] | None = None) -> None:
        await self.store.startup()
        self._set_plans(await self.store.load_plan())
        last_plan = last_housekeeping = last_dispatch = last_bookkeeping = self._now()
        listener = None
        if self.wakeups is not None:
            listener = asyncio.create_task(self.wakeups.run(self.wake))
        if ready is not None:
            await ready()
        bookkeeping = min(self.options.tick, self.options.bookkeeping_every)
        first = True
        try:
            while not self._stopping.is_set():
                moment = self._now()
                if moment - last_plan >= self.options.plan_refresh:
                    self._set_plans(await self.store.load_plan())
                    last_plan = moment
                if moment - last_housekeeping >= self.options.housekeeping_every:
                    await self.store.housekeeping(sorted(self.workers))
                    last_housekeeping = moment
                self._sync_workers()
                written = self._commands_written.is_set()
                if first or written or moment - last_dispatch >= self.options.tick:
                    # cleared before reading: a commit landing during the read wakes us again
                    self._commands_written.clear()
                    await self._dispatch_commands()
                    last_dispatch = moment
                if first or moment - last_bookkeeping >= bookkeeping:
                    await self._count_absent()
                    last_bookkeeping = moment
                first = False
                moment = self._now()
                await self._pause(
                    min(
                        last_dispatch + self.options.tick,
                        last_bookkeeping + bookkeeping,
                    )
                    - moment
                )
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            for _, task in self.workers.values():
                task.cancel()
            for _, task in self.workers.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.workers.clear()

    def stop(self) -> None:
        self._stopping.set()
