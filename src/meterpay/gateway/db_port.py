"""The database side of the gateway process: a GatewayPort and a Store over the services.

Every ORM call runs in one worker thread (``sync_to_async(thread_sensitive=True)``), so the
event loop never blocks and SQLite sees a single writer from this process.

Polled readings are buffered: up to ``batch_size`` readings (per lane, below) or
``batch_delay`` seconds, then one transaction stores them (``register_reads_record_batch``).
The buffer is flushed before anything that must see a reading (a command's status read
deciding it), and on close.

On PostgreSQL the readings of a flush are stored in ``lanes`` at once: each lane is a thread
with a connection of its own and a fixed share of the meters, so one lane prepares its batch
in Python while another's is in the database (a meter's readings always go the same lane, in
order). The first lane is the worker thread above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from meterpay.apps.billing.tasks import meters_deduct_task
from meterpay.apps.control import credit
from meterpay.apps.control import selectors as control_selectors
from meterpay.apps.control import services as control
from meterpay.apps.control.models import MeterCommand, MeterSupplyState
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.readings import services as readings
from meterpay.apps.readings.models import GatewayLink
from meterpay.apps.readings.services import ReadInput
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.process import CommandJob, MeterPlan, supply_of
from meterpay.gateway.readings import (
    CommandResult,
    ElectricityReading,
    MeterProtocol,
    MeterReading,
    PurchaseState,
)

log = logging.getLogger("meterpay.gateway")

ACTOR = "gateway"
SERVED_KINDS = ("dtu_4g", "serial_server", "mqtt")


def normalise_address(protocol: str, address: str) -> str:
    """Addresses as the drivers report them: 12/14 digits, or the Modbus unit id without zeros."""
    if protocol == MeterProtocol.MODBUS:
        return str(int(address)) if address.isdigit() else address
    return address.rjust(12 if protocol == MeterProtocol.DLT645 else 14, "0")


def _minor(money: Decimal | None) -> int | None:
    """DL/T 645 money (CNY, two decimals) in fen."""
    return None if money is None else int(money.scaleb(2).to_integral_value())


@dataclass
class PollIntervals:
    electricity: float = 15 * 60.0
    water: float = 60 * 60.0

    def for_meter(self, water: bool) -> float:
        return self.water if water else self.electricity


@dataclass
class DbPort:
    """GatewayPort (what DTU sessions report) and Store (what the process asks) in one."""

    intervals: PollIntervals = field(default_factory=PollIntervals)
    offline_after: int = readings.OFFLINE_AFTER_MISSED_POLLS
    backoff_base: timedelta = control.BACKOFF_BASE
    worker: str = "gateway"
    #: Buffered readings are stored when this many are waiting for each lane, a transaction
    #: for each ...
    batch_size: int = 500
    #: ... or this many seconds after the first one arrived.
    batch_delay: float = 0.05
    _meters: dict[tuple[str, str], int] = field(default_factory=dict)
    _water: dict[int, bool] = field(default_factory=dict)
    #: The supply state this process last recorded per meter (skip unchanged repeats).
    _supply: dict[int, str] = field(default_factory=dict)
    _pending: list[tuple[str, MeterReading, str]] = field(default_factory=list)
    _pending_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Batches each lane has been given and not yet stored.
    _queues: list[deque[list[tuple[str, MeterReading, str]]]] = field(default_factory=list)
    _timer: asyncio.TimerHandle | None = None
    _flushes: set[asyncio.Task[None]] = field(default_factory=set)
    #: PostgreSQL: batches stored at once, on connections of their own (SQLite: one).
    lanes: int = 2
    stats: dict[str, int] = field(
        default_factory=lambda: {"batches": 0, "stored": 0, "intervals": 0, "duplicates": 0}
    )
    _pickup: ThreadPoolExecutor | None = None
    _lane_executors: list[ThreadPoolExecutor] = field(default_factory=list)
    #: Batches queued to or being stored by the lanes beyond the first (so that a flush in
    #: the worker thread waits for every reading buffered before it).
    _lanes_busy: int = 0
    _lanes_idle: threading.Condition = field(default_factory=threading.Condition)
    _stats_lock: threading.Lock = field(default_factory=threading.Lock)

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    async def _db(function: Any, *args: Any, **kwargs: Any) -> Any:
        return await sync_to_async(function, thread_sensitive=True)(*args, **kwargs)

    def _meter_id(self, gateway: str, address: str) -> int | None:
        meter_id = self._meters.get((gateway, address))
        if meter_id is not None:
            return meter_id
        for meter in Meter.objects.filter(gateway__identifier=gateway, removed_on__isnull=True):
            self._meters[(gateway, normalise_address(meter.protocol, meter.address))] = meter.pk
            self._water[meter.pk] = meter.kind == Meter.Kind.WATER
        return self._meters.get((gateway, address))

    def _expected(self, meter: Meter) -> timedelta:
        return timedelta(seconds=self.intervals.for_meter(meter.kind == Meter.Kind.WATER))

    # --- GatewayPort -----------------------------------------------------------------------

    def _registered(self, dtu_id: str, attributes: Mapping[str, str]) -> None:
        close_old_connections()
        gateway = Gateway.objects.filter(identifier=dtu_id).first()
        if gateway is None:
            log.warning("unknown gateway %s registered; add it in the console", dtu_id)
            return
        readings.gateway_link_connected(
            gateway=gateway, at=timezone.now(), attributes=dict(attributes)
        )

    async def dtu_registered(self, dtu_id: str, attributes: Mapping[str, str]) -> None:
        await self._db(self._registered, dtu_id, attributes)

    def _disconnected(self, dtu_id: str, reason: str) -> None:
        gateway = Gateway.objects.filter(identifier=dtu_id).first()
        if gateway is not None:
            readings.gateway_link_disconnected(gateway=gateway, at=timezone.now(), reason=reason)

    async def dtu_disconnected(self, dtu_id: str, reason: str) -> None:
        await self._db(self._disconnected, dtu_id, reason)

    def record_reading(self, gateway: str, reading: MeterReading, source: str) -> int | None:
        """Store a reading and its relay/valve state; the meter's id, or None if unknown."""
        meter_id = self._meter_id(gateway, reading.address)
        if meter_id is None:
            log.warning("reading from unknown meter %s behind %s", reading.address, gateway)
            return None
        meter = Meter.objects.get(pk=meter_id)
        if isinstance(reading, ElectricityReading):
            energy = reading.energy_kwh
            registers: dict[str, Decimal | None] = {
                "total": energy.total,
                "sharp": energy.sharp,
                "peak": energy.peak,
                "flat": energy.flat,
                "valley": energy.valley,
            }
        else:
            registers = {"total": reading.volume_m3}
        try:
            if registers["total"] is not None:
                readings.register_read_record(
                    meter=meter,
                    read_at=reading.read_at,
                    source=source,
                    actor=ACTOR,
                    expected_interval=self._expected(meter),
                    total=registers.pop("total") or Decimal(0),
                    **registers,
                )
            else:
                readings.meter_link_seen(meter=meter, at=reading.read_at)
            control.supply_state_reported(
                meter=meter, reported=supply_of(reading), at=reading.read_at
            )
            self._balances_reported([(meter_id, reading)])
        except ValidationError as exc:
            log.warning("reading of meter %s refused: %s", meter.address, "; ".join(exc.messages))
        return meter_id

    async def reading_received(self, dtu_id: str, reading: MeterReading) -> None:
        """Buffer a polled reading; a full buffer is stored before returning (back pressure)."""
        with self._pending_lock:
            self._pending.append((dtu_id, reading, "poll"))
        await self._buffered()

    async def readings_pushed(self, gateway: str, readings: Sequence[MeterReading]) -> None:
        """Buffer a batch of pushed readings (MQTT telemetry), as polled ones."""
        items = [(gateway, reading, "push") for reading in readings]
        with self._pending_lock:
            self._pending.extend(items)
        await self._buffered()

    async def _buffered(self) -> None:
        lanes = self._lane_count()
        if len(self._pending) >= self.batch_size * lanes:  # a batch for each lane
            await self._drained(self._queue(self._take_pending()))  # back pressure on the sender
        elif sum(len(queue) for queue in self._queues) > 2 * lanes:
            # The lanes are behind: every sender waits, so the backlog (which a command's
            # status check would wait for) stays about two batches per lane.
            await self._drained(range(len(self._queues)))
        if self._pending and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.batch_delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Store every buffered reading now, and wait for what the lanes were given before."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue(self._take_pending())
        await self._drained(range(len(self._queues)))

    async def store(self, items: Sequence[tuple[str, MeterReading, str]]) -> None:
        """Store these readings now (after what the lanes were given before)."""
        await self._drained(self._queue(items))

    def _take_pending(self) -> list[tuple[str, MeterReading, str]]:
        """What is buffered, all of it: the worker thread takes it too (before a command
        decision), so no reading may land in a list already taken."""
        with self._pending_lock:
            waiting, self._pending = self._pending, []
        return waiting

    def _lane_count(self) -> int:
        if self.lanes <= 1 or connections["default"].vendor != "postgresql":
            return 1
        return self.lanes

    def _queue(self, items: Sequence[tuple[str, MeterReading, str]]) -> list[int]:
        """Share readings out to the lanes by meter, in batches of batch_size, behind what each
        lane has queued already (in the event loop, all at once: the order is the order of
        arrival); the lanes given work."""
        count = self._lane_count()
        while len(self._queues) < count:
            self._queues.append(deque())
        while len(self._lane_executors) < count - 1:
            number = len(self._lane_executors) + 1
            self._lane_executors.append(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"readings-lane-{number}")
            )
        if count == 1:
            shares = [list(items)]
        else:
            shares = [[] for _ in range(count)]
            for item in items:
                shares[hash((item[0], item[1].address)) % count].append(item)
        given = []
        for lane, share in enumerate(shares):
            for start in range(0, len(share), self.batch_size):
                if lane:
                    with self._lanes_idle:
                        self._lanes_busy += 1
                self._queues[lane].append(share[start : start + self.batch_size])
            if share:
                given.append(lane)
        return given

    async def _drained(self, lanes: Iterable[int]) -> None:
        """Wait until these lanes have stored everything queued to them so far."""
        await asyncio.gather(*(self._drain_lane(lane) for lane in lanes))

    async def _drain_lane(self, lane: int) -> None:
        if lane == 0:
            await self._db(self._drain, 0)
            return
        # Once handed over the lane stores its queue even if this sender is cancelled.
        handed = self._lane_executors[lane - 1].submit(self._drain, lane)
        await asyncio.shield(asyncio.wrap_future(handed))

    def _drain(self, lane: int) -> None:
        """In the lane's thread: store its queued batches, oldest first."""
        queue = self._queues[lane]
        if lane:
            close_old_connections()  # the lane's own connection: drop it if broken
        while queue:
            batch = queue.popleft()
            try:
                self.record_batch(batch)  # falls back to one by one itself
            except Exception:  # the rest of the queue still waits, and whoever waits on it
                log.exception("storing a batch of %d readings failed", len(batch))
            finally:
                if lane:
                    with self._lanes_idle:
                        self._lanes_busy -= 1
                        self._lanes_idle.notify_all()

    def _flush_sync(self) -> None:
        """In the DB thread, before a decision that must see buffered readings: what the other
        lanes were given first, then the first lane's queue (this thread's), then the buffer."""
        for lane, executor in enumerate(self._lane_executors, start=1):
            if self._queues[lane]:  # (its sender may be gone: the lane must not wait for it)
                executor.submit(self._drain, lane)
        with self._lanes_idle:
            self._lanes_idle.wait_for(lambda: self._lanes_busy == 0)
        if self._queues:
            self._drain(0)
        waiting = self._take_pending()
        for start in range(0, len(waiting), self.batch_size):
            self.record_batch(waiting[start : start + self.batch_size])

    def record_batch(self, items: Sequence[tuple[str, MeterReading, str]]) -> None:
        """Store readings in one transaction, then their relay/valve states."""
        inputs: list[ReadInput] = []
        seen: list[tuple[int, MeterReading]] = []
        expected = {
            water: timedelta(seconds=self.intervals.for_meter(water)) for water in (False, True)
        }
        for gateway, reading, source in items:
            meter_id = self._meter_id(gateway, reading.address)
            if meter_id is None:
                log.warning("reading from unknown meter %s behind %s", reading.address, gateway)
                continue
            seen.append((meter_id, reading))
            water = self._water.get(meter_id, False)
            if isinstance(reading, ElectricityReading):
                energy = reading.energy_kwh
                if energy.total is None:
                    self._seen_without_total(meter_id, reading)
                    continue
                inputs.append(
                    ReadInput(
                        meter_id,
                        reading.read_at,
                        energy.total,
                        energy.sharp,
                        energy.peak,
                        energy.flat,
                        energy.valley,
                        source,
                        expected[water],
                    )
                )
            else:  # positional: a tuple made thousands of times a second
                inputs.append(
                    ReadInput(
                        meter_id,
                        reading.read_at,
                        reading.volume_m3,
                        None,
                        None,
                        None,
                        None,
                        source,
                        expected[water],
                    )
                )
        try:
            outcome = readings.register_reads_record_batch(reads=inputs, actor=ACTOR)
        except Exception:
            log.exception("storing a batch of %d readings failed; storing one by one", len(items))
            for gateway, reading, source in items:
                with contextlib.suppress(Exception):
                    self.record_reading(gateway, reading, source)
            return
        for read, reason in outcome.refused:
            log.warning("reading of meter %s refused: %s", read.meter_id, reason)
        with self._stats_lock:
            self.stats["batches"] += 1
            self.stats["stored"] += outcome.stored
            self.stats["intervals"] += outcome.intervals
            self.stats["duplicates"] += outcome.duplicates
        self._supply_reported(seen)
        self._balances_reported(seen)
        if outcome.deductible_meters:
            # Deduction runs in the job worker, after this commit: the gateway keeps polling.
            ids = list(outcome.deductible_meters)
            transaction.on_commit(lambda: meters_deduct_task(ids))

    def _seen_without_total(self, meter_id: int, reading: MeterReading) -> None:
        meter = Meter.objects.filter(pk=meter_id).first()
        if meter is not None:
            readings.meter_link_seen(meter=meter, at=reading.read_at)

    def _supply_reported(self, seen: Sequence[tuple[int, MeterReading]]) -> None:
        """Record relay/valve states: changes, and every state of a meter with a command out."""
        if not seen:
            return
        # Commands out are few: ask for all of them, not for the (many) meters of the batch.
        watched = set(
            MeterCommand.objects.filter(
                attempts__gt=0,
                sent_at__isnull=False,
                status__in=[*MeterCommand.OPEN_STATUSES, MeterCommand.Status.TIMED_OUT],
            ).values_list("meter_id", flat=True)
        )
        # What the database holds is what this process last saw, for meters it has not seen yet
        # (one query: a restarted gateway does not report every meter's state again).
        unseen = {meter_id for meter_id, _ in seen} - self._supply.keys()
        if unseen:
            stored = MeterSupplyState.objects.filter(meter_id__in=unseen)
            self._supply.update(stored.values_list("meter_id", "reported"))
        due: list[tuple[int, MeterReading, str]] = []
        running = dict(self._supply)
        for meter_id, reading in seen:
            state = supply_of(reading)
            if meter_id in watched or running.get(meter_id) != state:
                due.append((meter_id, reading, state))
                running[meter_id] = state
        if not due:
            return
        meters = Meter.objects.in_bulk({meter_id for meter_id, _, _ in due})
        for meter_id, reading, state in due:
            meter = meters.get(meter_id)
            if meter is None:
                continue
            try:
                control.supply_state_reported(meter=meter, reported=state, at=reading.read_at)
            except ValidationError as exc:
                log.warning("state of meter %s refused: %s", meter.address, "; ".join(exc.messages))
                continue
            self._supply[meter_id] = state

    def _balances_reported(self, seen: Sequence[tuple[int, MeterReading]]) -> None:
        """Mirror the remaining money and purchase count prepaid meters report."""
        reports = [
            credit.BalanceReport(
                meter_id,
                _minor(reading.remaining_money),
                reading.purchase_count,
                reading.read_at,
            )
            for meter_id, reading in seen
            if isinstance(reading, ElectricityReading)
            and (reading.remaining_money is not None or reading.purchase_count is not None)
        ]
        if reports:
            credit.meter_balances_reported(reports=reports)

    def _credit_checked(
        self,
        command_id: UUID,
        state: PurchaseState | None,
        sent: bool,
        error: str,
        refused: bool,
    ) -> int | None:
        self._flush_sync()
        return credit.meter_credit_checked(
            command_id=command_id,
            at=state.read_at if state is not None else timezone.now(),
            sent=sent,
            purchase_count=None if state is None else state.purchase_count,
            remaining_minor=None if state is None else _minor(state.remaining_money),
            remaining_before_minor=(
                None if state is None else _minor(state.remaining_before_last_purchase)
            ),
            remaining_after_minor=(
                None if state is None else _minor(state.remaining_after_last_purchase)
            ),
            error=error,
            refused=refused,
        )

    async def credit_checked(
        self,
        command_id: UUID,
        state: PurchaseState | None,
        *,
        sent: bool,
        error: str = "",
        refused: bool = False,
    ) -> int | None:
        result = await self._db(self._credit_checked, command_id, state, sent, error, refused)
        return None if result is None else int(result)

    def _command_result(self, gateway: str, result: CommandResult) -> None:
        self._flush_sync()
        self._supply.clear()  # a command may change what the meter reports
        meter_id = self._meter_id(gateway, result.address)
        if meter_id is None or not result.acknowledged:
            return  # an unanswered command is judged by the status read that follows
        answered = MeterCommand.objects.filter(meter_id=meter_id, kind=result.command.value)
        command = (
            answered.filter(status=MeterCommand.Status.SENT).first()
            # confirmed by a poll's status read before its answer was recorded
            or answered.filter(status=MeterCommand.Status.CONFIRMED, acknowledged_at__isnull=True)
            .order_by("-pk")
            .first()
        )
        if command is not None:
            control.meter_command_acknowledged(
                command_id=command.command_id, at=result.at, state=result.state
            )

    async def command_result(self, dtu_id: str, result: CommandResult) -> None:
        await self._db(self._command_result, dtu_id, result)

    # --- Store ---------------------------------------------------------------------------

    def _load_plan(self) -> list[MeterPlan]:
        close_old_connections()
        self._meters.clear()
        plans = []
        installed = Meter.objects.filter(
            removed_on__isnull=True, gateway__isnull=False, gateway__kind__in=SERVED_KINDS
        ).select_related("gateway")
        for meter in installed.order_by("pk"):
            assert meter.gateway is not None
            water = meter.kind == Meter.Kind.WATER
            address = normalise_address(meter.protocol, meter.address)
            self._meters[(meter.gateway.identifier, address)] = meter.pk
            self._water[meter.pk] = water
            spec = MeterSpec(
                MeterProtocol(meter.protocol), address, model=meter.model or "DDSY1352"
            )
            plans.append(
                MeterPlan(
                    meter_id=meter.pk,
                    gateway=meter.gateway.identifier,
                    gateway_kind=meter.gateway.kind,
                    spec=spec,
                    water=water,
                    poll_every=self.intervals.for_meter(water),
                )
            )
        return plans

    async def load_plan(self) -> list[MeterPlan]:
        return list(await self._db(self._load_plan))

    def _commands_due(self, gateways: Sequence[str]) -> list[CommandJob]:
        if self._pickup is not None:
            close_old_connections()  # the pickup thread's own connection: drop it if broken
        due = control_selectors.commands_due(gateway_identifiers=gateways, now=timezone.now())
        return [CommandJob(c.command_id, c.meter_id, c.kind, c.target, c.amount_minor) for c in due]

    def _pickup_executor(self) -> ThreadPoolExecutor | None:
        """PostgreSQL: command pickup has a thread and connection of its own, so a command never
        waits behind a batch of readings. SQLite keeps one writing thread per process."""
        if self._pickup is None and connections["default"].vendor == "postgresql":
            self._pickup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="command-pickup")
        return self._pickup

    async def _pickup_db(self, function: Any, *args: Any) -> Any:
        executor = self._pickup_executor()
        if executor is None:
            return await self._db(function, *args)
        return await sync_to_async(function, thread_sensitive=False, executor=executor)(*args)

    async def commands_due(self, gateways: Sequence[str]) -> list[CommandJob]:
        return list(await self._pickup_db(self._commands_due, gateways))

    def _claim(self, command_id: UUID) -> int | None:
        # Readings buffered now are stored after the claim: a state read before the command was
        # sent never confirms it (supply_state_reported), and its meter is watched from now on.
        self._supply.clear()
        command = control.meter_command_claim(command_id=command_id, worker=self.worker)
        return None if command is None else command.attempts

    async def claim(self, command_id: UUID) -> int | None:
        result = await self._pickup_db(self._claim, command_id)
        return None if result is None else int(result)

    def _is_final(self, command_id: UUID) -> bool:
        self._flush_sync()  # the status read that may have confirmed it is in the buffer
        status = (
            MeterCommand.objects.filter(command_id=command_id)
            .values_list("status", flat=True)
            .first()
        )
        return status is None or status in MeterCommand.FINAL_STATUSES

    async def command_is_final(self, command_id: UUID) -> bool:
        return bool(await self._db(self._is_final, command_id))

    def _not_done(self, command_id: UUID, error: str, refused: bool) -> None:
        self._flush_sync()
        self._supply.clear()
        control.meter_command_not_done(
            command_id=command_id,
            at=timezone.now(),
            error=error,
            refused=refused,
            backoff_base=self.backoff_base,
        )

    async def command_not_done(self, command_id: UUID, error: str, *, refused: bool) -> None:
        await self._db(self._not_done, command_id, error, refused)

    def _acknowledged(self, command_id: UUID, state: str | None) -> None:
        self._flush_sync()
        self._supply.clear()
        control.meter_command_acknowledged(command_id=command_id, at=timezone.now(), state=state)

    async def command_acknowledged(self, command_id: UUID, state: str | None) -> None:
        await self._db(self._acknowledged, command_id, state)

    def _poll_failed(self, meter_id: int, error: str) -> None:
        meter = Meter.objects.filter(pk=meter_id).first()
        if meter is not None:
            readings.meter_link_poll_failed(
                meter=meter, at=timezone.now(), error=error, offline_after=self.offline_after
            )

    async def poll_failed(self, meter_id: int, error: str) -> None:
        await self._db(self._poll_failed, meter_id, error)

    def _housekeeping(self, connected: Sequence[str]) -> None:
        close_old_connections()
        now = timezone.now()
        Gateway.objects.filter(identifier__in=list(connected)).update(last_seen_at=now)
        control.meter_commands_expire(now=now)

    async def housekeeping(self, connected: Sequence[str]) -> None:
        await self._db(self._housekeeping, connected)

    def _startup(self) -> None:
        close_old_connections()
        now = timezone.now()
        for link in GatewayLink.objects.filter(
            online=True, gateway__kind__in=SERVED_KINDS
        ).select_related("gateway"):
            readings.gateway_link_disconnected(
                gateway=link.gateway, at=now, reason="gateway process restarted"
            )
        control.meter_commands_recover_in_flight(at=now)

    async def startup(self) -> None:
        await self._db(self._startup)

    # --- MQTT ------------------------------------------------------------------------------

    def _mqtt_gateways(self) -> dict[str, str]:
        rows = Gateway.objects.filter(kind="mqtt").values_list("identifier", "organisation__slug")
        return dict(rows)

    async def mqtt_gateways(self) -> dict[str, str]:
        return dict(await self._db(self._mqtt_gateways))

    async def reading_pushed(self, gateway: str, reading: MeterReading) -> int | None:
        result = await self._db(self.record_reading, gateway, reading, "push")
        return None if result is None else int(result)

    def _mqtt_status(self, gateway: str, online: bool) -> None:
        found = Gateway.objects.filter(identifier=gateway, kind="mqtt").first()
        if found is None:
            return
        if online:
            readings.gateway_link_connected(
                gateway=found, at=timezone.now(), attributes={"transport": "mqtt"}
            )
        else:
            readings.gateway_link_disconnected(
                gateway=found, at=timezone.now(), reason="MQTT status offline"
            )

    async def mqtt_status(self, gateway: str, online: bool) -> None:
        await self._db(self._mqtt_status, gateway, online)

    async def close(self) -> None:
        """Store what is buffered; close this process's database connections (and the thread's)."""
        for task in list(self._flushes):
            with contextlib.suppress(Exception):
                await task
        await self.flush()
        await self._db(connections.close_all)
        for executor in self._lane_executors:
            await sync_to_async(connections.close_all, thread_sensitive=False, executor=executor)()
            executor.shutdown()
        self._lane_executors.clear()
        if self._pickup is not None:
            await self._pickup_db(connections.close_all)
            self._pickup.shutdown()
            self._pickup = None
