"""A virtual MQTT IoT gateway: its meters answer ``read`` and relay/valve commands over MQTT.

Speaks the topic scheme of :mod:`meterpay.gateway.mqtt` (``docs/protocols.md``): a retained
``online`` status with an ``offline`` last will, telemetry on request (and every
``telemetry_every`` seconds if set: one message per meter, or, with ``telemetry_batch``, all
meters in messages of up to that many readings, as a gateway that polls its own meters
publishes them), an ack per command id. A command id is carried out once;
a repeat is re-acknowledged without acting again. The device talks to its meters directly
(the frames on its own RS-485 side are not the platform's concern).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import Any

import aiomqtt

from meterpay.gateway.mqtt import reading_to_json, topic
from meterpay.gateway.readings import (
    ElectricityReading,
    EnergyRegisters,
    MeterProtocol,
    MeterReading,
    RelayState,
    WaterReading,
)
from meterpay.simulate.bus import FaultPlan
from meterpay.simulate.meters import VirtualElectricityMeter, VirtualWaterMeter

type VirtualMeter = VirtualElectricityMeter | VirtualWaterMeter
_CENT = Decimal("0.01")


def reading_of(meter: VirtualMeter, protocol: MeterProtocol = MeterProtocol.DLT645) -> MeterReading:
    meter.advance()
    if isinstance(meter, VirtualWaterMeter):
        valve = "open" if meter.valve_open else "closed"
        return WaterReading(
            MeterProtocol.CJT188, meter.address, meter.volume.quantize(_CENT), valve
        )
    registers = meter.energy_registers()
    return ElectricityReading(
        protocol=protocol,
        address=meter.address,
        energy_kwh=EnergyRegisters(*registers),
        power_kw=meter.power_kw(),
        relay=RelayState.CLOSED if meter.relay_closed else RelayState.OPEN,
    )


class VirtualMqttGateway:
    def __init__(
        self,
        org: str,
        identifier: str,
        meters: dict[str, VirtualMeter],
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        faults: FaultPlan | None = None,
        telemetry_every: float | None = None,
        telemetry_batch: int | None = None,
        reconnect_delay: float = 3.0,
    ) -> None:
        self.org = org
        self.identifier = identifier
        self.meters = meters
        self.host = host
        self.port = port
        self.faults = faults or FaultPlan()
        self.telemetry_every = telemetry_every
        self.telemetry_batch = telemetry_batch
        self.published = 0  # readings sent as telemetry
        self.reconnect_delay = reconnect_delay
        self.done: dict[str, str] = {}  # command id -> state after acting
        self.connected = asyncio.Event()
        self._stopping = False

    def _topic(self, leaf: str) -> str:
        return topic(self.org, self.identifier, leaf)

    async def _telemetry(self, client: aiomqtt.Client, address: str) -> None:
        meter = self.meters[address]
        payload = reading_to_json(reading_of(meter))
        await client.publish(self._topic("telemetry"), json.dumps(payload), qos=1)
        self.published += 1

    async def _telemetry_batches(self, client: aiomqtt.Client, size: int) -> None:
        addresses = list(self.meters)
        for start in range(0, len(addresses), size):
            readings = [
                reading_to_json(reading_of(self.meters[address]))
                for address in addresses[start : start + size]
            ]
            payload = json.dumps({"readings": readings})
            await client.publish(self._topic("telemetry"), payload, qos=1)
            self.published += len(readings)

    async def _periodic(self, client: aiomqtt.Client) -> None:
        assert self.telemetry_every is not None
        while True:
            await asyncio.sleep(self.telemetry_every)
            if self.telemetry_batch:
                await self._telemetry_batches(client, self.telemetry_batch)
                continue
            for address in self.meters:
                await self._telemetry(client, address)

    def _act(self, meter: VirtualMeter, command: str) -> str:
        if isinstance(meter, VirtualWaterMeter):
            if command not in ("valve_open", "valve_close"):
                raise ValueError("water meters have a valve, not a relay")
            meter.set_valve(command == "valve_open")
            return "open" if meter.valve_open else "closed"
        if command == "relay_trip":
            meter.trip()
        elif command == "relay_close":
            meter.close()
        else:
            raise ValueError("electricity meters have a relay, not a valve")
        return "closed" if meter.relay_closed else "open"

    async def _handle(self, client: aiomqtt.Client, data: dict[str, Any]) -> None:
        address = str(data.get("address", ""))
        command = str(data.get("command", ""))
        meter = self.meters.get(address)
        if meter is None or self.faults.drops():
            return
        if command == "read":
            await self._telemetry(client, address)
            return
        command_id = str(data.get("id"))
        ack: dict[str, Any] = {"id": command_id}
        if command_id in self.done:  # a repeat: acknowledge again, never act twice
            ack.update(ok=True, state=self.done[command_id])
        else:
            try:
                state = self._act(meter, command)
            except ValueError as exc:
                ack.update(ok=False, refused=True, error=str(exc))
            else:
                self.done[command_id] = state
                ack.update(ok=True, state=state)
                if self.faults.loses_ack():
                    return
        await client.publish(self._topic("ack"), json.dumps(ack), qos=1)

    async def _session(self) -> None:
        will = aiomqtt.Will(self._topic("status"), b"offline", qos=1, retain=True)
        async with aiomqtt.Client(
            self.host, self.port, identifier=f"sim-{self.identifier}", will=will
        ) as client:
            await client.subscribe(self._topic("commands"), qos=1)
            await client.publish(self._topic("status"), b"online", qos=1, retain=True)
            self.connected.set()
            periodic = asyncio.create_task(self._periodic(client)) if self.telemetry_every else None
            try:
                async for message in client.messages:
                    with contextlib.suppress(ValueError, TypeError):
                        data = json.loads(message.payload)  # type: ignore[arg-type]
                        if isinstance(data, dict):
                            await self._handle(client, data)
                    if self._stopping:
                        break
            finally:
                self.connected.clear()
                if periodic is not None:
                    periodic.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await periodic
                if self._stopping:  # a clean goodbye; a crash leaves the will to say it
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.publish(self._topic("status"), b"offline", qos=1, retain=True)

    async def run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._session()
            if self._stopping:
                return
            await asyncio.sleep(self.reconnect_delay)

    def stop(self) -> None:
        self._stopping = True
