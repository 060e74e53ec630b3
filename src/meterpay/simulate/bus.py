"""A virtual RS-485 bus: meters answering request frames, with fault injection."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from meterpay.protocols.errors import ProtocolError
from meterpay.protocols.framing import StreamFramer


class Responder[FrameT](Protocol):
    """A virtual meter's protocol side (see :mod:`meterpay.simulate.meters`)."""

    protocol: str

    def framer(self) -> StreamFramer[FrameT]: ...

    def encode(self, frame: FrameT) -> bytes: ...

    def is_command(self, frame: FrameT) -> bool: ...

    def handle(self, frame: FrameT) -> FrameT | None: ...


@dataclass
class FaultPlan:
    """What goes wrong on the wire.

    Rates are probabilities per request (seeded, reproducible); the ``*_next`` counters
    force the next N occurrences, for tests.

    - drop: the request never reaches the meter (no action, no reply)
    - lose_ack: a command (relay, valve, credit write) acts but its reply is lost
    - corrupt: the reply's checksum/CRC byte is flipped
    - split: the reply is written in pieces with short pauses
    - delay: seconds before every reply
    - disconnect_after: close the connection after this many replies
    """

    drop_rate: float = 0.0
    lose_ack_rate: float = 0.0
    corrupt_rate: float = 0.0
    split_rate: float = 0.0
    delay: float = 0.0
    disconnect_after: int | None = None
    seed: int | None = None
    drop_next: int = 0
    lose_ack_next: int = 0
    corrupt_next: int = 0
    split_next: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def _roll(self, rate: float, forced: str) -> bool:
        remaining: int = getattr(self, forced)
        if remaining > 0:
            setattr(self, forced, remaining - 1)
            return True
        return rate > 0 and self._random.random() < rate

    def drops(self) -> bool:
        return self._roll(self.drop_rate, "drop_next")

    def loses_ack(self) -> bool:
        return self._roll(self.lose_ack_rate, "lose_ack_next")

    def corrupts(self) -> bool:
        return self._roll(self.corrupt_rate, "corrupt_next")

    def splits(self) -> bool:
        return self._roll(self.split_rate, "split_next")


@dataclass(frozen=True, slots=True)
class Reply:
    chunks: tuple[bytes, ...]  # written with a short pause between chunks when split
    delay: float = 0.0


class VirtualBus:
    """Meters of one protocol sharing a bus (one serial server or DTU port)."""

    def __init__(self, responders: Sequence[Responder[Any]]) -> None:
        if not responders:
            raise ValueError("a bus needs at least one meter")
        protocols = {r.protocol for r in responders}
        if len(protocols) != 1:
            raise ValueError(f"one protocol per bus, got {sorted(protocols)}")
        self.responders = list(responders)
        self.protocol = protocols.pop()

    def session(self, faults: FaultPlan | None = None) -> BusSession:
        return BusSession(self, faults or FaultPlan())


class BusSession:
    """The bus as seen through one connection: its own framer, shared meters."""

    def __init__(self, bus: VirtualBus, faults: FaultPlan) -> None:
        self.bus = bus
        self.faults = faults
        self._framer: StreamFramer[Any] = bus.responders[0].framer()
        self.requests_seen = 0

    def feed(self, data: bytes) -> list[Reply]:
        self._framer.feed(data)
        replies: list[Reply] = []
        while True:
            try:
                request = self._framer.next_frame()
            except ProtocolError:
                continue  # a damaged request: real meters stay silent
            if request is None:
                return replies
            self.requests_seen += 1
            if self.faults.drops():
                continue
            for responder in self.bus.responders:
                reply = responder.handle(request)
                if reply is None:
                    continue
                if responder.is_command(request) and self.faults.loses_ack():
                    continue
                replies.append(self._shape(responder.encode(reply)))
        return replies  # pragma: no cover - loop exits via return

    def _shape(self, wire: bytes) -> Reply:
        if self.faults.corrupts():
            damaged = bytearray(wire)
            # The checksum is the last byte of a Modbus frame, second-to-last otherwise.
            damaged[-1 if self.bus.protocol == "modbus" else -2] ^= 0x5A
            wire = bytes(damaged)
        if self.faults.splits() and len(wire) > 2:
            cut = len(wire) // 3 or 1
            return Reply((wire[:cut], wire[cut : 2 * cut], wire[2 * cut :]), self.faults.delay)
        return Reply((wire,), self.faults.delay)
