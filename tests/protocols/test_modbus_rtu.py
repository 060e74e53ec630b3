"""Modbus-RTU codec on top of pymodbus PDUs: golden frames, stream behaviour, maps."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterpay.protocols import modbus_rtu
from meterpay.protocols.errors import ChecksumError, EncodeError, ExceptionReply, UnexpectedReply

GOLDEN = [
    pytest.param(
        modbus_rtu.read_registers_request(1, 0x0000, 0x000A),
        # CRC-16/MODBUS of 01 03 00 00 00 0A is 0xCDC5, sent low byte first: C5 CD
        "01 03 0000 000A C5CD",
        id="read-10-registers",
    ),
    pytest.param(
        modbus_rtu.read_registers_reply(1, [0x0001, 0x0002]),
        # CRC of 01 03 04 00 01 00 02 = 0x322A -> 2A 32
        "01 03 04 0001 0002 2A32",
        id="read-reply",
    ),
    pytest.param(
        modbus_rtu.exception_reply(1, 0x03, modbus_rtu.ILLEGAL_DATA_ADDRESS),
        # CRC of 01 83 02 = 0xF1C0 -> C0 F1
        "01 83 02 C0F1",
        id="exception-illegal-address",
    ),
    pytest.param(
        modbus_rtu.write_register_request(1, 0x0041, modbus_rtu.RELAY_TRIP_VALUE),
        # CRC of 01 06 00 41 55 55 = 0xB126 (bitwise reference below) -> 26 B1
        "01 06 0041 5555 26B1",
        id="relay-trip-write",
    ),
]


@pytest.mark.parametrize(("frame", "wire"), GOLDEN)
def test_golden_frames(frame: modbus_rtu.ModbusRtuFrame, wire: str) -> None:
    expected = bytes.fromhex(wire)
    assert modbus_rtu.encode(frame) == expected
    server_side = frame.pdu.__class__.__name__.endswith("Request")
    framer = modbus_rtu.ModbusRtuFramer(server=server_side)
    framer.feed(expected)
    decoded = framer.next_frame()
    assert decoded is not None
    assert decoded.unit_id == frame.unit_id
    assert decoded.function_code == frame.function_code
    assert modbus_rtu.encode(decoded) == expected


def reference_crc16(data: bytes) -> bytes:
    """Bit-by-bit CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), wire order."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def test_crc_matches_the_reference_check_value() -> None:
    # CRC-16/MODBUS check value for ASCII "123456789" is 0x4B37 (wire order 37 4B).
    assert modbus_rtu.crc16(b"123456789").to_bytes(2, "big") == bytes.fromhex("374B")


@pytest.mark.parametrize(("frame", "wire"), GOLDEN)
def test_golden_crcs_match_the_bitwise_reference(
    frame: modbus_rtu.ModbusRtuFrame, wire: str
) -> None:
    raw = bytes.fromhex(wire)
    assert reference_crc16(raw[:-2]) == raw[-2:]


REPLY = modbus_rtu.encode(modbus_rtu.read_registers_reply(1, [1, 2, 3]))


def test_byte_by_byte_and_concatenated() -> None:
    framer = modbus_rtu.ModbusRtuFramer()
    frames = []
    for byte in REPLY + REPLY:
        framer.feed(bytes([byte]))
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    assert [list(f.pdu.registers) for f in frames] == [[1, 2, 3], [1, 2, 3]]


@pytest.mark.parametrize("garbage", [b"\x00", b"\x07\x03", b"\xff\xff\x01", b"\x02\x03\x04\x05"])
def test_leading_garbage_is_skipped(garbage: bytes) -> None:
    framer = modbus_rtu.ModbusRtuFramer()
    framer.feed(garbage + REPLY + b"\x00\x00")
    frame = framer.next_frame()
    assert frame is not None and list(frame.pdu.registers) == [1, 2, 3]


def test_bad_crc_raises_then_resyncs() -> None:
    damaged = bytearray(REPLY)
    damaged[-1] ^= 0x01
    framer = modbus_rtu.ModbusRtuFramer(expected_unit=1)
    framer.feed(bytes(damaged))
    with pytest.raises(ChecksumError):
        framer.next_frame()
    framer.feed(REPLY)
    frame = framer.next_frame()
    assert frame is not None and list(frame.pdu.registers) == [1, 2, 3]


def test_exception_reply_is_raised_with_its_code() -> None:
    frame = modbus_rtu.exception_reply(1, 0x06, modbus_rtu.ILLEGAL_DATA_VALUE)
    with pytest.raises(ExceptionReply) as caught:
        modbus_rtu.parse_write_register_reply(frame, 1, 0x41, 0x1234)
    assert caught.value.code == 3
    assert caught.value.meaning == "illegal data value"


def test_reply_from_another_unit_is_unexpected() -> None:
    with pytest.raises(UnexpectedReply):
        modbus_rtu.parse_read_registers_reply(modbus_rtu.read_registers_reply(2, [1]), 1, 1)


def test_ddsy1352_map_decodes_acrel_scaling() -> None:
    registers = modbus_rtu.DDSY1352_MAP.registers
    assert registers["energy_total"].decode([0x0001, 0xE240]) == Decimal("1234.56")
    assert registers["voltage_a"].decode([2298]) == Decimal("229.8")
    assert registers["current_a"].decode([512]) == Decimal("5.12")
    assert registers["power"].decode([0xFFFF]) == Decimal("-0.001")
    assert registers["power_factor"].decode([985]) == Decimal("0.985")


def test_register_encode_round_trip_and_range() -> None:
    power = modbus_rtu.DTSY1352_MAP.registers["power"]
    assert power.decode(power.encode(Decimal("-41.250"))) == Decimal("-41.250")
    with pytest.raises(EncodeError):
        modbus_rtu.DDSY1352_MAP.registers["voltage_a"].encode(Decimal("7000.0"))
    with pytest.raises(EncodeError):
        modbus_rtu.DDSY1352_MAP.registers["voltage_a"].encode(Decimal("220.05"))


def test_span_covers_every_quantity() -> None:
    first, count = modbus_rtu.DDSY1352_MAP.span()
    assert (first, count) == (0, 0x11)
    block = [0] * count
    block[0x0B] = 2200
    assert modbus_rtu.DDSY1352_MAP.value_from_block("voltage_a", first, block) == Decimal("220.0")


def test_a_valid_frame_inside_register_data_is_not_taken_for_the_reply() -> None:
    # a one-register reply of unit 1, CRC and all, carried as register data of its own reply
    inner = modbus_rtu.encode(modbus_rtu.read_registers_reply(1, [0x1234]))
    data = inner + bytes(1)  # 8 bytes: four registers
    registers = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    wire = modbus_rtu.encode(modbus_rtu.read_registers_reply(1, registers))
    framer = modbus_rtu.ModbusRtuFramer(expected_unit=1)
    frames = []
    for byte in wire:  # a byte at a time: the inner frame is complete before the outer one
        framer.feed(bytes([byte]))
        while (frame := framer.next_frame()) is not None:
            frames.append(frame)
    assert [(f.unit_id, modbus_rtu.parse_read_registers_reply(f, 1, 4)) for f in frames] == [
        (1, registers)
    ]
