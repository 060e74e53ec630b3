"""DL/T 645-2007 codec: golden frames, stream behaviour, messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from meterpay.protocols import dlt645
from meterpay.protocols.errors import (
    ChecksumError,
    EncodeError,
    ExceptionReply,
    TruncatedFrame,
    UnexpectedReply,
    UnknownDataIdentifier,
)

ADDRESS = "000000000001"


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


GOLDEN = [
    pytest.param(
        dlt645.read_request(ADDRESS, dlt645.TOTAL_ENERGY),
        # 68+01+68+11+04 = E6; +33+33+34+33 = 17F+34... = 1B3 -> B3
        "68 010000000000 68 11 04 33333433 B3 16",
        id="read-total-energy",
    ),
    pytest.param(
        dlt645.read_reply(ADDRESS, dlt645.TOTAL_ENERGY, [Decimal("1234.56")]),
        # value 1234.56 -> BCD 00 12 34 56 LSB first 56 34 12 00 -> +33: 89 67 45 33
        # 68+01+68+91+08 = 16A; DI 33+33+34+33 = CD -> 237; 89+67+45+33 = 168 -> 39F -> 9F
        "68 010000000000 68 91 08 33333433 89674533 9F 16",
        id="reply-total-energy",
    ),
    pytest.param(
        dlt645.read_request("000012345678", dlt645.VOLTAGE_A),
        # address 78 56 34 12 00 00; DI 02010100 -> 00 01 01 02 -> +33: 33 34 34 35
        # 68+78+56+34+12+68+11+04 = 1F9; +33+34+34+35 = D0 -> 2C9 -> C9
        "68 785634120000 68 11 04 33343435 C9 16",
        id="read-voltage-a",
    ),
    pytest.param(
        dlt645.error_reply(ADDRESS, dlt645.Function.READ, dlt645.ERROR_NO_DATA),
        # 68+01+68+D1+01 = 1A3; error 02+33 = 35 -> 1D8 -> D8
        "68 010000000000 68 D1 01 35 D8 16",
        id="read-error-no-data",
    ),
    pytest.param(
        dlt645.relay_control_reply(ADDRESS),
        # 68+01+68+9C+00 = 16D -> 6D
        "68 010000000000 68 9C 00 6D 16",
        id="relay-reply",
    ),
    pytest.param(
        dlt645.time_sync_broadcast(datetime(2026, 3, 14, 15, 9, 26)),
        # address 99*6; data 26 09 15 14 03 26 +33 -> 59 3C 48 47 36 59
        # 68*2 = D0; 99*6 = 396 -> 466; +08+06 = 474; 59+3C+48+47+36+59 = 1B3 -> 627 -> 27
        "68 999999999999 68 08 06 593C48473659 27 16",
        id="broadcast-time",
    ),
]


@pytest.mark.parametrize(("frame", "wire"), GOLDEN)
def test_golden_frames_encode_and_decode(frame: dlt645.Dlt645Frame, wire: str) -> None:
    expected = hexbytes(wire)
    assert dlt645.encode_frame(frame, preamble=0) == expected
    assert dlt645.encode_frame(frame) == b"\xfe" * 4 + expected
    assert dlt645.decode_frame(b"\xfe\xfe" + expected) == frame


def test_relay_trip_request_layout() -> None:
    frame = dlt645.relay_control_request(
        ADDRESS,
        dlt645.RelayAction.TRIP,
        password="02123456",
        operator_code="00000001",
        expires_at=datetime(2026, 12, 31, 23, 59, 59),
    )
    wire = dlt645.encode_frame(frame, preamble=0)
    # password PA=02 P0..P2 = 56 34 12; operator 01 00 00 00; N1=1A N2=00;
    # expiry 59 59 23 31 12 26 -> every byte +33
    assert wire[10:26] == hexbytes("35 89 67 45 34 33 33 33 4D 33 8C 8C 56 64 45 59")
    assert wire[8] == 0x1C and wire[9] == 16
    decoded = dlt645.parse_relay_control(dlt645.decode_frame(wire))
    assert decoded.action is dlt645.RelayAction.TRIP
    assert decoded.password == "02123456"
    assert decoded.operator_code == "00000001"
    assert decoded.expires_at == datetime(2026, 12, 31, 23, 59, 59)


def test_relay_error_reply_raises_exception_reply() -> None:
    frame = dlt645.error_reply(ADDRESS, dlt645.Function.RELAY_CONTROL, dlt645.ERROR_UNAUTHORISED)
    assert frame.control == 0xDC
    with pytest.raises(ExceptionReply) as caught:
        dlt645.parse_relay_control_reply(dlt645.decode_frame(dlt645.encode_frame(frame)))
    assert caught.value.code == 0x04
    assert "password" in caught.value.meaning


def test_read_reply_values_for_every_register() -> None:
    cases = {
        dlt645.ENERGY_BLOCK: [Decimal(v) for v in ("100.00", "10.00", "20.00", "30.00", "40.00")],
        dlt645.VOLTAGE_A: [Decimal("229.8")],
        dlt645.CURRENT_A: [Decimal("-5.125")],
        dlt645.ACTIVE_POWER_TOTAL: [Decimal("1.1775")],
        dlt645.POWER_FACTOR_TOTAL: [Decimal("0.985")],
        dlt645.STATUS_WORD_3: [dlt645.STATUS3_RELAY_OPEN | dlt645.STATUS3_MONEY_PREPAID],
        dlt645.REMAINING_MONEY: [Decimal("88.50")],
        dlt645.PURCHASE_COUNT: [Decimal(12)],
    }
    for di, values in cases.items():
        reply = dlt645.decode_frame(dlt645.encode_frame(dlt645.read_reply(ADDRESS, di, values)))
        assert list(dlt645.parse_read_reply(reply, di)) == values


def test_negative_current_sets_the_sign_bit() -> None:
    reply = dlt645.read_reply(ADDRESS, dlt645.CURRENT_A, [Decimal("-5.125")])
    # 5.125 A = 005125 -> 25 51 00, sign bit on the last byte -> 25 51 80
    assert reply.data[4:] == hexbytes("25 51 80")


def test_error_reply_to_read_raises() -> None:
    reply = dlt645.error_reply(ADDRESS, dlt645.Function.READ, dlt645.ERROR_NO_DATA)
    with pytest.raises(ExceptionReply, match="no data requested"):
        dlt645.parse_read_reply(reply, dlt645.TOTAL_ENERGY)


def test_reply_for_another_di_is_unexpected() -> None:
    reply = dlt645.read_reply(ADDRESS, dlt645.VOLTAGE_A, [Decimal("220.0")])
    with pytest.raises(UnexpectedReply):
        dlt645.parse_read_reply(reply, dlt645.TOTAL_ENERGY)


def test_unknown_di_is_typed() -> None:
    with pytest.raises(UnknownDataIdentifier):
        dlt645.read_request(ADDRESS, 0x12345678)


def test_addresses_are_validated_and_padded() -> None:
    assert dlt645.normalise_address("12345678") == "000012345678"
    with pytest.raises(EncodeError):
        dlt645.normalise_address("12345678901234")
    with pytest.raises(EncodeError):
        dlt645.encode_frame(dlt645.Dlt645Frame("12", 0x11))


# --- stream behaviour -------------------------------------------------------

REQUEST = dlt645.encode_frame(dlt645.read_request(ADDRESS, dlt645.TOTAL_ENERGY))
REPLY = dlt645.encode_frame(dlt645.read_reply(ADDRESS, dlt645.TOTAL_ENERGY, [Decimal("1.00")]))


def test_frame_fed_byte_by_byte_appears_only_when_complete() -> None:
    framer = dlt645.Dlt645Framer()
    for byte in REPLY[:-1]:
        framer.feed(bytes([byte]))
        assert framer.next_frame() is None
    framer.feed(REPLY[-1:])
    frame = framer.next_frame()
    assert frame is not None and frame.control == 0x91
    assert framer.next_frame() is None


def test_concatenated_frames_come_out_one_by_one() -> None:
    framer = dlt645.Dlt645Framer()
    framer.feed(REQUEST + REPLY + REQUEST)
    controls = [f.control for f in framer.frames()]
    assert controls == [0x11, 0x91, 0x11]


def test_leading_and_trailing_garbage_is_skipped() -> None:
    framer = dlt645.Dlt645Framer()
    # 0x68 inside the garbage must not fool the framer (no second 0x68 seven bytes on).
    framer.feed(b"\x00\x68\x01\x02garbage" + REPLY + b"\x16\x99")
    frame = framer.next_frame()
    assert frame is not None and frame.control == 0x91
    assert framer.next_frame() is None
    assert framer.buffered == 0
    assert framer.discarded_bytes > 0


def test_bad_checksum_raises_then_resyncs() -> None:
    damaged = bytearray(REPLY)
    damaged[-2] ^= 0xFF
    framer = dlt645.Dlt645Framer()
    framer.feed(bytes(damaged) + REQUEST)
    with pytest.raises(ChecksumError):
        framer.next_frame()
    frame = framer.next_frame()
    assert frame is not None and frame.control == 0x11


def test_decode_frame_of_partial_bytes_is_truncated() -> None:
    with pytest.raises(TruncatedFrame):
        dlt645.decode_frame(REPLY[:-3])
