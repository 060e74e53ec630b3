"""Meter drivers: one per protocol, all speaking through a :class:`BusClient`.

Each driver knows how to read a meter into a reading and how to switch its relay or
valve; it does not know whether the bus is behind a serial server or a DTU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from meterpay.gateway.errors import CommandRejected, MeterProtocolError
from meterpay.gateway.readings import (
    Command,
    ElectricityReading,
    EnergyRegisters,
    MeterProtocol,
    PurchaseState,
    RelayState,
    WaterReading,
)
from meterpay.gateway.transport import BusClient
from meterpay.protocols import cjt188, dlt645, modbus_rtu
from meterpay.protocols.errors import ExceptionReply, ProtocolError


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """How to talk to one meter on a bus."""

    protocol: MeterProtocol
    address: str  # DL/T 645: 12 digits; CJ/T 188: 14 digits; Modbus: unit id
    model: str = "DDSY1352"  # Modbus register map (DDSY1352 / DTSY1352)
    di_order: cjt188.DiOrder = cjt188.DiOrder.AS_WRITTEN
    meter_type: int = cjt188.MeterType.COLD_WATER
    password: str = "02000000"  # DL/T 645 relay control: level 02, password 000000
    operator_code: str = "00000000"


def _decimal(value: dlt645.Value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


class Dlt645Meter:
    def __init__(self, bus: BusClient, spec: MeterSpec) -> None:
        self.bus = bus
        self.spec = spec
        self.address = dlt645.normalise_address(spec.address)

    async def read_di(self, di: int) -> tuple[dlt645.Value, ...] | None:
        """Values of one DI, or ``None`` if the meter answers "no data requested"."""
        request = dlt645.encode_frame(dlt645.read_request(self.address, di))
        reply = await self.bus.transact(
            request,
            dlt645.Dlt645Framer(),
            lambda f: (
                f.is_reply and f.function == dlt645.Function.READ and f.address == self.address
            ),
        )
        try:
            return dlt645.parse_read_reply(reply, di)
        except ExceptionReply as exc:
            if exc.code & (dlt645.ERROR_NO_DATA | dlt645.ERROR_OTHER):
                return None
            raise CommandRejected(str(exc)) from None
        except ProtocolError as exc:
            raise MeterProtocolError(str(exc)) from None

    async def _one(self, di: int) -> Decimal | None:
        values = await self.read_di(di)
        return None if values is None else _decimal(values[0])

    async def read(self) -> ElectricityReading:
        block = await self.read_di(dlt645.ENERGY_BLOCK)
        energy: list[Decimal | None]
        if block is not None:
            energy = [_decimal(v) for v in block]
        else:  # meters without block reads answer each register separately
            energy = [await self._one(dlt645.TOTAL_ENERGY)]
            energy += [await self._one(di) for di in dlt645.TARIFF_ENERGY]
        status = await self.read_di(dlt645.STATUS_WORD_3)
        relay = None
        if status is not None:
            open_ = int(status[0]) & dlt645.STATUS3_RELAY_OPEN
            relay = RelayState.OPEN if open_ else RelayState.CLOSED
        count = await self._one(dlt645.PURCHASE_COUNT)
        return ElectricityReading(
            protocol=MeterProtocol.DLT645,
            address=self.address,
            energy_kwh=EnergyRegisters(*energy),
            voltage_v=await self._one(dlt645.VOLTAGE_A),
            current_a=await self._one(dlt645.CURRENT_A),
            power_kw=await self._one(dlt645.ACTIVE_POWER_TOTAL),
            power_factor=await self._one(dlt645.POWER_FACTOR_TOTAL),
            relay=relay,
            remaining_money=await self._one(dlt645.REMAINING_MONEY),
            purchase_count=None if count is None else int(count),
        )

    async def set_relay(
        self, command: Command, *, valid_for: timedelta = timedelta(minutes=10)
    ) -> RelayState:
        action = {
            Command.RELAY_TRIP: dlt645.RelayAction.TRIP,
            Command.RELAY_CLOSE: dlt645.RelayAction.CLOSE,
        }[command]
        request = dlt645.relay_control_request(
            self.address,
            action,
            password=self.spec.password,
            operator_code=self.spec.operator_code,
            expires_at=datetime.now().replace(microsecond=0) + valid_for,  # meter local time
        )
        await self._command(request, dlt645.parse_relay_control_reply)
        return RelayState.OPEN if command is Command.RELAY_TRIP else RelayState.CLOSED

    async def read_purchase_state(self) -> PurchaseState:
        """Purchase count, remaining money and the last purchase record."""
        count = await self._one(dlt645.PURCHASE_COUNT)
        if count is None:
            raise MeterProtocolError("the meter reports no purchase count: not a prepaid meter")
        return PurchaseState(
            purchase_count=int(count),
            remaining_money=await self._one(dlt645.REMAINING_MONEY),
            remaining_before_last_purchase=await self._one(dlt645.REMAINING_BEFORE_LAST_PURCHASE),
            remaining_after_last_purchase=await self._one(dlt645.REMAINING_AFTER_LAST_PURCHASE),
        )

    async def write_credit(
        self, operation: dlt645.CreditOperation, amount: Decimal, purchase_count: int
    ) -> None:
        """Send a purchase or refund; :class:`CommandRejected` if the meter refuses it."""
        request = dlt645.credit_write_request(
            self.address,
            operation,
            amount=amount,
            purchase_count=purchase_count,
            password=self.spec.password,
            operator_code=self.spec.operator_code,
        )
        await self._command(request, dlt645.parse_write_reply)

    async def _command(
        self, request: dlt645.Dlt645Frame, parse_reply: Callable[[dlt645.Dlt645Frame], object]
    ) -> None:
        """Send a command frame and take the meter's reply to it: a refusal (an exception
        reply) raises :class:`CommandRejected`."""
        reply = await self.bus.transact(
            dlt645.encode_frame(request),
            dlt645.Dlt645Framer(),
            lambda f: f.is_reply and f.function == request.function and f.address == self.address,
        )
        try:
            parse_reply(reply)
        except ExceptionReply as exc:
            raise CommandRejected(str(exc)) from None

    async def sync_time(self, moment: datetime) -> None:
        """Broadcast the time to every meter on the bus (no reply)."""
        await self.bus.send_only(dlt645.encode_frame(dlt645.time_sync_broadcast(moment)))


class ModbusMeter:
    def __init__(self, bus: BusClient, spec: MeterSpec) -> None:
        self.bus = bus
        self.spec = spec
        try:
            self.unit_id = int(spec.address)
        except ValueError:
            raise MeterProtocolError(
                f"Modbus unit id must be a number, got {spec.address!r}"
            ) from None
        if not 1 <= self.unit_id <= 247:
            raise MeterProtocolError(f"Modbus unit id must be 1..247, got {self.unit_id}")
        try:
            self.map = modbus_rtu.REGISTER_MAPS[spec.model.upper()]
        except KeyError:
            raise MeterProtocolError(f"no Modbus register map for model {spec.model!r}") from None

    async def _exchange(self, request: modbus_rtu.ModbusRtuFrame) -> modbus_rtu.ModbusRtuFrame:
        function = request.function_code
        return await self.bus.transact(
            modbus_rtu.encode(request),
            modbus_rtu.ModbusRtuFramer(expected_unit=self.unit_id),
            lambda f: f.unit_id == self.unit_id and f.function_code & 0x7F == function,
        )

    async def read_registers(self, address: int, count: int) -> list[int]:
        reply = await self._exchange(
            modbus_rtu.read_registers_request(self.unit_id, address, count)
        )
        try:
            return modbus_rtu.parse_read_registers_reply(reply, self.unit_id, count)
        except ExceptionReply as exc:
            raise CommandRejected(str(exc)) from None
        except ProtocolError as exc:
            raise MeterProtocolError(str(exc)) from None

    async def read(self) -> ElectricityReading:
        first, count = self.map.span()
        block = await self.read_registers(first, count)
        (status,) = await self.read_registers(self.map.relay_status, 1)

        def value(quantity: str) -> Decimal | None:
            if quantity not in self.map.registers:
                return None
            return self.map.value_from_block(quantity, first, block)

        return ElectricityReading(
            protocol=MeterProtocol.MODBUS,
            address=str(self.unit_id),
            energy_kwh=EnergyRegisters(*(value(q) for q in modbus_rtu.ENERGY_QUANTITIES)),
            voltage_v=value("voltage_a"),
            current_a=value("current_a"),
            power_kw=value("power"),
            power_factor=value("power_factor"),
            relay=RelayState.OPEN if status else RelayState.CLOSED,
        )

    async def set_relay(self, command: Command) -> RelayState:
        trip = command is Command.RELAY_TRIP
        code = modbus_rtu.RELAY_TRIP_VALUE if trip else modbus_rtu.RELAY_CLOSE_VALUE
        request = modbus_rtu.write_register_request(self.unit_id, self.map.relay_control, code)
        reply = await self._exchange(request)
        try:
            modbus_rtu.parse_write_register_reply(reply, self.unit_id, self.map.relay_control, code)
        except ExceptionReply as exc:
            raise CommandRejected(str(exc)) from None
        except ProtocolError as exc:
            raise MeterProtocolError(str(exc)) from None
        return RelayState.OPEN if trip else RelayState.CLOSED


class Cjt188Meter:
    def __init__(self, bus: BusClient, spec: MeterSpec) -> None:
        self.bus = bus
        self.spec = spec
        self.address = cjt188.normalise_address(spec.address)
        self._serial = 0

    def _next_serial(self) -> int:
        self._serial = (self._serial + 1) & 0xFF
        return self._serial

    async def _exchange(self, request: cjt188.Cjt188Frame) -> cjt188.Cjt188Frame:
        return await self.bus.transact(
            cjt188.encode_frame(request),
            cjt188.Cjt188Framer(),
            lambda f: f.is_reply and f.function == request.function and f.address == self.address,
        )

    async def read(self) -> WaterReading:
        serial = self._next_serial()
        order = self.spec.di_order
        request = cjt188.read_request(
            self.address, serial=serial, meter_type=self.spec.meter_type, di_order=order
        )
        reply = await self._exchange(request)
        try:
            reading = cjt188.parse_read_reply(reply, serial=serial, di_order=order)
            volume = reading.volume_m3
        except ExceptionReply as exc:
            raise CommandRejected(str(exc)) from None
        except ProtocolError as exc:
            raise MeterProtocolError(str(exc)) from None
        return WaterReading(
            protocol=MeterProtocol.CJT188,
            address=self.address,
            volume_m3=volume,
            valve=reading.status.valve.value,
            battery_low=reading.status.battery_low,
        )

    async def set_valve(self, command: Command) -> str:
        action = {
            Command.VALVE_OPEN: cjt188.ValveAction.OPEN,
            Command.VALVE_CLOSE: cjt188.ValveAction.CLOSE,
        }[command]
        serial = self._next_serial()
        order = self.spec.di_order
        request = cjt188.valve_request(
            self.address, action, serial=serial, meter_type=self.spec.meter_type, di_order=order
        )
        reply = await self._exchange(request)
        try:
            status = cjt188.parse_valve_reply(reply, serial=serial, di_order=order)
        except ExceptionReply as exc:
            raise CommandRejected(str(exc)) from None
        except ProtocolError as exc:
            raise MeterProtocolError(str(exc)) from None
        return status.valve.value


type MeterDriver = Dlt645Meter | ModbusMeter | Cjt188Meter


def driver_for(bus: BusClient, spec: MeterSpec) -> MeterDriver:
    if spec.protocol is MeterProtocol.DLT645:
        return Dlt645Meter(bus, spec)
    if spec.protocol is MeterProtocol.MODBUS:
        return ModbusMeter(bus, spec)
    return Cjt188Meter(bus, spec)


async def read(bus: BusClient, spec: MeterSpec) -> ElectricityReading | WaterReading:
    return await driver_for(bus, spec).read()


async def execute(bus: BusClient, spec: MeterSpec, command: Command) -> str:
    """Run a relay/valve command; return the resulting state ("open"/"closed")."""
    driver = driver_for(bus, spec)
    if isinstance(driver, Cjt188Meter):
        if command not in (Command.VALVE_OPEN, Command.VALVE_CLOSE):
            raise MeterProtocolError("water meters have a valve, not a relay")
        return await driver.set_valve(command)
    if command not in (Command.RELAY_TRIP, Command.RELAY_CLOSE):
        raise MeterProtocolError("electricity meters have a relay, not a valve")
    return (await driver.set_relay(command)).value


#: Credit command kinds (the control app's names) and the DL/T 645 write that carries them.
CREDIT_OPERATIONS = {
    "credit_download": dlt645.CreditOperation.PURCHASE,
    "credit_refund": dlt645.CreditOperation.REFUND,
}


def _prepaid(bus: BusClient, spec: MeterSpec) -> Dlt645Meter:
    if spec.protocol is not MeterProtocol.DLT645:
        raise MeterProtocolError("credit goes to DL/T 645 prepaid meters only")
    return Dlt645Meter(bus, spec)


async def read_purchase_state(bus: BusClient, spec: MeterSpec) -> PurchaseState:
    return await _prepaid(bus, spec).read_purchase_state()


async def write_credit(
    bus: BusClient, spec: MeterSpec, kind: str, amount_minor: int, purchase_count: int
) -> None:
    """Send a credit download (``amount_minor`` fen added) or refund (left on the meter)."""
    await _prepaid(bus, spec).write_credit(
        CREDIT_OPERATIONS[kind], Decimal(amount_minor).scaleb(-2), purchase_count
    )
