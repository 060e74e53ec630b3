"""One-shot meter access for technicians (behind ``meterpay meter ...``).

Connect to a serial server in TCP-server mode, do one thing, disconnect. Every failure
is a :class:`~meterpay.gateway.errors.GatewayError` with a one-line message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from meterpay.gateway import meters
from meterpay.gateway.errors import GatewayError
from meterpay.gateway.meters import MeterSpec
from meterpay.gateway.readings import Command, ElectricityReading, MeterReading
from meterpay.gateway.transport import DEFAULT_TIMEOUT, BusClient, TcpLink
from meterpay.protocols.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    timeout: float = DEFAULT_TIMEOUT


async def read_async(endpoint: Endpoint, spec: MeterSpec) -> MeterReading:
    link = await TcpLink.connect(endpoint.host, endpoint.port, endpoint.timeout)
    try:
        return await meters.read(BusClient(link, timeout=endpoint.timeout), spec)
    except ProtocolError as exc:  # e.g. an address that cannot be encoded
        raise GatewayError(str(exc)) from None
    finally:
        await link.close()


async def command_async(endpoint: Endpoint, spec: MeterSpec, command: Command) -> str:
    link = await TcpLink.connect(endpoint.host, endpoint.port, endpoint.timeout)
    try:
        return await meters.execute(BusClient(link, timeout=endpoint.timeout), spec, command)
    except ProtocolError as exc:
        raise GatewayError(str(exc)) from None
    finally:
        await link.close()


def read_meter(endpoint: Endpoint, spec: MeterSpec) -> MeterReading:
    """Read one meter; raises :class:`GatewayError`."""
    return asyncio.run(read_async(endpoint, spec))


def run_command(endpoint: Endpoint, spec: MeterSpec, command: Command) -> str:
    """Trip/close a relay or open/close a valve; return the new state."""
    return asyncio.run(command_async(endpoint, spec, command))


def format_reading(reading: MeterReading) -> str:
    """Human-readable multi-line rendering of a reading."""

    def show(value: object, unit: str) -> str:
        return "-" if value is None else f"{value} {unit}".rstrip()

    if isinstance(reading, ElectricityReading):
        energy = reading.energy_kwh
        lines = [
            f"meter          {reading.address} ({reading.protocol.value})",
            f"energy total   {show(energy.total, 'kWh')}",
            f"  sharp        {show(energy.sharp, 'kWh')}",
            f"  peak         {show(energy.peak, 'kWh')}",
            f"  flat         {show(energy.flat, 'kWh')}",
            f"  valley       {show(energy.valley, 'kWh')}",
            f"voltage        {show(reading.voltage_v, 'V')}",
            f"current        {show(reading.current_a, 'A')}",
            f"active power   {show(reading.power_kw, 'kW')}",
            f"power factor   {show(reading.power_factor, '')}",
            f"relay          {show(reading.relay and reading.relay.value, '')}",
        ]
        if reading.remaining_money is not None:
            lines.append(f"remaining      {reading.remaining_money} CNY")
        if reading.purchase_count is not None:
            lines.append(f"purchases      {reading.purchase_count}")
        return "\n".join(lines)
    return "\n".join(
        [
            f"meter          {reading.address} ({reading.protocol.value})",
            f"volume         {reading.volume_m3} m³",
            f"valve          {reading.valve}",
            f"battery        {'low' if reading.battery_low else 'ok'}",
        ]
    )
