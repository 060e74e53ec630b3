"""A fleet of virtual gateways and meters, described as plain data (e.g. from the database).

:func:`build_fleet` turns :class:`GatewaySpec` s into virtual DTUs (TCP, connecting out to the
gateway process), virtual serial servers in TCP-server mode (listening where the gateway process
dials them) and virtual MQTT gateways; :meth:`Fleet.run` runs them all until stopped.
Each meter starts from a plausible register value derived from its address, so the fleet
looks the same on every start, and consumes by the profile of its room kind.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from decimal import Decimal

from meterpay.protocols import cjt188
from meterpay.simulate.bus import FaultPlan, VirtualBus
from meterpay.simulate.clock import Clock
from meterpay.simulate.meters import (
    Cjt188Responder,
    Dlt645Responder,
    ModbusResponder,
    VirtualElectricityMeter,
    VirtualWaterMeter,
)
from meterpay.simulate.mqtt import VirtualMeter, VirtualMqttGateway
from meterpay.simulate.profiles import (
    DORM_ROOM,
    OFFICE,
    PUBLIC_AREA,
    SHOP,
    WATER_HOUSEHOLD,
    ConsumptionProfile,
)
from meterpay.simulate.servers import VirtualDtu, VirtualSerialServer

#: Room kind -> electricity profile; water meters always use WATER_HOUSEHOLD.
PROFILE_BY_ROOM_KIND: dict[str, ConsumptionProfile] = {
    "shop": SHOP,
    "dormitory": DORM_ROOM,
    "office": OFFICE,
    "public_area": PUBLIC_AREA,
}


@dataclass(frozen=True, slots=True)
class MeterSpec:
    address: str
    protocol: str  # dlt645 | modbus | cjt188
    water: bool = False
    model: str = "DDSY1352"
    room_kind: str = "office"
    #: The meter holds the money (a meter-side account): it deducts and trips by itself.
    meter_side: bool = False


@dataclass(frozen=True, slots=True)
class GatewaySpec:
    identifier: str
    kind: str  # dtu_4g | serial_server | mqtt
    protocol: str
    org: str  # organisation slug (MQTT topics)
    meters: tuple[MeterSpec, ...]
    #: A serial server in TCP-server mode listens here and the platform dials it.
    listen: tuple[str, int] | None = None


def profile_for(spec: MeterSpec) -> ConsumptionProfile:
    return WATER_HOUSEHOLD if spec.water else PROFILE_BY_ROOM_KIND.get(spec.room_kind, OFFICE)


def _seed(address: str) -> int:
    return zlib.crc32(address.encode())


def virtual_meter(spec: MeterSpec, clock: Clock, *, fast_clock: bool) -> VirtualMeter:
    seed = _seed(spec.address)
    if spec.water:
        address = cjt188.normalise_address(spec.address)
        meter = VirtualWaterMeter(address, clock, profile_for(spec))
        meter.volume = Decimal(10 + seed % 490) + Decimal(seed % 97) / 100
        return meter
    unit = int(spec.address) if spec.protocol == "modbus" else 1
    model = spec.model if spec.model.upper() in ("DDSY1352", "DTSY1352") else "DDSY1352"
    electricity = VirtualElectricityMeter(
        spec.address.rjust(12, "0"), clock, unit_id=unit, model=model, profile=profile_for(spec)
    )
    base = Decimal(500 + seed % 20000)
    electricity.tariff_energy = [
        base * share for share in (Decimal("0.1"), Decimal("0.3"), Decimal("0.35"), Decimal("0.25"))
    ]
    # Platform side: the platform bills and the meter must not trip itself. Meter side: a new
    # meter with no money and no purchases, waiting for the platform's credit downloads.
    electricity.prepaid = spec.meter_side
    if spec.meter_side:
        electricity.remaining_money = Decimal("0.00")
        electricity.purchase_count = 0
    electricity.enforce_command_expiry = not fast_clock
    return electricity


@dataclass
class Fleet:
    dtus: list[VirtualDtu] = field(default_factory=list)
    mqtt: list[VirtualMqttGateway] = field(default_factory=list)
    serial_servers: list[VirtualSerialServer] = field(default_factory=list)
    meters: dict[tuple[str, str], VirtualMeter] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    async def run(self) -> None:
        await asyncio.gather(
            *(d.run() for d in self.dtus),
            *(g.run() for g in self.mqtt),
            *(s.run() for s in self.serial_servers),
        )

    def stop(self) -> None:
        for dtu in self.dtus:
            dtu.stop()
        for server in self.serial_servers:
            server.close()
        for gateway in self.mqtt:
            gateway.stop()


def build_fleet(
    gateways: list[GatewaySpec],
    clock: Clock,
    *,
    connect: tuple[str, int],
    mqtt: tuple[str, int] | None,
    faults: FaultPlan | None = None,
    heartbeat: float = 60.0,
    fast_clock: bool = False,
    reconnect_delay: float = 5.0,
) -> Fleet:
    fleet = Fleet()
    for gateway in gateways:
        # one bus speaks one protocol: meters of another protocol are left out, and said so
        meters = [m for m in gateway.meters if m.protocol == gateway.protocol]
        fleet.skipped += [
            f"{gateway.identifier}/{m.address}" for m in gateway.meters if m not in meters
        ]
        if not meters:
            continue
        virtual = {m.address: virtual_meter(m, clock, fast_clock=fast_clock) for m in meters}
        for address, meter in virtual.items():
            fleet.meters[(gateway.identifier, address)] = meter
        if gateway.kind == "mqtt":
            if mqtt is None:
                fleet.skipped.append(gateway.identifier)
                continue
            by_address = {meter.address: meter for meter in virtual.values()}
            fleet.mqtt.append(
                VirtualMqttGateway(
                    gateway.org,
                    gateway.identifier,
                    by_address,
                    host=mqtt[0],
                    port=mqtt[1],
                    faults=faults,
                    reconnect_delay=reconnect_delay,
                )
            )
            continue
        responders: list[Dlt645Responder | ModbusResponder | Cjt188Responder] = []
        for meter in virtual.values():
            if isinstance(meter, VirtualWaterMeter):
                responders.append(Cjt188Responder(meter))
            elif gateway.protocol == "modbus":
                responders.append(ModbusResponder(meter))
            else:
                responders.append(Dlt645Responder(meter))
        if gateway.kind == "serial_server" and gateway.listen is not None:
            fleet.serial_servers.append(
                VirtualSerialServer(
                    VirtualBus(responders),
                    faults=faults,
                    host=gateway.listen[0],
                    port=gateway.listen[1],
                )
            )
            continue
        fleet.dtus.append(
            VirtualDtu(
                gateway.identifier,
                VirtualBus(responders),
                connect[0],
                connect[1],
                heartbeat_interval=heartbeat,
                faults=faults or FaultPlan(),
                reconnect_delay=reconnect_delay,
            )
        )
    return fleet
