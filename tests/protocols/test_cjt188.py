"""CJ/T 188-2004 codec: golden frames, DI order, stream behaviour, messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from meterpay.protocols import cjt188
from meterpay.protocols.errors import ChecksumError, ExceptionReply, UnexpectedReply

ADDRESS = "00000000000001"
READING = cjt188.FlowReading(
    volume=Decimal("123.45"),
    unit=cjt188.UNIT_CUBIC_METRE,
    settlement_volume=Decimal("100.00"),
    settlement_unit=cjt188.UNIT_CUBIC_METRE,
    meter_time=datetime(2026, 3, 14, 15, 9, 26),
    status=cjt188.MeterStatus(cjt188.ValveState.OPEN, battery_low=True),
)

GOLDEN = [
    pytest.param(
        cjt188.read_request(ADDRESS),
        # 68+10+01+01+03 = 7D; +90+1F+00 = 12C -> 2C
        "68 10 01000000000000 01 03 901F 00 2C 16",
        id="read-901F-as-written",
    ),
    pytest.param(
        cjt188.read_request(ADDRESS, di_order=cjt188.DiOrder.SWAPPED, serial=5),
        # same bytes, DI swapped, SER 05 -> 131 -> 31
        "68 10 01000000000000 01 03 1F90 05 31 16",
        id="read-901F-swapped",
    ),
    pytest.param(
        cjt188.valve_request("12345678901234", cjt188.ValveAction.CLOSE),
        # address on the wire 34 12 90 78 56 34 12 (sum 1EA)
        # 68+10+1EA+04+04 = 26A; A0+17+00+99 = 150 -> 3BA -> BA
        "68 10 34129078563412 04 04 A017 00 99 BA 16",
        id="valve-close",
    ),
    pytest.param(
        cjt188.valve_reply(ADDRESS, cjt188.MeterStatus(cjt188.ValveState.CLOSED)),
        # 68+10+01+84+05 = 102; A0+17+00+01+00 = B8 -> 1BA -> BA
        "68 10 01000000000000 84 05 A017 00 0100 BA 16",
        id="valve-reply-closed",
    ),
]


@pytest.mark.parametrize(("frame", "wire"), GOLDEN)
def test_golden_frames(frame: cjt188.Cjt188Frame, wire: str) -> None:
    expected = bytes.fromhex(wire)
    assert cjt188.encode_frame(frame, preamble=0) == expected
    assert cjt188.decode_frame(b"\xfe\xfe\xfe" + expected) == frame


def test_read_reply_round_trip_and_layout() -> None:
    frame = cjt188.read_reply(ADDRESS, READING, serial=7)
    wire = cjt188.encode_frame(frame, preamble=0)
    assert wire[9:11] == bytes([0x81, 0x16])
    # flow 123.45 m3 -> 00012345 LSB first: 45 23 01 00, unit 2C
    assert wire[14:19] == bytes.fromhex("45 23 01 00 2C")
    # time ss mm hh DD MM YYYY(low first): 26 09 15 14 03 26 20
    assert wire[24:31] == bytes.fromhex("26 09 15 14 03 26 20")
    parsed = cjt188.parse_read_reply(cjt188.decode_frame(wire), serial=7)
    assert parsed == READING
    assert parsed.volume_m3 == Decimal("123.45")


def test_di_order_mismatch_is_reported() -> None:
    frame = cjt188.read_reply(ADDRESS, READING, di_order=cjt188.DiOrder.SWAPPED)
    with pytest.raises(UnexpectedReply, match="DI order"):
        cjt188.parse_read_reply(frame)
    assert cjt188.parse_read_reply(frame, di_order=cjt188.DiOrder.SWAPPED) == READING


def test_litres_convert_to_cubic_metres() -> None:
    assert cjt188.volume_in_cubic_metres(Decimal("1500.00"), cjt188.UNIT_LITRE) == Decimal("1.5")


def test_valve_request_parse_and_status_bits() -> None:
    request = cjt188.valve_request(ADDRESS, cjt188.ValveAction.OPEN)
    assert cjt188.parse_valve_request(request, cjt188.DiOrder.AS_WRITTEN) is cjt188.ValveAction.OPEN
    status = cjt188.MeterStatus(cjt188.ValveState.CLOSED, battery_low=True, vendor=0x42)
    assert status.encode() == bytes([0b101, 0x42])
    assert cjt188.MeterStatus.decode(bytes([0b11, 0])).valve is cjt188.ValveState.ABNORMAL


def test_abnormal_reply_raises() -> None:
    frame = cjt188.error_reply(
        ADDRESS, cjt188.Function.WRITE_DATA, cjt188.MeterStatus(cjt188.ValveState.ABNORMAL)
    )
    assert frame.control == 0xC4
    with pytest.raises(ExceptionReply, match="abnormal"):
        cjt188.parse_valve_reply(frame)


def test_wrong_serial_is_unexpected() -> None:
    with pytest.raises(UnexpectedReply):
        cjt188.parse_read_reply(cjt188.read_reply(ADDRESS, READING, serial=1), serial=2)


def test_stream_split_concatenated_garbage_and_bad_checksum() -> None:
    good = cjt188.encode_frame(cjt188.read_reply(ADDRESS, READING))
    damaged = bytearray(good)
    damaged[20] ^= 0x10
    framer = cjt188.Cjt188Framer()
    stream = b"\x68\x00junk" + bytes(damaged) + good + good + b"\x00"
    results: list[object] = []
    for byte in stream:
        framer.feed(bytes([byte]))
        while True:
            try:
                frame = framer.next_frame()
            except ChecksumError:
                results.append("checksum")
                continue
            if frame is None:
                break
            results.append(frame.control)
    assert results == ["checksum", 0x81, 0x81]
