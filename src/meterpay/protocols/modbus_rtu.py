"""Modbus-RTU for Acrel DDSY1352 / DTSY1352-compatible prepaid meters.

RTU frame::

    unit id (1) │ function code (1) │ PDU data (N) │ CRC-16/MODBUS (2, low byte first)

PDUs and the CRC come from pymodbus 3.16.1 (:class:`pymodbus.pdu.DecodePDU`, the PDU
classes, :meth:`pymodbus.framer.FramerRTU.compute_CRC`). The stream loop is meterpay's:
pymodbus's ``FramerRTU.decode`` consumes the whole buffer once it finds a frame and
drops a CRC failure silently, while meterpay needs concatenated frames returned one by
one and a typed :class:`~meterpay.protocols.errors.ChecksumError`.

RTU has no start marker, so the framer hunts: a frame may start at any byte whose next
byte is a supported function code (0x03, 0x04, 0x06, 0x10 or an exception 0x8x). When
a candidate fails its CRC but a later candidate in the buffer is a complete, valid
frame, the earlier bytes were garbage; otherwise the candidate was a damaged frame
and :class:`ChecksumError` is raised. A client that knows which unit it asked narrows
the hunt with ``expected_unit``.

Register maps (holding registers, function 0x03 to read, 0x06 to write; 32-bit values
are two registers, high word first). Addresses 0x0000-0x0010 of ``DDSY1352_MAP`` are
Acrel's published DDSY1352 communication address table; the relay registers and the
whole ``DTSY1352_MAP`` are **meterpay's map for DDSY1352-compatible meters** (check the
meter's own manual when commissioning a new model)::

    DDSY1352 (single phase)                  DTSY1352 (three phase, meterpay's map)
    0x0000 UINT32 total energy   0.01 kWh    0x0000-0x0009 energy as DDSY1352
    0x0002 UINT32 sharp energy   0.01 kWh    0x000B UINT16 phase A voltage 0.1 V
    0x0004 UINT32 peak energy    0.01 kWh    0x000C UINT16 phase B voltage 0.1 V
    0x0006 UINT32 flat energy    0.01 kWh    0x000D UINT16 phase C voltage 0.1 V
    0x0008 UINT32 valley energy  0.01 kWh    0x000E UINT16 phase A current 0.01 A
    0x000A UINT16 password (R/W, unused)     0x000F UINT16 phase B current 0.01 A
    0x000B UINT16 voltage        0.1 V       0x0010 UINT16 phase C current 0.01 A
    0x000C UINT16 current        0.01 A      0x0011 INT32  active power 0.001 kW
    0x000D INT16  active power   0.001 kW    0x0013 INT16  power factor 0.001
    0x000F UINT16 apparent power 0.001 kVA
    0x0010 INT16  power factor   0.001
    both: 0x0040 UINT16 relay status (R): 0 = closed, 1 = open (tripped)
          0x0041 UINT16 relay control (W): 0x5555 = trip, 0xAAAA = close;
                 any other value → exception 0x03 (illegal data value)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)

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

READ_HOLDING_REGISTERS: Final = 0x03
READ_INPUT_REGISTERS: Final = 0x04
WRITE_SINGLE_REGISTER: Final = 0x06
WRITE_MULTIPLE_REGISTERS: Final = 0x10
SUPPORTED_FUNCTIONS: Final = frozenset(
    {READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS, WRITE_SINGLE_REGISTER, WRITE_MULTIPLE_REGISTERS}
)

EXCEPTION_CODES: Final[dict[int, str]] = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
ILLEGAL_FUNCTION: Final = 0x01
ILLEGAL_DATA_ADDRESS: Final = 0x02
ILLEGAL_DATA_VALUE: Final = 0x03

MAX_RTU_FRAME: Final = 256
RELAY_TRIP_VALUE: Final = 0x5555
RELAY_CLOSE_VALUE: Final = 0xAAAA


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS as an int whose big-endian bytes are the wire order (low byte first)."""
    return FramerRTU.compute_CRC(data)


@dataclass(frozen=True, slots=True)
class ModbusRtuFrame:
    """A unit id and a pymodbus PDU (request, response or exception response)."""

    unit_id: int
    pdu: ModbusPDU

    @property
    def function_code(self) -> int:
        return int(self.pdu.function_code)

    @property
    def is_exception(self) -> bool:
        return bool(self.function_code & 0x80)


def encode_frame(unit_id: int, pdu: ModbusPDU) -> bytes:
    """Serialise ``pdu`` for ``unit_id`` (0 = broadcast) with its CRC."""
    if not 0 <= unit_id <= 247:
        raise EncodeError(f"Modbus unit id must be 0..247, got {unit_id}")
    try:
        body = bytes([unit_id, pdu.function_code]) + pdu.encode()
    except Exception as exc:  # pymodbus raises its own exception types on bad values
        raise EncodeError(f"cannot encode Modbus PDU: {exc}") from exc
    return body + crc16(body).to_bytes(2, "big")


class ModbusRtuFramer(StreamFramer[ModbusRtuFrame]):
    """Stream framer for Modbus-RTU.

    ``server=True`` decodes requests (meters, simulators); ``False`` decodes responses.
    """

    def __init__(self, *, server: bool = False, expected_unit: int | None = None) -> None:
        super().__init__()
        self._decoder = DecodePDU(is_server=server)
        self.expected_unit = expected_unit

    def _is_candidate(self, buffer: bytes | bytearray, index: int) -> bool:
        if index + 1 >= len(buffer):
            return True  # cannot tell yet; wait for the function code
        unit, function = buffer[index], buffer[index + 1]
        if self.expected_unit is not None and unit != self.expected_unit:
            return False
        return unit <= 247 and (function & 0x7F) in SUPPORTED_FUNCTIONS

    def _find_start(self, buffer: bytearray) -> int | None:
        for index in range(len(buffer)):
            if self._is_candidate(buffer, index):
                return index
        return None

    def _frame_size(self, data: bytes) -> int:
        pdu_class = self._decoder.lookupPduClass(data)
        if pdu_class is None:
            raise FrameError(f"unsupported function code {data[1]:#04x}")
        size = pdu_class.calculateRtuFrameSize(data)
        if not size:
            raise TruncatedFrame("byte count not received yet")
        if size > MAX_RTU_FRAME:
            raise FrameError("frame longer than 256 bytes")
        return size

    def _complete_frame_at(self, data: bytes) -> tuple[int, ModbusRtuFrame]:
        if len(data) < 4:
            raise TruncatedFrame("need at least 4 bytes")
        size = self._frame_size(data)
        if len(data) < size:
            raise TruncatedFrame(f"need {size} bytes, have {len(data)}")
        expected = crc16(data[: size - 2])
        actual = int.from_bytes(data[size - 2 : size], "big")
        if expected != actual:
            raise ChecksumError("Modbus CRC", expected=expected, actual=actual)
        pdu = self._decoder.decode(data[1 : size - 2])
        if pdu is None:
            raise FrameError("pymodbus could not decode the PDU")
        pdu.dev_id = data[0]
        return size, ModbusRtuFrame(data[0], pdu)

    def _decode_at(self, data: bytes) -> tuple[int, ModbusRtuFrame]:
        try:
            return self._complete_frame_at(data)
        except TruncatedFrame as error:
            if self.expected_unit is not None:
                # The expected unit's reply in progress: wait for the rest. Looking inside it
                # could take register bytes that happen to form a valid frame for another.
                raise
            return self._resync(data, error)
        except ChecksumError as error:
            return self._resync(data, error)

    def _resync(self, data: bytes, error: FrameError) -> tuple[int, ModbusRtuFrame]:
        """The candidate was garbage if a complete valid frame follows it."""
        for later in range(1, min(len(data) - 3, MAX_RTU_FRAME)):
            if not self._is_candidate(data, later):
                continue
            try:
                used, frame = self._complete_frame_at(data[later:])
            except FrameError:
                continue
            self._discard(later)
            return used, frame
        raise error


# ---------------------------------------------------------------------------
# Register maps
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register:
    """A quantity held in one (16-bit) or two (32-bit, high word first) registers."""

    address: int
    words: int
    scale: Decimal
    signed: bool = False

    def decode(self, registers: Sequence[int]) -> Decimal:
        if len(registers) != self.words:
            raise FrameError(f"expected {self.words} registers, got {len(registers)}")
        raw = 0
        for word in registers:
            raw = raw << 16 | (word & 0xFFFF)
        bits = 16 * self.words
        if self.signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return raw * self.scale

    def encode(self, value: Decimal) -> list[int]:
        scaled = value / self.scale
        if scaled != scaled.to_integral_value():
            raise EncodeError(f"{value} is not a multiple of {self.scale}")
        raw = int(scaled)
        bits = 16 * self.words
        low, high = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self.signed else (0, (1 << bits) - 1)
        )
        if not low <= raw <= high:
            raise EncodeError(f"{value} does not fit in register {self.address:#06x}")
        raw &= (1 << bits) - 1
        return [(raw >> (16 * (self.words - 1 - i))) & 0xFFFF for i in range(self.words)]


_KWH = Decimal("0.01")
_VOLT = Decimal("0.1")
_AMP = Decimal("0.01")
_KW = Decimal("0.001")
_PF = Decimal("0.001")
_ONE = Decimal(1)

ENERGY_QUANTITIES: Final = (
    "energy_total",
    "energy_sharp",
    "energy_peak",
    "energy_flat",
    "energy_valley",
)


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """Quantity name → register for one meter model, plus the relay registers."""

    model: str
    registers: dict[str, Register]
    relay_status: int = 0x0040
    relay_control: int = 0x0041

    def __getitem__(self, quantity: str) -> Register:
        try:
            return self.registers[quantity]
        except KeyError:
            raise UnknownDataIdentifier(quantity, f"{self.model} Modbus") from None

    def span(self) -> tuple[int, int]:
        """(first address, register count) covering every measured quantity."""
        first = min(r.address for r in self.registers.values())
        last = max(r.address + r.words for r in self.registers.values())
        return first, last - first

    def value_from_block(self, quantity: str, first: int, block: Sequence[int]) -> Decimal:
        register = self[quantity]
        start = register.address - first
        return register.decode(block[start : start + register.words])


_ENERGY_REGISTERS = {name: Register(2 * i, 2, _KWH) for i, name in enumerate(ENERGY_QUANTITIES)}

DDSY1352_MAP: Final = RegisterMap(
    "DDSY1352",
    {
        **_ENERGY_REGISTERS,
        "voltage_a": Register(0x000B, 1, _VOLT),
        "current_a": Register(0x000C, 1, _AMP),
        "power": Register(0x000D, 1, _KW, signed=True),
        "apparent_power": Register(0x000F, 1, _KW),
        "power_factor": Register(0x0010, 1, _PF, signed=True),
    },
)

DTSY1352_MAP: Final = RegisterMap(
    "DTSY1352",
    {
        **_ENERGY_REGISTERS,
        "voltage_a": Register(0x000B, 1, _VOLT),
        "voltage_b": Register(0x000C, 1, _VOLT),
        "voltage_c": Register(0x000D, 1, _VOLT),
        "current_a": Register(0x000E, 1, _AMP),
        "current_b": Register(0x000F, 1, _AMP),
        "current_c": Register(0x0010, 1, _AMP),
        "power": Register(0x0011, 2, _KW, signed=True),
        "power_factor": Register(0x0013, 1, _PF, signed=True),
    },
)

REGISTER_MAPS: Final = {m.model: m for m in (DDSY1352_MAP, DTSY1352_MAP)}


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


def read_registers_request(unit_id: int, address: int, count: int) -> ModbusRtuFrame:
    return ModbusRtuFrame(
        unit_id, ReadHoldingRegistersRequest(address=address, count=count, dev_id=unit_id)
    )


def read_registers_reply(unit_id: int, registers: Sequence[int]) -> ModbusRtuFrame:
    return ModbusRtuFrame(
        unit_id, ReadHoldingRegistersResponse(registers=list(registers), dev_id=unit_id)
    )


def write_register_request(unit_id: int, address: int, value: int) -> ModbusRtuFrame:
    pdu = WriteSingleRegisterRequest(address=address, registers=[value], dev_id=unit_id)
    return ModbusRtuFrame(unit_id, pdu)


def write_register_reply(unit_id: int, address: int, value: int) -> ModbusRtuFrame:
    pdu = WriteSingleRegisterResponse(address=address, registers=[value], dev_id=unit_id)
    return ModbusRtuFrame(unit_id, pdu)


def exception_reply(unit_id: int, function_code: int, exception_code: int) -> ModbusRtuFrame:
    pdu = ExceptionResponse(function_code & 0x7F, exception_code, device_id=unit_id)
    return ModbusRtuFrame(unit_id, pdu)


def encode(frame: ModbusRtuFrame) -> bytes:
    return encode_frame(frame.unit_id, frame.pdu)


def _check_reply(frame: ModbusRtuFrame, unit_id: int, function_code: int) -> None:
    if frame.unit_id != unit_id:
        raise UnexpectedReply(f"asked unit {unit_id}, unit {frame.unit_id} answered")
    if frame.is_exception and frame.function_code & 0x7F == function_code:
        code = int(getattr(frame.pdu, "exception_code", 0))
        raise ExceptionReply("Modbus", code, EXCEPTION_CODES.get(code, "unknown exception"))
    if frame.function_code != function_code:
        raise UnexpectedReply(
            f"asked function {function_code:#04x}, got {frame.function_code:#04x}"
        )


def parse_read_registers_reply(frame: ModbusRtuFrame, unit_id: int, count: int) -> list[int]:
    """Registers of a 0x03 reply; raise :class:`ExceptionReply` for an exception reply."""
    _check_reply(frame, unit_id, READ_HOLDING_REGISTERS)
    registers = list(frame.pdu.registers)
    if len(registers) != count:
        raise UnexpectedReply(f"asked for {count} registers, got {len(registers)}")
    return registers


def parse_write_register_reply(
    frame: ModbusRtuFrame, unit_id: int, address: int, value: int
) -> None:
    """Accept the echo of a 0x06 write; raise :class:`ExceptionReply` for an exception."""
    _check_reply(frame, unit_id, WRITE_SINGLE_REGISTER)
    if frame.pdu.address != address or list(frame.pdu.registers) != [value]:
        raise UnexpectedReply("write echo does not match the request")
