"""DTU registration and heartbeat packets, and splitting them from tunnelled frames.

A 4G DTU (or a serial server in "TCP client" mode) connects *out* to the platform and
then tunnels RS-485 bytes transparently. Like common industrial DTUs, it identifies
itself with a *registration packet* sent once after connecting and keeps the link
alive with a *heartbeat packet* sent every N seconds. meterpay's packets are ASCII
lines::

    REG:<dtu-id>[,<key>=<value>]*\\r\\n      once, first thing after connecting
    HB:<dtu-id>\\r\\n                         every heartbeat interval (default 60 s)

    dtu-id   1-32 characters of A-Z a-z 0-9 _ . -
    key      1-16 characters of a-z 0-9 _      (e.g. imei, iccid, fw, csq)
    value    0-40 characters of A-Z a-z 0-9 _ . -
    a whole packet is at most 160 bytes including CRLF

    example  REG:DTU-0001,imei=861234567890123,iccid=89860012345678901234,fw=1.2.0\\r\\n
             HB:DTU-0001\\r\\n

The platform sends nothing back for either packet. Meter frames cannot be mistaken
for these packets: DL/T 645 and CJ/T 188 frames start with FE/68, and a Modbus-RTU
frame starting with ``R`` (unit 0x52) or ``H`` (unit 0x48) would need function code
0x45 or 0x42, which meters do not use. Inside a frame the sequence could occur by
chance, so the platform only accepts heartbeats that carry the registered id.

:class:`DtuStreamSplitter` separates packets from tunnelled bytes in a stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from meterpay.protocols.errors import EncodeError

REGISTRATION_PREFIX: Final = b"REG:"
HEARTBEAT_PREFIX: Final = b"HB:"
TERMINATOR: Final = b"\r\n"
MAX_PACKET_LENGTH: Final = 160

_DTU_ID = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_ATTRIBUTE = re.compile(r"([a-z0-9_]{1,16})=([A-Za-z0-9_.\-]{0,40})")


@dataclass(frozen=True, slots=True)
class Registration:
    dtu_id: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    dtu_id: str


@dataclass(frozen=True, slots=True)
class TunnelData:
    data: bytes


type DtuEvent = Registration | Heartbeat | TunnelData


def encode_registration(dtu_id: str, attributes: dict[str, str] | None = None) -> bytes:
    if not _DTU_ID.fullmatch(dtu_id):
        raise EncodeError(f"invalid DTU id {dtu_id!r}")
    parts = [dtu_id]
    for key, value in (attributes or {}).items():
        if not _ATTRIBUTE.fullmatch(f"{key}={value}"):
            raise EncodeError(f"invalid registration attribute {key}={value}")
        parts.append(f"{key}={value}")
    packet = REGISTRATION_PREFIX + ",".join(parts).encode("ascii") + TERMINATOR
    if len(packet) > MAX_PACKET_LENGTH:
        raise EncodeError("registration packet too long")
    return packet


def encode_heartbeat(dtu_id: str) -> bytes:
    if not _DTU_ID.fullmatch(dtu_id):
        raise EncodeError(f"invalid DTU id {dtu_id!r}")
    return HEARTBEAT_PREFIX + dtu_id.encode("ascii") + TERMINATOR


def parse_packet(line: bytes) -> Registration | Heartbeat | None:
    """Parse one complete packet line (with CRLF); ``None`` if it is not a valid packet."""
    if not line.endswith(TERMINATOR) or len(line) > MAX_PACKET_LENGTH:
        return None
    try:
        text = line[: -len(TERMINATOR)].decode("ascii")
    except UnicodeDecodeError:
        return None
    if text.startswith("HB:"):
        dtu_id = text[3:]
        return Heartbeat(dtu_id) if _DTU_ID.fullmatch(dtu_id) else None
    if text.startswith("REG:"):
        dtu_id, *pairs = text[4:].split(",")
        if not _DTU_ID.fullmatch(dtu_id):
            return None
        attributes: dict[str, str] = {}
        for pair in pairs:
            match = _ATTRIBUTE.fullmatch(pair)
            if match is None:
                return None
            attributes[match.group(1)] = match.group(2)
        return Registration(dtu_id, attributes)
    return None


class DtuStreamSplitter:
    """Split a DTU's byte stream into packets and tunnelled bytes.

    ``accept_heartbeat_from`` (set once registered) restricts heartbeats to that id.
    Bytes that might be the start of a packet are held back until the packet completes
    or proves not to be one; a transport that sees no more bytes for a moment calls
    :meth:`flush` so a frame that merely ends in ``HB`` is not delayed.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.accept_heartbeat_from: str | None = None

    def feed(self, data: bytes) -> list[DtuEvent]:
        self._buffer += data
        events: list[DtuEvent] = []
        while self._buffer:
            start = self._next_packet_start()
            if start is None:
                hold = self._partial_prefix_length()
                self._emit_tunnel(events, len(self._buffer) - hold)
                break
            if start > 0:
                self._emit_tunnel(events, start)
                continue
            end = self._buffer.find(TERMINATOR, 0, MAX_PACKET_LENGTH)
            if end < 0:
                if len(self._buffer) < MAX_PACKET_LENGTH and self._could_be_packet():
                    break  # wait for the rest of the packet
                self._emit_tunnel(events, 1)
                continue
            packet = parse_packet(bytes(self._buffer[: end + 2]))
            if packet is None or not self._accepts(packet):
                self._emit_tunnel(events, 1)
                continue
            del self._buffer[: end + 2]
            events.append(packet)
        return events

    def flush(self) -> list[DtuEvent]:
        """Release held-back bytes as tunnelled data."""
        events: list[DtuEvent] = []
        self._emit_tunnel(events, len(self._buffer))
        return events

    @property
    def holding(self) -> bool:
        return bool(self._buffer)

    def _accepts(self, packet: Registration | Heartbeat) -> bool:
        if isinstance(packet, Heartbeat):
            expected = self.accept_heartbeat_from
            return expected is None or packet.dtu_id == expected
        return True

    def _could_be_packet(self) -> bool:
        allowed = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-,=:\r")
        return all(b in allowed for b in self._buffer)

    def _next_packet_start(self) -> int | None:
        positions = (self._buffer.find(REGISTRATION_PREFIX), self._buffer.find(HEARTBEAT_PREFIX))
        found = [p for p in positions if p >= 0]
        return min(found) if found else None

    def _partial_prefix_length(self) -> int:
        """Length of a tail that could grow into ``REG:`` or ``HB:``."""
        for prefix in (REGISTRATION_PREFIX, HEARTBEAT_PREFIX):
            for size in range(len(prefix) - 1, 0, -1):
                if self._buffer.endswith(prefix[:size]):
                    return size
        return 0

    def _emit_tunnel(self, events: list[DtuEvent], count: int) -> None:
        if count <= 0:
            return
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        if events and isinstance(events[-1], TunnelData):
            events[-1] = TunnelData(events[-1].data + chunk)
        else:
            events.append(TunnelData(chunk))
