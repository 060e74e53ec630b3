"""DL/T 645-2007 multi-function energy meter protocol (framer, registry, messages).

Frame layout (every field one byte unless noted)::

    FE FE FE FE  68  A0 A1 A2 A3 A4 A5  68  C  L  DATA[L]  CS  16
    └ preamble ┘ │   └ address, BCD ┘   │   │  │  └ +0x33 ┘ │   └ end
     (optional,  start  A0 = lowest two  start  │  length      checksum: sum of the
      0-4 bytes)        digits ("reversed")    control       bytes 68 .. DATA, mod 256

The address printed on the nameplate, e.g. ``000012345678``, is sent as
``78 56 34 12 00 00``. ``999999999999`` is the broadcast address (time sync) and
``AAAAAAAAAAAA`` the wildcard ("whoever is on the bus").

Control byte C::

    bit 7  direction     0 = master → meter, 1 = meter → master
    bit 6  abnormal      1 = error reply (DATA is one error byte)
    bit 5  follow-up     1 = more data follows (not used by meterpay)
    bit 4-0 function     0x08 broadcast time, 0x11 read, 0x13 read address,
                         0x14 write, 0x1C relay control

So a read reply is 0x91, a read error reply 0xD1, a relay reply 0x9C / 0xDC.

Every DATA byte is sent with 0x33 added (mod 256); :class:`Dlt645Frame` holds the real
values. Multi-byte values are sent least significant byte first: a data identifier
``00 01 00 00`` travels as ``00 00 01 00`` (+0x33: ``33 33 34 33``).

Read (0x11)::

    request  DATA = DI0 DI1 DI2 DI3
    reply    DATA = DI0 DI1 DI2 DI3 value...        (C = 0x91)
    error    DATA = ERR                             (C = 0xD1)

Relay control (0x1C)::

    request  DATA = PA P0 P1 P2  C0 C1 C2 C3  N1 N2  N3..N8
                    password      operator     │  │   expiry ss mm hh DD MM YY (BCD)
                    (PA = level)  code         │  reserved (0x00)
                                               action: 0x1A trip, 0x1B close permitted,
                                                       0x1C close directly
    reply    L = 0 (C = 0x9C) or DATA = ERR (C = 0xDC)

Purchase (credit download) and refund, written with 0x14::

    request  DATA = DI0..DI3  PA P0 P1 P2  C0 C1 C2 C3  amount (4, BCD 0.01 CNY)  count (2, BCD)
                   PURCHASE   password     operator     money to add
                   REFUND                               remaining money to leave on the meter
    reply    L = 0 (C = 0x94) or DATA = ERR (C = 0xD4)

The meter accepts a purchase or refund only when ``count`` is its purchase count + 1, so a
repeated frame (a lost reply, a retry) is answered but not applied twice. It keeps the last
purchase record (amount, remaining money before and after) readable at 0333xx01.

Broadcast time (0x08, address 999999999999, no reply)::

    DATA = ss mm hh DD MM YY (BCD)

meterpay sends relay control, purchases and refunds in plaintext as the 2007 base standard
describes; meters that require ESAM-encrypted control (State Grid smart meters take a purchase
through the security-authenticated function 0x03 with MACs) are out of scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum
from typing import Final

from meterpay.protocols.bcd import (
    bcd_byte,
    bcd_byte_value,
    decode_decimal,
    encode_decimal,
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

START: Final = 0x68
END: Final = 0x16
PREAMBLE: Final = 0xFE
DATA_OFFSET: Final = 0x33
#: Longest DATA the standard allows in one frame.
MAX_DATA_LENGTH: Final = 200
BROADCAST_ADDRESS: Final = "999999999999"
WILDCARD_ADDRESS: Final = "AAAAAAAAAAAA"

REPLY_BIT: Final = 0x80
ERROR_BIT: Final = 0x40
FOLLOW_UP_BIT: Final = 0x20
FUNCTION_MASK: Final = 0x1F


class Function(IntEnum):
    """Function codes (low five bits of the control byte)."""

    BROADCAST_TIME = 0x08
    READ = 0x11
    READ_FOLLOW_UP = 0x12
    READ_ADDRESS = 0x13
    WRITE = 0x14
    RELAY_CONTROL = 0x1C


class RelayAction(IntEnum):
    """N1 of a relay control (0x1C) request."""

    TRIP = 0x1A
    CLOSE_PERMITTED = 0x1B
    CLOSE = 0x1C


#: Error byte bits in an abnormal reply.
ERROR_BITS: Final[dict[int, str]] = {
    0x01: "other error",
    0x02: "no data requested",
    0x04: "password wrong or not authorised",
    0x08: "communication rate cannot change",
    0x10: "year time zones exceeded",
    0x20: "daily periods exceeded",
    0x40: "tariffs exceeded",
}
ERROR_OTHER: Final = 0x01
ERROR_NO_DATA: Final = 0x02
ERROR_UNAUTHORISED: Final = 0x04


def describe_error(code: int) -> str:
    """Human-readable meaning of a DL/T 645 error byte."""
    names = [name for bit, name in ERROR_BITS.items() if code & bit]
    return ", ".join(names) or "unspecified error"


# ---------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------


def _address_to_wire(address: str) -> bytes:
    if len(address) != 12:
        raise EncodeError(f"DL/T 645 address must have 12 digits, got {address!r}")
    try:
        raw = bytes.fromhex(address)
    except ValueError:
        raise EncodeError(f"DL/T 645 address must be BCD digits: {address!r}") from None
    return raw[::-1]


def _address_from_wire(raw: bytes) -> str:
    return raw[::-1].hex().upper()


def normalise_address(address: str | int) -> str:
    """Left-pad a meter number to the 12-digit DL/T 645 address (``"1"`` → ``000000000001``)."""
    text = str(address).strip().upper()
    if not text or len(text) > 12 or any(c not in "0123456789A" for c in text):
        raise EncodeError(f"not a DL/T 645 meter address: {address!r}")
    return text.rjust(12, "0")


@dataclass(frozen=True, slots=True)
class Dlt645Frame:
    """One DL/T 645 frame; ``data`` is the real payload (without the +0x33 offset)."""

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


def checksum(data: bytes) -> int:
    """DL/T 645 / CJ/T 188 checksum: sum of bytes modulo 256."""
    return sum(data) & 0xFF


def encode_frame(frame: Dlt645Frame, *, preamble: int = 4) -> bytes:
    """Serialise a frame, with ``preamble`` FE wake-up bytes in front."""
    if not 0 <= frame.control <= 0xFF:
        raise EncodeError(f"control byte out of range: {frame.control}")
    if len(frame.data) > MAX_DATA_LENGTH:
        raise EncodeError(f"DL/T 645 data too long: {len(frame.data)} bytes")
    body = bytearray([START])
    body += _address_to_wire(frame.address)
    body += bytes([START, frame.control, len(frame.data)])
    body += bytes((b + DATA_OFFSET) & 0xFF for b in frame.data)
    body.append(checksum(bytes(body)))
    body.append(END)
    return bytes([PREAMBLE] * preamble) + bytes(body)


class Dlt645Framer(StreamFramer[Dlt645Frame]):
    """Stream framer for DL/T 645-2007 (see the module docstring for the layout)."""

    def _find_start(self, buffer: bytearray) -> int | None:
        index = buffer.find(START)
        return None if index < 0 else index

    def _decode_at(self, data: bytes) -> tuple[int, Dlt645Frame]:
        if len(data) < 10:
            if len(data) >= 8 and data[7] != START:
                raise FrameError("second start byte missing")
            raise TruncatedFrame("header incomplete")
        if data[7] != START:
            raise FrameError("second start byte missing")
        length = data[9]
        if length > MAX_DATA_LENGTH:
            raise FrameError(f"length {length} exceeds {MAX_DATA_LENGTH}")
        total = 12 + length
        if len(data) < total:
            raise TruncatedFrame(f"need {total} bytes, have {len(data)}")
        if data[total - 1] != END:
            raise FrameError("end byte 0x16 missing")
        expected = checksum(data[: total - 2])
        if data[total - 2] != expected:
            raise ChecksumError("DL/T 645 checksum", expected=expected, actual=data[total - 2])
        payload = bytes((b - DATA_OFFSET) & 0xFF for b in data[10 : 10 + length])
        return total, Dlt645Frame(_address_from_wire(data[1:7]), data[8], payload)


def decode_frame(data: bytes) -> Dlt645Frame:
    """Decode exactly one frame from ``data`` (preamble and trailing garbage allowed)."""
    framer = Dlt645Framer()
    framer.feed(data)
    frame = framer.next_frame()
    if frame is None:
        raise TruncatedFrame("no complete DL/T 645 frame")
    return frame


# ---------------------------------------------------------------------------
# Data identifier registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BcdField:
    """A fixed point BCD value: ``length`` bytes, ``decimals`` digits after the point."""

    length: int
    decimals: int
    signed: bool = False

    def encode(self, value: Decimal | int) -> bytes:
        return encode_decimal(Decimal(value), self.length, self.decimals, signed=self.signed)

    def decode(self, data: bytes) -> Decimal:
        return decode_decimal(data, self.decimals, signed=self.signed)


@dataclass(frozen=True, slots=True)
class BitsField:
    """A raw little-endian bit field (status words); value is an ``int``."""

    length: int

    def encode(self, value: Decimal | int) -> bytes:
        number = int(value)
        if not 0 <= number < 256**self.length:
            raise EncodeError(f"{value} does not fit in {self.length} bytes")
        return number.to_bytes(self.length, "little")

    def decode(self, data: bytes) -> int:
        return int.from_bytes(data, "little")


type Field = BcdField | BitsField
type Value = Decimal | int


@dataclass(frozen=True, slots=True)
class DataIdentifier:
    """One registry entry: a DI (DI3 DI2 DI1 DI0 as written in the standard) and its format."""

    di: int
    name: str
    unit: str
    fields: tuple[Field, ...]

    @property
    def length(self) -> int:
        return sum(f.length for f in self.fields)

    @property
    def wire(self) -> bytes:
        """DI as sent: DI0 first."""
        return self.di.to_bytes(4, "little")

    def encode_values(self, values: Sequence[Value]) -> bytes:
        if len(values) != len(self.fields):
            raise EncodeError(f"{self.name} takes {len(self.fields)} values, got {len(values)}")
        return b"".join(f.encode(v) for f, v in zip(self.fields, values, strict=True))

    def decode_values(self, data: bytes) -> tuple[Value, ...]:
        if len(data) != self.length:
            raise FrameError(f"{self.name}: expected {self.length} value bytes, got {len(data)}")
        values: list[Value] = []
        offset = 0
        for field in self.fields:
            values.append(field.decode(data[offset : offset + field.length]))
            offset += field.length
        return tuple(values)


_ENERGY = BcdField(4, 2)  # XXXXXX.XX kWh
_VOLTAGE = BcdField(2, 1)  # XXX.X V
_CURRENT = BcdField(3, 3, signed=True)  # XXX.XXX A
_POWER = BcdField(3, 4, signed=True)  # XX.XXXX kW
_POWER_FACTOR = BcdField(2, 3, signed=True)  # X.XXX
_MONEY = BcdField(4, 2)  # XXXXXX.XX yuan
_COUNT = BcdField(2, 0)  # NNNN

TOTAL_ENERGY = 0x00010000
TARIFF_ENERGY = (0x00010100, 0x00010200, 0x00010300, 0x00010400)  # sharp, peak, flat, valley
ENERGY_BLOCK = 0x0001FF00
VOLTAGE_A, VOLTAGE_B, VOLTAGE_C = 0x02010100, 0x02010200, 0x02010300
VOLTAGE_BLOCK = 0x0201FF00
CURRENT_A, CURRENT_B, CURRENT_C = 0x02020100, 0x02020200, 0x02020300
CURRENT_BLOCK = 0x0202FF00
ACTIVE_POWER_TOTAL = 0x02030000
POWER_FACTOR_TOTAL = 0x02060000
STATUS_WORD_3 = 0x04000503
REMAINING_ENERGY = 0x00900100
REMAINING_MONEY = 0x00900200
OVERDRAFT_MONEY = 0x00900201
PURCHASE_COUNT = 0x03330201
LAST_PURCHASE_AMOUNT = 0x03330301
REMAINING_BEFORE_LAST_PURCHASE = 0x03330401
REMAINING_AFTER_LAST_PURCHASE = 0x03330501
#: Written with 0x14: add money (purchase) / set the remaining money (refund); see above.
PURCHASE = 0x070104FF
REFUND = 0x070103FF

#: Status word 3 bit 4: relay state (0 = closed / conducting, 1 = open / tripped).
STATUS3_RELAY_OPEN: Final = 1 << 4
#: Status word 3 bit 6: last relay command (0 = close, 1 = trip).
STATUS3_RELAY_COMMAND_TRIP: Final = 1 << 6
#: Status word 3 bits 8-9: meter type; 0b10 = money-prepaid meter.
STATUS3_MONEY_PREPAID: Final = 0b10 << 8

REGISTRY: Final[dict[int, DataIdentifier]] = {
    entry.di: entry
    for entry in (
        DataIdentifier(TOTAL_ENERGY, "forward active energy, total", "kWh", (_ENERGY,)),
        DataIdentifier(TARIFF_ENERGY[0], "forward energy, tariff 1 (sharp)", "kWh", (_ENERGY,)),
        DataIdentifier(TARIFF_ENERGY[1], "forward energy, tariff 2 (peak)", "kWh", (_ENERGY,)),
        DataIdentifier(TARIFF_ENERGY[2], "forward energy, tariff 3 (flat)", "kWh", (_ENERGY,)),
        DataIdentifier(TARIFF_ENERGY[3], "forward energy, tariff 4 (valley)", "kWh", (_ENERGY,)),
        DataIdentifier(ENERGY_BLOCK, "forward energy, total + tariffs 1-4", "kWh", (_ENERGY,) * 5),
        DataIdentifier(VOLTAGE_A, "phase A voltage", "V", (_VOLTAGE,)),
        DataIdentifier(VOLTAGE_B, "phase B voltage", "V", (_VOLTAGE,)),
        DataIdentifier(VOLTAGE_C, "phase C voltage", "V", (_VOLTAGE,)),
        DataIdentifier(VOLTAGE_BLOCK, "voltage, phases A-C", "V", (_VOLTAGE,) * 3),
        DataIdentifier(CURRENT_A, "phase A current", "A", (_CURRENT,)),
        DataIdentifier(CURRENT_B, "phase B current", "A", (_CURRENT,)),
        DataIdentifier(CURRENT_C, "phase C current", "A", (_CURRENT,)),
        DataIdentifier(CURRENT_BLOCK, "current, phases A-C", "A", (_CURRENT,) * 3),
        DataIdentifier(ACTIVE_POWER_TOTAL, "active power, total", "kW", (_POWER,)),
        DataIdentifier(POWER_FACTOR_TOTAL, "power factor, total", "", (_POWER_FACTOR,)),
        DataIdentifier(STATUS_WORD_3, "operating status word 3", "", (BitsField(2),)),
        DataIdentifier(REMAINING_ENERGY, "remaining energy (prepaid)", "kWh", (_ENERGY,)),
        DataIdentifier(REMAINING_MONEY, "remaining money (prepaid)", "CNY", (_MONEY,)),
        DataIdentifier(OVERDRAFT_MONEY, "overdraft money (prepaid)", "CNY", (_MONEY,)),
        DataIdentifier(PURCHASE_COUNT, "total purchase count after last purchase", "", (_COUNT,)),
        DataIdentifier(LAST_PURCHASE_AMOUNT, "amount of the last purchase", "CNY", (_MONEY,)),
        DataIdentifier(
            REMAINING_BEFORE_LAST_PURCHASE, "remaining money before last purchase", "CNY", (_MONEY,)
        ),
        DataIdentifier(
            REMAINING_AFTER_LAST_PURCHASE, "remaining money after last purchase", "CNY", (_MONEY,)
        ),
        DataIdentifier(PURCHASE, "purchase: amount, purchase count", "CNY", (_MONEY, _COUNT)),
        DataIdentifier(REFUND, "refund: remaining money, purchase count", "CNY", (_MONEY, _COUNT)),
    )
}


def lookup(di: int) -> DataIdentifier:
    """Registry entry for ``di``; raise :class:`UnknownDataIdentifier` if there is none."""
    try:
        return REGISTRY[di]
    except KeyError:
        raise UnknownDataIdentifier(di, "DL/T 645") from None


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


def read_request(address: str, di: int) -> Dlt645Frame:
    """Read request (0x11) for one data identifier."""
    return Dlt645Frame(address, Function.READ, lookup(di).wire)


def read_reply(address: str, di: int, values: Sequence[Value]) -> Dlt645Frame:
    """Normal read reply (0x91)."""
    entry = lookup(di)
    return Dlt645Frame(address, REPLY_BIT | Function.READ, entry.wire + entry.encode_values(values))


def error_reply(address: str, function: int, error: int) -> Dlt645Frame:
    """Abnormal reply (0xC0 | function) carrying one error byte."""
    return Dlt645Frame(address, REPLY_BIT | ERROR_BIT | function, bytes([error & 0xFF]))


def requested_di(frame: Dlt645Frame) -> int:
    """The DI of a read request (or normal reply)."""
    if frame.function != Function.READ or len(frame.data) < 4:
        raise FrameError("not a DL/T 645 read frame")
    return int.from_bytes(frame.data[:4], "little")


def _raise_if_error(frame: Dlt645Frame, function: int) -> None:
    if not frame.is_reply or frame.function != function:
        raise UnexpectedReply(
            f"expected a reply to function {function:#04x}, got C={frame.control:#04x}"
        )
    if frame.is_error:
        code = frame.data[0] if frame.data else 0
        raise ExceptionReply("DL/T 645", code, describe_error(code))


def parse_read_reply(frame: Dlt645Frame, di: int) -> tuple[Value, ...]:
    """Values of a read reply for ``di``; raise :class:`ExceptionReply` for 0xD1."""
    _raise_if_error(frame, Function.READ)
    got = requested_di(frame)
    if got != di:
        raise UnexpectedReply(f"asked for DI {di:08X}, reply carries {got:08X}")
    return lookup(di).decode_values(frame.data[4:])


def _bcd_datetime(moment: datetime) -> bytes:
    """ss mm hh DD MM YY."""
    if not 2000 <= moment.year <= 2099:
        raise EncodeError(f"DL/T 645 dates cover 2000-2099, got {moment.year}")
    year = moment.year - 2000
    parts = (moment.second, moment.minute, moment.hour, moment.day, moment.month, year)
    return bytes(bcd_byte(p) for p in parts)


def _datetime_from_bcd(data: bytes) -> datetime:
    second, minute, hour, day, month, year = (bcd_byte_value(b) for b in data[:6])
    try:
        return datetime(2000 + year, month, day, hour, minute, second)  # meter local time, naive
    except ValueError as exc:
        raise FrameError(f"invalid date in frame: {exc}") from None


def _password_to_wire(password: str) -> bytes:
    """``"LLPPPPPP"`` (level, 6-digit password) → PA P0 P1 P2."""
    if len(password) != 8:
        raise EncodeError("password must be 8 hex digits: 2 for the level, 6 for the password")
    try:
        raw = bytes.fromhex(password)
    except ValueError:
        raise EncodeError(f"password must be hex digits: {password!r}") from None
    return raw[:1] + raw[1:][::-1]


def _operator_to_wire(operator_code: str) -> bytes:
    if len(operator_code) != 8:
        raise EncodeError("operator code must be 8 hex digits")
    try:
        return bytes.fromhex(operator_code)[::-1]
    except ValueError:
        raise EncodeError(f"operator code must be hex digits: {operator_code!r}") from None


def _credentials_from_wire(raw: bytes) -> tuple[str, str]:
    """PA P0 P1 P2 C0 C1 C2 C3 → (password ``"LLPPPPPP"``, operator code): the reverse of
    :func:`_password_to_wire` and :func:`_operator_to_wire`."""
    return (raw[:1] + raw[1:4][::-1]).hex().upper(), raw[4:8][::-1].hex().upper()


@dataclass(frozen=True, slots=True)
class RelayCommand:
    """A decoded relay control (0x1C) request."""

    address: str
    action: RelayAction
    password: str
    operator_code: str
    expires_at: datetime


def relay_control_request(
    address: str,
    action: RelayAction,
    *,
    password: str,
    operator_code: str,
    expires_at: datetime,
) -> Dlt645Frame:
    """Relay control request (0x1C); see the module docstring for the data layout."""
    data = (
        _password_to_wire(password)
        + _operator_to_wire(operator_code)
        + bytes([action, 0x00])
        + _bcd_datetime(expires_at)
    )
    return Dlt645Frame(address, Function.RELAY_CONTROL, data)


def parse_relay_control(frame: Dlt645Frame) -> RelayCommand:
    """Decode a relay control request (used by meters and simulators)."""
    if frame.is_reply or frame.function != Function.RELAY_CONTROL or len(frame.data) != 16:
        raise FrameError("not a DL/T 645 relay control request")
    data = frame.data
    try:
        action = RelayAction(data[8])
    except ValueError:
        raise FrameError(f"unknown relay action {data[8]:#04x}") from None
    password, operator_code = _credentials_from_wire(data[:8])
    expires_at = _datetime_from_bcd(data[10:16])
    return RelayCommand(frame.address, action, password, operator_code, expires_at)


def relay_control_reply(address: str) -> Dlt645Frame:
    """Normal relay control reply (0x9C, no data)."""
    return Dlt645Frame(address, REPLY_BIT | Function.RELAY_CONTROL)


def parse_relay_control_reply(frame: Dlt645Frame) -> None:
    """Accept a 0x9C reply; raise :class:`ExceptionReply` for 0xDC."""
    _raise_if_error(frame, Function.RELAY_CONTROL)


def time_sync_broadcast(moment: datetime) -> Dlt645Frame:
    """Broadcast time synchronisation (0x08 to 999999999999; meters do not reply)."""
    return Dlt645Frame(BROADCAST_ADDRESS, Function.BROADCAST_TIME, _bcd_datetime(moment))


def parse_time_sync(frame: Dlt645Frame) -> datetime:
    if frame.function != Function.BROADCAST_TIME or len(frame.data) != 6:
        raise FrameError("not a DL/T 645 broadcast time frame")
    return _datetime_from_bcd(frame.data)


class CreditOperation(IntEnum):
    """The two credit writes, by their data identifier."""

    PURCHASE = PURCHASE
    REFUND = REFUND


@dataclass(frozen=True, slots=True)
class CreditWrite:
    """A decoded purchase or refund write (0x14).

    ``amount``: money to add (purchase) or the remaining money to leave (refund).
    """

    address: str
    operation: CreditOperation
    password: str
    operator_code: str
    amount: Decimal
    purchase_count: int


def credit_write_request(
    address: str,
    operation: CreditOperation,
    *,
    amount: Decimal,
    purchase_count: int,
    password: str,
    operator_code: str,
) -> Dlt645Frame:
    """A purchase (credit download) or refund write; see the module docstring for the layout."""
    if operation is CreditOperation.PURCHASE and amount <= 0:
        raise EncodeError(f"a purchase adds a positive amount, got {amount}")
    if not 1 <= purchase_count <= 9999:
        raise EncodeError(f"purchase count must be 1..9999, got {purchase_count}")
    entry = lookup(operation)
    data = (
        entry.wire
        + _password_to_wire(password)
        + _operator_to_wire(operator_code)
        + entry.encode_values([amount, purchase_count])
    )
    return Dlt645Frame(address, Function.WRITE, data)


def parse_credit_write(frame: Dlt645Frame) -> CreditWrite:
    """Decode a purchase or refund write (used by meters and simulators)."""
    if frame.is_reply or frame.function != Function.WRITE or len(frame.data) < 4:
        raise FrameError("not a DL/T 645 write request")
    di = int.from_bytes(frame.data[:4], "little")
    try:
        operation = CreditOperation(di)
    except ValueError:
        raise UnknownDataIdentifier(di, "DL/T 645") from None
    data, entry = frame.data, lookup(di)
    if len(data) != 12 + entry.length:
        raise FrameError(f"credit write: expected {12 + entry.length} bytes, got {len(data)}")
    password, operator_code = _credentials_from_wire(data[4:12])
    amount, count = entry.decode_values(data[12:])
    return CreditWrite(
        frame.address, operation, password, operator_code, Decimal(amount), int(count)
    )


def write_reply(address: str) -> Dlt645Frame:
    """Normal write reply (0x94, no data)."""
    return Dlt645Frame(address, REPLY_BIT | Function.WRITE)


def parse_write_reply(frame: Dlt645Frame) -> None:
    """Accept a 0x94 reply; raise :class:`ExceptionReply` for 0xD4."""
    _raise_if_error(frame, Function.WRITE)
