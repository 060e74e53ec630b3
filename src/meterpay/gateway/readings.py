"""What the gateway reports: readings and command results (plain data, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class MeterProtocol(StrEnum):
    DLT645 = "dlt645"
    MODBUS = "modbus"
    CJT188 = "cjt188"


class RelayState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class EnergyRegisters:
    """Forward active energy in kWh; ``None`` where the meter does not offer a tariff."""

    total: Decimal | None = None
    sharp: Decimal | None = None
    peak: Decimal | None = None
    flat: Decimal | None = None
    valley: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ElectricityReading:
    protocol: MeterProtocol
    address: str
    energy_kwh: EnergyRegisters
    voltage_v: Decimal | None = None
    current_a: Decimal | None = None
    power_kw: Decimal | None = None
    power_factor: Decimal | None = None
    relay: RelayState | None = None
    remaining_money: Decimal | None = None
    purchase_count: int | None = None
    read_at: datetime = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        """The commissioning CLI's JSON shape (numbers as decimal strings)."""
        energy = self.energy_kwh
        return {
            "address": self.address,
            "energy_kwh": {
                "total": _text(energy.total),
                "sharp": _text(energy.sharp),
                "peak": _text(energy.peak),
                "flat": _text(energy.flat),
                "valley": _text(energy.valley),
            },
            "voltage_v": _text(self.voltage_v),
            "current_a": _text(self.current_a),
            "power_kw": _text(self.power_kw),
            "relay": None if self.relay is None else self.relay.value,
        }


@dataclass(frozen=True, slots=True)
class WaterReading:
    protocol: MeterProtocol
    address: str
    volume_m3: Decimal
    valve: str  # "open" | "closed" | "abnormal"
    battery_low: bool = False
    read_at: datetime = field(default_factory=_now)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "volume_m3": str(self.volume_m3), "valve": self.valve}


type MeterReading = ElectricityReading | WaterReading


@dataclass(frozen=True, slots=True)
class PurchaseState:
    """A prepaid meter's purchase count, remaining money and last purchase record (CNY)."""

    purchase_count: int
    remaining_money: Decimal | None
    remaining_before_last_purchase: Decimal | None
    remaining_after_last_purchase: Decimal | None
    read_at: datetime = field(default_factory=_now)


class Command(StrEnum):
    RELAY_TRIP = "relay_trip"
    RELAY_CLOSE = "relay_close"
    VALVE_OPEN = "valve_open"
    VALVE_CLOSE = "valve_close"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Outcome of a relay/valve command.

    ``acknowledged`` is ``False`` when the meter refused or did not answer; ``error``
    then says why. A missing acknowledgement does not prove the command failed (the
    meter may have acted and lost its reply): read the meter to reconcile.
    """

    protocol: MeterProtocol
    address: str
    command: Command
    acknowledged: bool
    state: str | None = None  # relay/valve state reported with or after the ack
    error: str | None = None
    at: datetime = field(default_factory=_now)
