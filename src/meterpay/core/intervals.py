"""Interval rules: which consumption a new register read closes (pure, no Django).

Both ingestion paths use these rules: ``register_read_record`` (one read, e.g. manual entry)
and ``register_reads_record_batch`` (the gateway's buffered reads). ``docs/readings.md``
tells the whole story; in short:

- an interval is derived only when a read is the meter's newest, from the newest earlier
  *good* read (a first read, or one whose interval was booked) of the same meter
- delta >= 0 and plausible (<= max demand x hours + 0.02): ``ok``; plausible but the span is
  longer than 1.5 x the expected poll interval: ``gap`` (booked, spread over the span)
- the register fell from the top tenth of its range and the wrapped delta is plausible:
  ``rollover`` (booked); fell otherwise: ``negative`` (flagged, not booked)
- above the plausible maximum: ``spike`` (flagged, not booked)
- a flagged read is no baseline, but if the next read agrees with it (the jump was real),
  the interval from the flagged read is booked with the note "follows an accepted jump"
- consumption = register delta x multiplier (the CT ratio), to 4 places

:class:`MeterHistory` is all a meter's past that the rules need (its newest read and its
newest good read); :func:`derive` folds one read into it. Folding reads one at a time gives
the same intervals as the database queries of the single-read path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

FOUR_PLACES: Final = Decimal("0.0001")
#: A rollover is only believed when the previous value was in the top tenth of the register.
ROLLOVER_ZONE: Final = Decimal("0.9")
#: Registers are truncated to 0.01; a delta this small is never a spike.
RESOLUTION_ALLOWANCE: Final = Decimal("0.02")
#: A span longer than this many expected intervals means at least one read is missing.
GAP_FACTOR: Final = Decimal("1.5")
NOTE_LENGTH: Final = 200


class Status(StrEnum):
    OK = "ok"
    ROLLOVER = "rollover"
    GAP = "gap"
    NEGATIVE = "negative"
    SPIKE = "spike"


BOOKED_STATUSES: Final = frozenset({Status.OK, Status.ROLLOVER, Status.GAP})


@dataclass(frozen=True, slots=True)
class MeterRules:
    """What the rules need to know about one meter."""

    modulus: Decimal  # what the register shows after its maximum (1 000 000 by default)
    max_demand: Decimal  # kW or m³/h, before the CT ratio
    expected: timedelta  # how often the meter is expected to report
    multiplier: int = 1


@dataclass(frozen=True, slots=True)
class Point:
    """A stored read: when, the total register, and the caller's key for it (e.g. its id)."""

    read_at: datetime
    total: Decimal
    key: object = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    delta: Decimal
    note: str

    @property
    def booked(self) -> bool:
        return self.status in BOOKED_STATUSES


@dataclass(frozen=True, slots=True)
class Derived:
    """The interval a read closes."""

    start: Point
    end: Point
    status: Status
    register_delta: Decimal  # to 4 places
    multiplier: int
    consumption: Decimal  # register delta x multiplier, to 4 places
    booked: bool
    note: str


@dataclass(frozen=True, slots=True)
class MeterHistory:
    """A meter's newest stored read and its newest good read (``None``: no reads yet)."""

    newest: Point | None = None
    good: Point | None = None


def judge(rules: MeterRules, start: Point, end: Point) -> Verdict:
    """The status of the span ``start`` → ``end`` (``end`` later than ``start``)."""
    span = end.read_at - start.read_at
    hours = Decimal(span.total_seconds()) / 3600
    limit = rules.max_demand * hours + RESOLUTION_ALLOWANCE
    delta = end.total - start.total
    if delta < 0:
        modulus = rules.modulus
        rolled = modulus - start.total + end.total
        if start.total >= modulus * ROLLOVER_ZONE and rolled <= limit:
            return Verdict(Status.ROLLOVER, rolled, f"rolled over at {modulus}")
        return Verdict(Status.NEGATIVE, delta, f"register fell from {start.total} to {end.total}")
    if delta > limit:
        rate = (delta / hours).quantize(Decimal("0.01")) if hours else delta
        return Verdict(Status.SPIKE, delta, f"{rate} per hour exceeds the maximum demand")
    if Decimal(span.total_seconds()) > Decimal(rules.expected.total_seconds()) * GAP_FACTOR:
        return Verdict(Status.GAP, delta, f"{span} without reads; spread evenly over the span")
    return Verdict(Status.OK, delta, "")


def interval_between(
    rules: MeterRules, previous: Point | None, good: Point | None, read: Point
) -> Derived | None:
    """The interval ``read`` closes, given the newest earlier read and newest earlier good read.

    ``None`` for a meter's first read (its baseline).
    """
    if previous is None:
        return None
    baseline = good or previous
    start, verdict = baseline, judge(rules, baseline, read)
    if not verdict.booked and previous != baseline:
        # The previous read was flagged. If this read agrees with it, the jump was real
        # (a register reset, a glitch-free correction): carry on from the flagged read.
        retry = judge(rules, previous, read)
        if retry.booked:
            start, verdict = (
                previous,
                Verdict(retry.status, retry.delta, "follows an accepted jump"),
            )
    return Derived(
        start=start,
        end=read,
        status=verdict.status,
        register_delta=verdict.delta.quantize(FOUR_PLACES),
        multiplier=rules.multiplier,
        consumption=(verdict.delta * rules.multiplier).quantize(FOUR_PLACES),
        booked=verdict.booked,
        note=verdict.note[:NOTE_LENGTH],
    )


def derive(
    rules: MeterRules, history: MeterHistory, read: Point
) -> tuple[MeterHistory, Derived | None]:
    """Fold one newly stored read (not a repeat of a stored moment) into a meter's history.

    A read older than the newest (a late arrival) derives nothing, but it has no interval,
    so it counts as a good read for the reads that follow, like a first read.
    """
    newest, good = history.newest, history.good
    if newest is not None and read.read_at < newest.read_at:
        if good is None or read.read_at > good.read_at:
            good = read
        return replace(history, good=good), None
    interval = interval_between(rules, newest, good, read)
    if interval is None or interval.booked:
        good = read
    return MeterHistory(newest=read, good=good), interval


def derive_all(
    rules: MeterRules, history: MeterHistory, reads: list[Point]
) -> tuple[MeterHistory, list[Derived]]:
    """Fold reads in arrival order; the intervals they close, in that order."""
    intervals: list[Derived] = []
    for read in reads:
        history, interval = derive(rules, history, read)
        if interval is not None:
            intervals.append(interval)
    return history, intervals
