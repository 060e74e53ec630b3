"""CJ/T 188-2004 water (and heat/gas) meter protocol (framer, registry, messages).

Frame layout::

    FE FE ..  68  T  A0 A1 A2 A3 A4 A5 A6  C  L  DATA[L]  CS  16
    └ wake ┘  │   │  └ address, BCD ┘      │  │           │   └ end
              │   meter type (0x10 cold    │  length      sum of 68 .. DATA, mod 256
              start  water, 0x11 hot ...)  control

The address is printed most significant first (``A6 .. A0``: A6 A5 are the
manufacturer code) and sent A0 first, so ``12345678901234`` travels as
``34 12 90 78 56 34 12``. ``AAAAAAAAAAAAAA`` is the wildcard. There is no +0x33 offset.

Control byte C: bit 7 = reply, bit 6 = abnormal reply, bits 5-0 = function
(0x01 read data, 0x04 write data). So 0x81 / 0x84 are normal replies, 0xC1 / 0xC4
abnormal ones.

DATA starts with the data identifier (2 bytes) and a serial number SER that the reply
echoes. The standard writes the cumulative flow identifier as ``901F``; meters disagree
about the wire order (``90 1F`` or ``1F 90``), so every message function takes a
:class:`DiOrder` chosen per meter model.

Read current data (C = 0x01, DI 901F)::

    request  DATA = DI DI SER                                              (L = 0x03)
    reply    DATA = DI DI SER  flow(4) unit  settlement flow(4) unit       (L = 0x16)
                    real time ss mm hh DD MM YYYY(2, low byte first)  ST0 ST1

Flows are BCD XXXXXX.XX, least significant byte first, in the unit given by the unit
code (0x2C = m³, 0x29 = L, ...).

Valve control (C = 0x04, DI A017)::

    request  DATA = DI DI SER  0x55 (open) | 0x99 (close)                  (L = 0x04)
    reply    DATA = DI DI SER  ST0 ST1                                     (L = 0x05)

Abnormal reply (C = 0xC1 / 0xC4): DATA = SER ST0 ST1 (L = 0x03).

ST0 bits 1-0: valve (00 open, 01 closed, 11 abnormal); bit 2: battery low.
ST1 is manufacturer specific and kept as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Final

from meterpay.protocols.bcd import bcd_byte, bcd_byte_value, decode_decimal, encode_decimal
from meterpay.protocols.errors import (
    ChecksumError,
    EncodeError,
    ExceptionReply,
    FrameError,
    TruncatedFrame,
    UnexpectedReply,
    UnknownDataIdentifier,
)
from meterpay.protocols.framing import StreamFramer

START: Final = 0x68
END: Final = 0x16
PREAMBLE: Final = 0xFE
MAX_DATA_LENGTH: Final = 200
WILDCARD_ADDRESS: Final = "AAAAAAAAAAAAAA"

REPLY_BIT: Final = 0x80
ERROR_BIT: Final = 0x40
FUNCTION_MASK: Final = 0x3F


class MeterType(IntEnum):
    COLD_WATER = 0x10
    HOT_WATER = 0x11
    DRINKING_WATER = 0x12
    RECLAIMED_WATER = 0x13
    HEAT_METER_HEAT = 0x20
    HEAT_METER_COOLING = 0x21
    GAS = 0x30
    ELECTRICITY = 0x40


class Function(IntEnum):
    READ_DATA = 0x01
    READ_ADDRESS = 0x03
    WRITE_DATA = 0x04


class DiOrder(Enum):
    """Wire order of the two data identifier bytes."""

    #: ``90 1F`` as written in the standard (the default).
    AS_WRITTEN = "as-written"
    #: ``1F 90``: low byte first, as some vendors send it.
    SWAPPED = "swapped"


CUMULATIVE_FLOW: Final = 0x901F
VALVE_CONTROL: Final = 0xA017

#: Data identifiers meterpay speaks, with the DATA length of their normal reply.
REGISTRY: Final[dict[int, tuple[str, int]]] = {
    CUMULATIVE_FLOW: ("current cumulative flow", 0x16),
    VALVE_CONTROL: ("valve control", 0x05),
}

#: Unit codes (flows, volumes and energies).
UNIT_CODES: Final[dict[int, str]] = {
    0x02: "Wh",
    0x05: "kWh",
    0x08: "MWh",
    0x0A: "MWh x100",
    0x01: "J",
    0x0B: "kJ",
    0x0E: "MJ",
    0x11: "GJ",
    0x13: "GJ x100",
    0x14: "W",
    0x17: "kW",
    0x1A: "MW",
    0x29: "L",
    0x2C: "m³",
    0x32: "L/h",
    0x35: "m³/h",
}
UNIT_LITRE: Final = 0x29
UNIT_CUBIC_METRE: Final = 0x2C

VALVE_OPEN_COMMAND: Final = 0x55
VALVE_CLOSE_COMMAND: Final = 0x99


class ValveState(Enum):
    OPEN = "open"
    CLOSED = "closed"
    ABNORMAL = "abnormal"


@dataclass(frozen=True, slots=True)
class MeterStatus:
    """ST0/ST1: valve state, battery flag and the vendor byte."""

    valve: ValveState = ValveState.OPEN
    battery_low: bool = False
    vendor: int = 0

    def encode(self) -> bytes:
        valve_bits = {ValveState.OPEN: 0b00, ValveState.CLOSED: 0b01, ValveState.ABNORMAL: 0b11}
        st0 = valve_bits[self.valve] | (0b100 if self.battery_low else 0)
        return bytes([st0, self.vendor & 0xFF])

    @classmethod
    def decode(cls, data: bytes) -> MeterStatus:
        if len(data) != 2:
            raise FrameError("status needs two bytes")
        bits = data[0] & 0b11
        valve = {0b00: ValveState.OPEN, 0b01: ValveState.CLOSED}.get(bits, ValveState.ABNORMAL)
        return cls(valve, bool(data[0] & 0b100), data[1])


def volume_in_cubic_metres(value: Decimal, unit: int) -> Decimal:
    if unit == UNIT_CUBIC_METRE:
        return value
    if unit == UNIT_LITRE:
        return value / 1000
    raise UnknownDataIdentifier(unit, "CJ/T 188 volume unit")


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cjt188Frame:
    meter_type: int
    address: str
    control: int
    data: bytes = b""

    @property
    def function(self) -> int:
        return self.control & FUNCTION_MASK

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY_BIT)

    @property
    def is_error(self) -> bool:
        return bool(self.control & ERROR_BIT)


def normalise_address(address: str | int) -> str:
    """Left-pad a meter number to 14 digits (``"1"`` → ``00000000000001``)."""
    text = str(address).strip().upper()
    if not text or len(text) > 14 or any(c not in "0123456789ABCDEF" for c in text):
        raise EncodeError(f"not a CJ/T 188 meter address: {address!r}")
    return text.rjust(14, "0")


def _address_to_wire(address: str) -> bytes:
    if len(address) != 14:
        raise EncodeError(f"CJ/T 188 address must have 14 digits, got {address!r}")
    try:
        return bytes.fromhex(address)[::-1]
    except ValueError:
        raise EncodeError(f"CJ/T 188 address must be hex/BCD digits: {address!r}") from None


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def encode_frame(frame: Cjt188Frame, *, preamble: int = 2) -> bytes:
    if not 0 <= frame.meter_type <= 0xFF or not 0 <= frame.control <= 0xFF:
        raise EncodeError("meter type and control must be bytes")
    if len(frame.data) > MAX_DATA_LENGTH:
        raise EncodeError(f"CJ/T 188 data too long: {len(frame.data)} bytes")
    body = bytes([START, frame.meter_type]) + _address_to_wire(frame.address)
    body += bytes([frame.control, len(frame.data)]) + frame.data
    return bytes([PREAMBLE] * preamble) + body + bytes([checksum(body), END])


def _plausible_type(meter_type: int) -> bool:
    return 0x10 <= meter_type <= 0x49 and meter_type & 0x0F <= 9


class Cjt188Framer(StreamFramer[Cjt188Frame]):
    """Stream framer for CJ/T 188 (see the module docstring for the layout)."""

    def _find_start(self, buffer: bytearray) -> int | None:
        index = buffer.find(START)
        return None if index < 0 else index

    def _decode_at(self, data: bytes) -> tuple[int, Cjt188Frame]:
        if len(data) >= 2 and not _plausible_type(data[1]):
            raise FrameError(f"implausible meter type {data[1]:#04x}")
        if len(data) < 11:
            raise TruncatedFrame("header incomplete")
        length = data[10]
        if length > MAX_DATA_LENGTH:
            raise FrameError(f"length {length} exceeds {MAX_DATA_LENGTH}")
        total = 13 + length
        if len(data) < total:
            raise TruncatedFrame(f"need {total} bytes, have {len(data)}")
        if data[total - 1] != END:
            raise FrameError("end byte 0x16 missing")
        expected = checksum(data[: total - 2])
        if data[total - 2] != expected:
            raise ChecksumError("CJ/T 188 checksum", expected=expected, actual=data[total - 2])
        address = data[2:9][::-1].hex().upper()
        return total, Cjt188Frame(data[1], address, data[9], data[11 : 11 + length])


def decode_frame(data: bytes) -> Cjt188Frame:
    """Decode exactly one frame from ``data`` (preamble and trailing garbage allowed)."""
    framer = Cjt188Framer()
    framer.feed(data)
    frame = framer.next_frame()
    if frame is None:
        raise TruncatedFrame("no complete CJ/T 188 frame")
    return frame


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


def di_to_wire(di: int, order: DiOrder) -> bytes:
    raw = di.to_bytes(2, "big")
    return raw if order is DiOrder.AS_WRITTEN else raw[::-1]


def di_from_wire(data: bytes, order: DiOrder) -> int:
    if len(data) < 2:
        raise FrameError("data identifier missing")
    raw = data[:2] if order is DiOrder.AS_WRITTEN else data[1::-1]
    return int.from_bytes(raw, "big")


def _bcd_time(moment: datetime) -> bytes:
    parts = (moment.second, moment.minute, moment.hour, moment.day, moment.month)
    return bytes(bcd_byte(p) for p in parts) + bytes(
        [bcd_byte(moment.year % 100), bcd_byte(moment.year // 100)]
    )


def _time_from_bcd(data: bytes) -> datetime:
    second, minute, hour, day, month, year_low, year_high = (bcd_byte_value(b) for b in data)
    try:
        return datetime(year_high * 100 + year_low, month, day, hour, minute, second)  # meter local
    except ValueError as exc:
        raise FrameError(f"invalid meter time: {exc}") from None


@dataclass(frozen=True, slots=True)
class FlowReading:
    """A decoded DI 901F reply."""

    volume: Decimal
    unit: int
    settlement_volume: Decimal
    settlement_unit: int
    meter_time: datetime
    status: MeterStatus

    @property
    def volume_m3(self) -> Decimal:
        return volume_in_cubic_metres(self.volume, self.unit)


def read_request(
    address: str,
    *,
    serial: int = 0,
    meter_type: int = MeterType.COLD_WATER,
    di_order: DiOrder = DiOrder.AS_WRITTEN,
) -> Cjt188Frame:
    """Read current cumulative flow (C = 0x01, DI 901F)."""
    data = di_to_wire(CUMULATIVE_FLOW, di_order) + bytes([serial & 0xFF])
    return Cjt188Frame(meter_type, address, Function.READ_DATA, data)


def read_reply(
    address: str,
    reading: FlowReading,
    *,
    serial: int = 0,
    meter_type: int = MeterType.COLD_WATER,
    di_order: DiOrder = DiOrder.AS_WRITTEN,
) -> Cjt188Frame:
    data = (
        di_to_wire(CUMULATIVE_FLOW, di_order)
        + bytes([serial & 0xFF])
        + encode_decimal(reading.volume, 4, 2)
        + bytes([reading.unit])
        + encode_decimal(reading.settlement_volume, 4, 2)
        + bytes([reading.settlement_unit])
        + _bcd_time(reading.meter_time)
        + reading.status.encode()
    )
    return Cjt188Frame(meter_type, address, REPLY_BIT | Function.READ_DATA, data)


class ValveAction(IntEnum):
    OPEN = VALVE_OPEN_COMMAND
    CLOSE = VALVE_CLOSE_COMMAND


def valve_request(
    address: str,
    action: ValveAction,
    *,
    serial: int = 0,
    meter_type: int = MeterType.COLD_WATER,
    di_order: DiOrder = DiOrder.AS_WRITTEN,
) -> Cjt188Frame:
    data = di_to_wire(VALVE_CONTROL, di_order) + bytes([serial & 0xFF, action])
    return Cjt188Frame(meter_type, address, Function.WRITE_DATA, data)


def valve_reply(
    address: str,
    status: MeterStatus,
    *,
    serial: int = 0,
    meter_type: int = MeterType.COLD_WATER,
    di_order: DiOrder = DiOrder.AS_WRITTEN,
) -> Cjt188Frame:
    data = di_to_wire(VALVE_CONTROL, di_order) + bytes([serial & 0xFF]) + status.encode()
    return Cjt188Frame(meter_type, address, REPLY_BIT | Function.WRITE_DATA, data)


def error_reply(
    address: str,
    function: int,
    status: MeterStatus,
    *,
    serial: int = 0,
    meter_type: int = MeterType.COLD_WATER,
) -> Cjt188Frame:
    data = bytes([serial & 0xFF]) + status.encode()
    return Cjt188Frame(meter_type, address, REPLY_BIT | ERROR_BIT | function, data)


def request_di(frame: Cjt188Frame, di_order: DiOrder) -> int:
    """The data identifier of a request, checked against the registry."""
    di = di_from_wire(frame.data, di_order)
    if di not in REGISTRY:
        raise UnknownDataIdentifier(di, "CJ/T 188")
    return di


def parse_valve_request(frame: Cjt188Frame, di_order: DiOrder) -> ValveAction:
    if frame.is_reply or frame.function != Function.WRITE_DATA or len(frame.data) != 4:
        raise FrameError("not a CJ/T 188 valve control request")
    if di_from_wire(frame.data, di_order) != VALVE_CONTROL:
        raise UnknownDataIdentifier(di_from_wire(frame.data, di_order), "CJ/T 188")
    try:
        return ValveAction(frame.data[3])
    except ValueError:
        raise FrameError(f"unknown valve command {frame.data[3]:#04x}") from None


def _check_reply(frame: Cjt188Frame, function: int, serial: int) -> None:
    if not frame.is_reply or frame.function != function:
        raise UnexpectedReply(f"expected a reply to {function:#04x}, got C={frame.control:#04x}")
    if frame.is_error:
        st0 = frame.data[1] if len(frame.data) >= 2 else 0
        status = MeterStatus.decode(frame.data[1:3]) if len(frame.data) >= 3 else MeterStatus()
        raise ExceptionReply("CJ/T 188", st0, f"meter refused; valve {status.valve.value}")
    if len(frame.data) < 3 or frame.data[2] != serial & 0xFF:
        raise UnexpectedReply("reply serial number does not match the request")


def parse_read_reply(
    frame: Cjt188Frame, *, serial: int = 0, di_order: DiOrder = DiOrder.AS_WRITTEN
) -> FlowReading:
    _check_reply(frame, Function.READ_DATA, serial)
    di = di_from_wire(frame.data, di_order)
    if di != CUMULATIVE_FLOW:
        raise UnexpectedReply(f"expected DI 901F, got {di:04X} (check the meter's DI order)")
    data = frame.data
    if len(data) != REGISTRY[CUMULATIVE_FLOW][1]:
        raise FrameError(f"DI 901F reply must carry 22 bytes, got {len(data)}")
    return FlowReading(
        volume=decode_decimal(data[3:7], 2),
        unit=data[7],
        settlement_volume=decode_decimal(data[8:12], 2),
        settlement_unit=data[12],
        meter_time=_time_from_bcd(data[13:20]),
        status=MeterStatus.decode(data[20:22]),
    )


def parse_valve_reply(
    frame: Cjt188Frame, *, serial: int = 0, di_order: DiOrder = DiOrder.AS_WRITTEN
) -> MeterStatus:
    _check_reply(frame, Function.WRITE_DATA, serial)
    if di_from_wire(frame.data, di_order) != VALVE_CONTROL or len(frame.data) != 5:
        raise UnexpectedReply("not a valve control reply")
    return MeterStatus.decode(frame.data[3:5])
