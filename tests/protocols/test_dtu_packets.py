"""DTU registration/heartbeat packets and splitting them out of tunnelled frames."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterpay.protocols import dlt645, modbus_rtu
from meterpay.protocols import dtu as packets
from meterpay.protocols.errors import EncodeError

REG = b"REG:DTU-0001,imei=861234567890123,fw=1.2.0\r\n"
HB = b"HB:DTU-0001\r\n"
FRAME = dlt645.encode_frame(dlt645.read_reply("000000000001", dlt645.VOLTAGE_A, [Decimal("220.0")]))


def tunnelled(events: list[packets.DtuEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, packets.TunnelData))


def test_encode_and_parse_packets() -> None:
    assert (
        packets.encode_registration("DTU-0001", {"imei": "861234567890123", "fw": "1.2.0"}) == REG
    )
    assert packets.encode_heartbeat("DTU-0001") == HB
    assert packets.parse_packet(REG) == packets.Registration(
        "DTU-0001", {"imei": "861234567890123", "fw": "1.2.0"}
    )
    assert packets.parse_packet(b"HB:bad id\r\n") is None
    with pytest.raises(EncodeError):
        packets.encode_heartbeat("x" * 33)


def test_packets_and_frames_interleaved_byte_by_byte() -> None:
    splitter = packets.DtuStreamSplitter()
    stream = REG + FRAME[:5] + HB + FRAME[5:] + HB
    events: list[packets.DtuEvent] = []
    for byte in stream:
        events += splitter.feed(bytes([byte]))
    events += splitter.flush()
    assert [type(e) for e in events if not isinstance(e, packets.TunnelData)] == [
        packets.Registration,
        packets.Heartbeat,
        packets.Heartbeat,
    ]
    assert tunnelled(events) == FRAME


def test_frame_ending_like_a_prefix_is_released_by_flush() -> None:
    splitter = packets.DtuStreamSplitter()
    data = b"\x01\x03\x02HB"  # arbitrary bytes that end in "HB"
    held = splitter.feed(data)
    assert tunnelled(held) == b"\x01\x03\x02" and splitter.holding
    assert tunnelled(splitter.flush()) == b"HB"


def test_heartbeat_from_another_id_is_tunnel_data_once_registered() -> None:
    splitter = packets.DtuStreamSplitter()
    splitter.accept_heartbeat_from = "DTU-0001"
    events = splitter.feed(b"HB:OTHER\r\n") + splitter.flush()
    assert tunnelled(events) == b"HB:OTHER\r\n"


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=20), st.binary(max_size=64))
def test_frames_survive_the_splitter_unchanged(registers: list[int], noise: bytes) -> None:
    frame = modbus_rtu.encode(modbus_rtu.read_registers_reply(1, registers))
    splitter = packets.DtuStreamSplitter()
    splitter.accept_heartbeat_from = "D1"
    events = splitter.feed(noise + frame) + splitter.flush()
    data = tunnelled(events)
    assert data.endswith(frame) or b"HB:D1\r\n" in noise or b"REG:" in noise
