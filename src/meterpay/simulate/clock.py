"""Clocks for simulations: real time, scaled real time and hand-driven."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class ScaledClock:
    """Wall-clock time running ``speed`` times faster from ``start`` (meter local time)."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start or datetime.now().replace(microsecond=0)
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._origin) * self.speed
        return self.start + timedelta(seconds=elapsed)


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment
