"""Virtual meters: state objects plus responders that answer real request frames.

- :class:`VirtualElectricityMeter` — DDSY1352 (single phase) / DTSY1352 (three phase)
  prepaid meter: TOU energy registers, instantaneous values, relay, remaining money and
  purchase count, purchases and refunds (the purchase-count rule); answered by
  :class:`Dlt645Responder` or :class:`ModbusResponder`.
- :class:`VirtualWaterMeter` — CJ/T 188 valve water meter; :class:`Cjt188Responder`.

Consumption accrues lazily: every request first advances the meter to its clock's
"now", integrating the profile in steps of at most 15 simulated minutes and booking
each step to the tariff in force at its start. An open relay or a closed valve stops
consumption; a money-prepaid meter trips itself when the balance reaches zero.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from meterpay.protocols import cjt188, dlt645, modbus_rtu
from meterpay.protocols.errors import ProtocolError
from meterpay.simulate.clock import Clock
from meterpay.simulate.profiles import (
    DEFAULT_TOU,
    OFFICE,
    WATER_HOUSEHOLD,
    ConsumptionProfile,
    TouSchedule,
)

STEP = timedelta(minutes=15)
CENT = Decimal("0.01")


def _floor(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_DOWN)


@dataclass
class VirtualElectricityMeter:
    address: str  # DL/T 645 address, 12 digits
    clock: Clock
    unit_id: int = 1  # Modbus unit id
    model: str = "DDSY1352"  # or "DTSY1352" (three phase)
    profile: ConsumptionProfile = OFFICE
    tou: TouSchedule = DEFAULT_TOU
    tariff_energy: list[Decimal] = field(default_factory=lambda: [Decimal(0)] * 4)
    relay_closed: bool = True
    close_permitted: bool = False
    prepaid: bool = True
    remaining_money: Decimal = Decimal("100.00")
    purchase_count: int = 1
    #: The last purchase record (DL/T 645 0333xx01): amount, remaining before and after.
    last_purchase_amount: Decimal = Decimal(0)
    remaining_before_last_purchase: Decimal = Decimal(0)
    remaining_after_last_purchase: Decimal = Decimal(0)
    price_per_kwh: Decimal = Decimal("0.60")
    password: str = "02000000"
    #: Refuse relay commands whose expiry lies in the meter's past. Turn off when the
    #: clock runs faster than real time, or every command would look expired.
    enforce_command_expiry: bool = True
    voltage: Decimal = Decimal("229.8")
    power_factor: Decimal = Decimal("0.950")
    last_time_sync: datetime | None = None
    #: Tripped by itself for want of credit (not by a command): a purchase closes it again.
    tripped_for_credit: bool = False
    _updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self._updated_at = self.clock.now()  # consumption accrues from creation

    @property
    def three_phase(self) -> bool:
        return self.model.upper().startswith("DTSY")

    @property
    def energy_total(self) -> Decimal:
        return sum(self.tariff_energy, Decimal(0))

    def advance(self) -> None:
        """Accrue consumption up to the clock's now."""
        now = self.clock.now()
        if self._updated_at is None or now <= self._updated_at:
            self._updated_at = now if self._updated_at is None else self._updated_at
            return
        moment = self._updated_at
        while moment < now and self.relay_closed:
            step_end = min(now, moment + STEP)
            hours = Decimal((step_end - moment).total_seconds()) / 3600
            energy = self.profile.demand(moment) * hours
            self.tariff_energy[self.tou.tariff_at(moment)] += energy
            if self.prepaid:
                self.remaining_money -= energy * self.price_per_kwh
                if self.remaining_money <= 0:
                    self.remaining_money = Decimal(0)
                    self.relay_closed = False  # prepaid credit exhausted: trip
                    self.tripped_for_credit = True
            moment = step_end
        self._updated_at = now

    def power_kw(self) -> Decimal:
        return self.profile.demand(self.clock.now()) if self.relay_closed else Decimal("0.0000")

    def current_a(self) -> Decimal:
        """Phase current: P / (phases x V x PF), to 0.001 A (DL/T 645) precision."""
        power = self.power_kw()
        if not power:
            return Decimal("0.000")
        phases = 3 if self.three_phase else 1
        amps = power * 1000 / (phases * self.voltage * self.power_factor)
        return amps.quantize(Decimal("0.001"))

    def trip(self) -> None:
        self.advance()
        self.relay_closed = False
        self.tripped_for_credit = False
        self.close_permitted = False

    def close(self) -> None:
        self.advance()
        self.relay_closed = True

    def press_button(self) -> None:
        """The customer presses the button after a "close permitted" command."""
        if self.close_permitted:
            self.close()
            self.close_permitted = False

    def top_up(self, amount: Decimal) -> None:
        """A purchase made at the meter itself (a card, a local terminal): not the platform's."""
        self.advance()
        self._record_purchase(self.remaining_money + amount)

    def _record_purchase(self, remaining_after: Decimal) -> None:
        before = _floor(self.remaining_money, CENT)
        self.remaining_money = remaining_after
        self.purchase_count += 1
        self.last_purchase_amount = max(_floor(remaining_after, CENT) - before, Decimal(0))
        self.remaining_before_last_purchase = before
        self.remaining_after_last_purchase = _floor(remaining_after, CENT)
        if self.tripped_for_credit and self.remaining_money > 0:
            # a prepaid meter closes again once a purchase brings credit back
            self.relay_closed = True
            self.tripped_for_credit = False

    def credit(self, operation: dlt645.CreditOperation, amount: Decimal, count: int) -> bool:
        """Apply a purchase (add ``amount``) or refund (leave ``amount``) numbered ``count``.

        Only the next purchase number is applied; the current one is answered as done without
        applying it again (a repeated frame). False: refused.
        """
        self.advance()
        if count == self.purchase_count:
            return True
        if count != self.purchase_count + 1:
            return False
        if operation is dlt645.CreditOperation.PURCHASE:
            self._record_purchase(self.remaining_money + amount)
        else:
            if amount > self.remaining_money:
                return False  # a refund never adds money
            self._record_purchase(amount)
        return True

    def energy_registers(self) -> list[Decimal]:
        """Total + tariffs 1-4 as the meter displays them (0.01 kWh, truncated)."""
        registers = [self.energy_total, *self.tariff_energy]
        return [_floor(value, CENT) for value in registers]


@dataclass
class VirtualWaterMeter:
    address: str  # CJ/T 188 address, 14 digits
    clock: Clock
    profile: ConsumptionProfile = WATER_HOUSEHOLD
    di_order: cjt188.DiOrder = cjt188.DiOrder.AS_WRITTEN
    meter_type: int = cjt188.MeterType.COLD_WATER
    volume: Decimal = Decimal(0)
    settlement_volume: Decimal = Decimal(0)
    valve_open: bool = True
    battery_low: bool = False
    _updated_at: datetime | None = None

    def __post_init__(self) -> None:
        self._updated_at = self.clock.now()

    def advance(self) -> None:
        now = self.clock.now()
        if self._updated_at is not None and now > self._updated_at and self.valve_open:
            moment = self._updated_at
            while moment < now:
                step_end = min(now, moment + STEP)
                hours = Decimal((step_end - moment).total_seconds()) / 3600
                self.volume += self.profile.demand(moment) * hours
                moment = step_end
        if self._updated_at is None or now > self._updated_at:
            self._updated_at = now

    def status(self) -> cjt188.MeterStatus:
        valve = cjt188.ValveState.OPEN if self.valve_open else cjt188.ValveState.CLOSED
        return cjt188.MeterStatus(valve, self.battery_low)

    def set_valve(self, open_: bool) -> None:
        self.advance()
        self.valve_open = open_


# ---------------------------------------------------------------------------
# Responders: request frame in, reply frame (or None) out
# ---------------------------------------------------------------------------


class Dlt645Responder:
    protocol = "dlt645"

    def __init__(self, meter: VirtualElectricityMeter) -> None:
        self.meter = meter

    def framer(self) -> dlt645.Dlt645Framer:
        return dlt645.Dlt645Framer()

    def encode(self, frame: dlt645.Dlt645Frame) -> bytes:
        return dlt645.encode_frame(frame)

    def is_command(self, frame: dlt645.Dlt645Frame) -> bool:
        return frame.function in (dlt645.Function.RELAY_CONTROL, dlt645.Function.WRITE)

    def _values(self, di: int) -> list[dlt645.Value] | None:
        meter = self.meter
        energy = meter.energy_registers()
        single = {
            dlt645.TOTAL_ENERGY: energy[0],
            dlt645.TARIFF_ENERGY[0]: energy[1],
            dlt645.TARIFF_ENERGY[1]: energy[2],
            dlt645.TARIFF_ENERGY[2]: energy[3],
            dlt645.TARIFF_ENERGY[3]: energy[4],
            dlt645.VOLTAGE_A: meter.voltage,
            dlt645.CURRENT_A: meter.current_a(),
            dlt645.ACTIVE_POWER_TOTAL: meter.power_kw(),
            dlt645.POWER_FACTOR_TOTAL: meter.power_factor,
            dlt645.REMAINING_MONEY: _floor(meter.remaining_money, CENT),
            dlt645.PURCHASE_COUNT: Decimal(meter.purchase_count),
            dlt645.LAST_PURCHASE_AMOUNT: meter.last_purchase_amount,
            dlt645.REMAINING_BEFORE_LAST_PURCHASE: meter.remaining_before_last_purchase,
            dlt645.REMAINING_AFTER_LAST_PURCHASE: meter.remaining_after_last_purchase,
        }
        if di in single:
            return [single[di]]
        if di == dlt645.ENERGY_BLOCK:
            return list(energy)
        if di == dlt645.STATUS_WORD_3:
            word = 0 if meter.relay_closed else dlt645.STATUS3_RELAY_OPEN
            if not meter.relay_closed:
                word |= dlt645.STATUS3_RELAY_COMMAND_TRIP
            if meter.prepaid:
                word |= dlt645.STATUS3_MONEY_PREPAID
            return [word]
        if meter.three_phase:
            phases: dict[int, list[dlt645.Value]] = {
                dlt645.VOLTAGE_B: [meter.voltage],
                dlt645.VOLTAGE_C: [meter.voltage],
                dlt645.VOLTAGE_BLOCK: [meter.voltage] * 3,
                dlt645.CURRENT_B: [meter.current_a()],
                dlt645.CURRENT_C: [meter.current_a()],
                dlt645.CURRENT_BLOCK: [meter.current_a()] * 3,
            }
            return phases.get(di)
        return None

    def handle(self, frame: dlt645.Dlt645Frame) -> dlt645.Dlt645Frame | None:
        meter = self.meter
        if frame.is_reply:
            return None
        if frame.function == dlt645.Function.BROADCAST_TIME:
            if frame.address == dlt645.BROADCAST_ADDRESS:
                with contextlib.suppress(ProtocolError):
                    meter.last_time_sync = dlt645.parse_time_sync(frame)
            return None
        if frame.address not in (meter.address, dlt645.WILDCARD_ADDRESS):
            return None
        meter.advance()
        if frame.function == dlt645.Function.READ:
            try:
                di = dlt645.requested_di(frame)
                values = self._values(di)
            except ProtocolError:
                values = None
            if values is None:
                return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_NO_DATA)
            return dlt645.read_reply(meter.address, di, values)
        if frame.function == dlt645.Function.RELAY_CONTROL:
            return self._relay(frame)
        if frame.function == dlt645.Function.WRITE:
            return self._credit(frame)
        return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_OTHER)

    def _relay(self, frame: dlt645.Dlt645Frame) -> dlt645.Dlt645Frame:
        meter = self.meter
        try:
            command = dlt645.parse_relay_control(frame)
        except ProtocolError:
            return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_OTHER)
        if command.password != meter.password:
            return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_UNAUTHORISED)
        if meter.enforce_command_expiry and command.expires_at < meter.clock.now():
            return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_OTHER)
        if command.action is dlt645.RelayAction.TRIP:
            meter.trip()
        elif command.action is dlt645.RelayAction.CLOSE:
            meter.close()
        else:
            meter.close_permitted = True
        return dlt645.relay_control_reply(meter.address)

    def _credit(self, frame: dlt645.Dlt645Frame) -> dlt645.Dlt645Frame:
        meter = self.meter
        try:
            write = dlt645.parse_credit_write(frame)
        except ProtocolError:
            return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_OTHER)
        if write.password != meter.password:
            return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_UNAUTHORISED)
        if not meter.prepaid or not meter.credit(
            write.operation, write.amount, write.purchase_count
        ):
            return dlt645.error_reply(meter.address, frame.function, dlt645.ERROR_OTHER)
        return dlt645.write_reply(meter.address)


class ModbusResponder:
    protocol = "modbus"

    def __init__(self, meter: VirtualElectricityMeter) -> None:
        self.meter = meter
        self.map = modbus_rtu.REGISTER_MAPS[meter.model.upper()]

    def framer(self) -> modbus_rtu.ModbusRtuFramer:
        return modbus_rtu.ModbusRtuFramer(server=True)

    def encode(self, frame: modbus_rtu.ModbusRtuFrame) -> bytes:
        return modbus_rtu.encode(frame)

    def is_command(self, frame: modbus_rtu.ModbusRtuFrame) -> bool:
        return frame.function_code == modbus_rtu.WRITE_SINGLE_REGISTER

    def registers(self) -> dict[int, int]:
        meter = self.meter
        energy = meter.energy_registers()
        values: dict[str, Decimal] = dict(zip(modbus_rtu.ENERGY_QUANTITIES, energy, strict=True))
        current = meter.current_a().quantize(Decimal("0.01"))
        power = meter.power_kw().quantize(Decimal("0.001"))
        for phase in "abc":
            values[f"voltage_{phase}"] = meter.voltage
            values[f"current_{phase}"] = current
        values["power"] = power
        values["apparent_power"] = abs(power / meter.power_factor).quantize(Decimal("0.001"))
        values["power_factor"] = meter.power_factor
        image = {address: 0 for address in range(0x0000, 0x0014)}
        for quantity, register in self.map.registers.items():
            for offset, word in enumerate(register.encode(values[quantity])):
                image[register.address + offset] = word
        image[self.map.relay_status] = 0 if meter.relay_closed else 1
        image[self.map.relay_control] = 0
        return image

    def handle(self, frame: modbus_rtu.ModbusRtuFrame) -> modbus_rtu.ModbusRtuFrame | None:
        meter = self.meter
        if frame.unit_id not in (meter.unit_id, 0):
            return None
        meter.advance()
        unit, pdu = meter.unit_id, frame.pdu
        reply: modbus_rtu.ModbusRtuFrame
        if frame.function_code in (
            modbus_rtu.READ_HOLDING_REGISTERS,
            modbus_rtu.READ_INPUT_REGISTERS,
        ):
            image = self.registers()
            wanted = range(pdu.address, pdu.address + pdu.count)
            if any(address not in image for address in wanted):
                reply = modbus_rtu.exception_reply(
                    unit, frame.function_code, modbus_rtu.ILLEGAL_DATA_ADDRESS
                )
            else:
                reply = modbus_rtu.read_registers_reply(unit, [image[a] for a in wanted])
        elif frame.function_code == modbus_rtu.WRITE_SINGLE_REGISTER:
            value = pdu.registers[0]
            if pdu.address != self.map.relay_control:
                reply = modbus_rtu.exception_reply(
                    unit, frame.function_code, modbus_rtu.ILLEGAL_DATA_ADDRESS
                )
            elif value == modbus_rtu.RELAY_TRIP_VALUE:
                meter.trip()
                reply = modbus_rtu.write_register_reply(unit, pdu.address, value)
            elif value == modbus_rtu.RELAY_CLOSE_VALUE:
                meter.close()
                reply = modbus_rtu.write_register_reply(unit, pdu.address, value)
            else:
                reply = modbus_rtu.exception_reply(
                    unit, frame.function_code, modbus_rtu.ILLEGAL_DATA_VALUE
                )
        else:
            reply = modbus_rtu.exception_reply(
                unit, frame.function_code, modbus_rtu.ILLEGAL_FUNCTION
            )
        return None if frame.unit_id == 0 else reply


class Cjt188Responder:
    protocol = "cjt188"

    def __init__(self, meter: VirtualWaterMeter) -> None:
        self.meter = meter

    def framer(self) -> cjt188.Cjt188Framer:
        return cjt188.Cjt188Framer()

    def encode(self, frame: cjt188.Cjt188Frame) -> bytes:
        return cjt188.encode_frame(frame)

    def is_command(self, frame: cjt188.Cjt188Frame) -> bool:
        return frame.function == cjt188.Function.WRITE_DATA

    def handle(self, frame: cjt188.Cjt188Frame) -> cjt188.Cjt188Frame | None:
        meter = self.meter
        if frame.is_reply or frame.address not in (meter.address, cjt188.WILDCARD_ADDRESS):
            return None
        meter.advance()
        serial = frame.data[2] if len(frame.data) >= 3 else 0
        options = {"serial": serial, "meter_type": meter.meter_type}
        try:
            di = cjt188.request_di(frame, meter.di_order)
        except ProtocolError:
            return cjt188.error_reply(meter.address, frame.function, meter.status(), **options)
        if frame.function == cjt188.Function.READ_DATA and di == cjt188.CUMULATIVE_FLOW:
            reading = cjt188.FlowReading(
                volume=_floor(meter.volume, CENT),
                unit=cjt188.UNIT_CUBIC_METRE,
                settlement_volume=_floor(meter.settlement_volume, CENT),
                settlement_unit=cjt188.UNIT_CUBIC_METRE,
                meter_time=meter.clock.now().replace(microsecond=0),
                status=meter.status(),
            )
            return cjt188.read_reply(meter.address, reading, di_order=meter.di_order, **options)
        if frame.function == cjt188.Function.WRITE_DATA and di == cjt188.VALVE_CONTROL:
            try:
                action = cjt188.parse_valve_request(frame, meter.di_order)
            except ProtocolError:
                return cjt188.error_reply(meter.address, frame.function, meter.status(), **options)
            meter.set_valve(action is cjt188.ValveAction.OPEN)
            return cjt188.valve_reply(
                meter.address, meter.status(), di_order=meter.di_order, **options
            )
        return cjt188.error_reply(meter.address, frame.function, meter.status(), **options)
