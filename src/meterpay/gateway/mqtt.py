"""MQTT adapter for IoT gateways (``Gateway.kind == "mqtt"``); topic scheme in docs/protocols.md.

::

    meterpay/<org-slug>/<gateway-id>/status     up, retained: "online" / "offline" (last will)
    meterpay/<org-slug>/<gateway-id>/telemetry  up: one meter reading (JSON), or many:
                                                {"readings": [reading, reading, …]}
    meterpay/<org-slug>/<gateway-id>/commands   down, QoS 1: {"id", "address", "command"}
    meterpay/<org-slug>/<gateway-id>/ack        up, QoS 1: {"id", "ok", "state", "error", "refused"}

``command`` is ``relay_trip`` / ``relay_close`` / ``valve_open`` / ``valve_close``, or ``read``
(answer with telemetry). Devices must act on a command id once and re-acknowledge a repeat.
A message whose org slug is not the gateway's organisation is dropped. A batch (what a
gateway that polls its meters itself publishes) is stored through the gateway's batching
store; a malformed reading in it is logged with its position and skipped, the others are kept.

The adapter polls like a bus worker (a ``read`` per meter per interval; no telemetry within
the timeout counts as a missed poll) and carries out commands: claim, publish, wait for the
ack, then confirm with a ``read``, exactly as for DTUs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from uuid import UUID

import aiomqtt

from meterpay.gateway.process import CommandJob, MeterPlan, Store, poll_offset, supply_of
from meterpay.gateway.readings import (
    ElectricityReading,
    EnergyRegisters,
    MeterProtocol,
    MeterReading,
    RelayState,
    WaterReading,
)

log = logging.getLogger("meterpay.gateway.mqtt")

PREFIX = "meterpay"
#: At most this often (s) are gateways reloaded when a message names an unknown one.
ORGS_RELOAD = 10.0


def topic(org: str, gateway: str, leaf: str) -> str:
    return f"{PREFIX}/{org}/{gateway}/{leaf}"


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def reading_to_json(reading: MeterReading) -> dict[str, Any]:
    data = reading.to_json()
    data["protocol"] = reading.protocol.value
    data["read_at"] = reading.read_at.isoformat()
    return data


def reading_from_json(data: Mapping[str, Any]) -> MeterReading:
    """Parse a telemetry payload; raises ValueError/TypeError on nonsense."""
    read_at = datetime.fromisoformat(data["read_at"]) if data.get("read_at") else datetime.now(UTC)
    if read_at.tzinfo is None:
        raise ValueError("read_at needs a time zone")
    if "address" not in data:
        raise ValueError("address is missing")
    address = str(data["address"])
    if "volume_m3" in data:
        volume = _decimal(data["volume_m3"])
        if volume is None:
            raise ValueError("volume_m3 is missing")
        return WaterReading(
            MeterProtocol.CJT188, address, volume, str(data.get("valve", "open")), read_at=read_at
        )
    energy = data.get("energy_kwh") or {}
    relay = data.get("relay")
    return ElectricityReading(
        protocol=MeterProtocol(data.get("protocol", "dlt645")),
        address=address,
        energy_kwh=EnergyRegisters(
            *(_decimal(energy.get(k)) for k in ("total", "sharp", "peak", "flat", "valley"))
        ),
        power_kw=_decimal(data.get("power_kw")),
        relay=None if relay is None else RelayState(relay),
        read_at=read_at,
    )


#: A telemetry batch: {"readings": [...]} with at most this many readings.
MAX_BATCH = 10_000


def readings_from_json(data: Mapping[str, Any]) -> tuple[list[MeterReading], list[str]]:
    """Parse a telemetry batch: the good readings, and why each bad one was refused.

    Raises ValueError when the message itself is no batch (``readings`` not a list, or more
    than :data:`MAX_BATCH` readings).
    """
    items = data.get("readings")
    if not isinstance(items, list):
        raise ValueError('"readings" must be a list of readings')
    if len(items) > MAX_BATCH:
        raise ValueError(f"{len(items)} readings in one message; at most {MAX_BATCH}")
    readings: list[MeterReading] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"reading {index}: not an object")
            continue
        try:
            readings.append(reading_from_json(item))
        except (ValueError, TypeError) as exc:
            errors.append(f"reading {index}: {exc}")
    return readings, errors


class MqttStore(Store, Protocol):
    """What the adapter needs beyond the process's store."""

    async def mqtt_gateways(self) -> dict[str, str]:
        """identifier -> organisation slug of every MQTT gateway."""

    async def reading_pushed(self, gateway: str, reading: MeterReading) -> int | None: ...

    async def readings_pushed(self, gateway: str, readings: Sequence[MeterReading]) -> None:
        """Store a batch of pushed readings (buffered, like polled ones)."""

    async def command_acknowledged(self, command_id: UUID, state: str | None) -> None: ...

    async def mqtt_status(self, gateway: str, online: bool) -> None: ...


@dataclass
class MqttAdapter:
    store: MqttStore
    hostname: str = "127.0.0.1"
    port: int = 1883
    identifier: str = "meterpay-gateway"
    reply_timeout: float = 5.0
    reconnect_delay: float = 3.0
    plans: list[MeterPlan] = field(default_factory=list)
    online: set[str] = field(default_factory=set)
    _orgs: dict[str, str] = field(default_factory=dict)
    _orgs_loaded: float = 0.0
    _warned: bool = False
    _client: aiomqtt.Client | None = None
    _acks: dict[UUID, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reads: dict[tuple[str, str], list[asyncio.Future[MeterReading]]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _queued: set[UUID] = field(default_factory=set)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    # --- CommandSink -------------------------------------------------------------------------

    def connected_gateways(self) -> set[str]:
        return set(self.online) if self._client is not None else set()

    def submit(self, job: CommandJob, plan: MeterPlan) -> None:
        if job.command_id in self._queued:
            return
        self._queued.add(job.command_id)
        self._spawn(self._execute(job, plan))

    # --- plumbing ------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _plan(self, meter_id: int) -> MeterPlan | None:
        return next((p for p in self.plans if p.meter_id == meter_id), None)

    async def _publish(self, plan: MeterPlan, payload: dict[str, Any]) -> None:
        if self._client is None:
            raise ConnectionError("not connected to the MQTT broker")
        org = self._orgs.get(plan.gateway, "")
        await self._client.publish(topic(org, plan.gateway, "commands"), json.dumps(payload), qos=1)

    async def _request_read(self, plan: MeterPlan) -> MeterReading | None:
        future: asyncio.Future[MeterReading] = asyncio.get_running_loop().create_future()
        key = (plan.gateway, plan.spec.address)
        self._reads.setdefault(key, []).append(future)
        try:
            await self._publish(plan, {"id": None, "address": plan.spec.address, "command": "read"})
            return await asyncio.wait_for(future, self.reply_timeout)
        except (TimeoutError, ConnectionError, aiomqtt.MqttError):
            return None
        finally:
            waiting = self._reads.get(key, [])
            if future in waiting:
                waiting.remove(future)

    async def poll(self, plan: MeterPlan) -> None:
        lock = self._locks.setdefault(plan.meter_id, asyncio.Lock())
        async with lock:
            if await self._request_read(plan) is None:
                await self.store.poll_failed(
                    plan.meter_id, f"no telemetry from {plan.gateway} in time"
                )

    async def _execute(self, job: CommandJob, plan: MeterPlan) -> None:
        lock = self._locks.setdefault(plan.meter_id, asyncio.Lock())
        try:
            async with lock:
                attempt = await self.store.claim(job.command_id)
                if attempt is None:
                    return
                if attempt > 1:
                    before = await self._request_read(plan)
                    if before is not None and supply_of(before) == job.target:
                        return  # the last attempt did act; the reading confirmed it
                ack_future: asyncio.Future[dict[str, Any]] = (
                    asyncio.get_running_loop().create_future()
                )
                self._acks[job.command_id] = ack_future
                ack: dict[str, Any] | None = None
                try:
                    await self._publish(
                        plan,
                        {
                            "id": str(job.command_id),
                            "address": plan.spec.address,
                            "command": job.kind,
                        },
                    )
                    ack = await asyncio.wait_for(ack_future, self.reply_timeout)
                except (TimeoutError, ConnectionError, aiomqtt.MqttError):
                    ack = None
                finally:
                    self._acks.pop(job.command_id, None)
                refused = bool(ack and not ack.get("ok") and ack.get("refused"))
                if ack and ack.get("ok"):
                    await self.store.command_acknowledged(job.command_id, ack.get("state"))
                after = None if refused else await self._request_read(plan)
                if (
                    after is not None and supply_of(after) == job.target
                ) or await self.store.command_is_final(job.command_id):
                    return
                if ack is None:
                    error = "timeout: no acknowledgement over MQTT"
                elif not ack.get("ok"):
                    error = str(ack.get("error") or "refused")
                else:
                    error = "acknowledged, but the meter reports otherwise"
                await self.store.command_not_done(job.command_id, error, refused=refused)
        finally:
            self._queued.discard(job.command_id)

    async def _handle(self, message: aiomqtt.Message) -> None:
        parts = message.topic.value.split("/")
        if len(parts) != 4 or parts[0] != PREFIX:
            return
        _, org, gateway, leaf = parts
        loop = asyncio.get_running_loop()
        if gateway not in self._orgs and loop.time() - self._orgs_loaded > ORGS_RELOAD:
            self._orgs, self._orgs_loaded = (
                await self.store.mqtt_gateways(),
                loop.time(),
            )  # a new gateway?
        if self._orgs.get(gateway) != org:
            log.warning("dropping %s: %s is not a gateway of %s", message.topic.value, gateway, org)
            return
        payload = (
            message.payload
            if isinstance(message.payload, bytes | bytearray)
            else str(message.payload).encode()
        )
        if leaf == "status":
            online = payload.strip() == b"online"
            (self.online.add if online else self.online.discard)(gateway)
            await self.store.mqtt_status(gateway, online)
            return
        try:
            data = json.loads(payload)
        except ValueError:
            log.warning("dropping %s: not JSON", message.topic.value)
            return
        if leaf == "ack" and isinstance(data, dict):
            with contextlib.suppress(ValueError, TypeError):
                future = self._acks.get(UUID(str(data.get("id"))))
                if future is not None and not future.done():
                    future.set_result(data)
        elif leaf == "telemetry" and isinstance(data, dict) and "readings" in data:
            await self._telemetry_batch(gateway, data)
        elif leaf == "telemetry" and isinstance(data, dict):
            try:
                reading = reading_from_json(data)
            except (ValueError, TypeError) as exc:
                log.warning("dropping telemetry from %s: %s", gateway, exc)
                return
            await self.store.reading_pushed(gateway, reading)
            self._answered(gateway, reading)
        elif leaf == "telemetry":
            log.warning("dropping telemetry from %s: not a JSON object", gateway)

    async def _telemetry_batch(self, gateway: str, data: Mapping[str, Any]) -> None:
        try:
            readings, errors = readings_from_json(data)
        except ValueError as exc:
            log.warning("dropping telemetry from %s: %s", gateway, exc)
            return
        for error in errors[:10]:
            log.warning("telemetry from %s: skipping %s", gateway, error)
        if len(errors) > 10:
            log.warning("telemetry from %s: %d more readings skipped", gateway, len(errors) - 10)
        if not readings:
            return
        await self.store.readings_pushed(gateway, readings)
        for reading in readings:
            self._answered(gateway, reading)

    def _answered(self, gateway: str, reading: MeterReading) -> None:
        """Wake the polls and commands waiting for this meter's telemetry."""
        for future in self._reads.pop((gateway, reading.address), []):
            if not future.done():
                future.set_result(reading)

    async def _poll_loop(self) -> None:
        due: dict[int, float] = {}
        loop = asyncio.get_running_loop()
        while True:
            moment = loop.time()
            for plan in self.plans:
                if plan.gateway_kind != "mqtt" or plan.gateway not in self.online:
                    due.pop(plan.meter_id, None)
                    continue
                at = due.setdefault(
                    plan.meter_id, moment + poll_offset(plan.meter_id, plan.poll_every)
                )
                if at <= moment:
                    due[plan.meter_id] = at + plan.poll_every
                    self._spawn(self.poll(plan))
            await asyncio.sleep(0.05)

    async def run(self, plans: Sequence[MeterPlan] = ()) -> None:
        """Connect (again and again), subscribe and dispatch until cancelled."""
        if plans:
            self.plans = list(plans)
        poller = asyncio.create_task(self._poll_loop())
        try:
            while True:
                try:
                    self._orgs = await self.store.mqtt_gateways()
                    self._orgs_loaded = asyncio.get_running_loop().time()
                    async with aiomqtt.Client(
                        self.hostname, self.port, identifier=self.identifier
                    ) as client:
                        for leaf in ("status", "telemetry", "ack"):
                            await client.subscribe(f"{PREFIX}/+/+/{leaf}", qos=1)
                        self._client = client
                        self.connected.set()
                        self._warned = False
                        log.info("MQTT connected to %s:%s", self.hostname, self.port)
                        async for message in client.messages:
                            await self._handle(message)
                except aiomqtt.MqttError as exc:
                    if self.connected.is_set() or not self._warned:  # once per outage
                        log.warning("MQTT %s:%s: %s; retrying", self.hostname, self.port, exc)
                        self._warned = True
                finally:
                    self._client = None
                    self.connected.clear()
                    self.online.clear()
                await asyncio.sleep(self.reconnect_delay)
        finally:
            poller.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(poller, *self._tasks, return_exceptions=True)
