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

Every comparison is exact: spans in whole microseconds, limits compared as products (never a
quotient rounded to the context's precision), so a read on a boundary gets its verdict from
the numbers alone. The values are NamedTuples, not dataclasses: the gateway folds tens of
thousands of reads a second through :func:`derive`, and a tuple is the cheapest object to make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Final, NamedTuple

FOUR_PLACES: Final = Decimal("0.0001")
#: A rollover is only believed when the previous value was in the top tenth of the register.
ROLLOVER_ZONE: Final = Decimal("0.9")
#: Registers are truncated to 0.01; a delta this small is never a spike.
RESOLUTION_ALLOWANCE: Final = Decimal("0.02")
#: A span longer than this many expected intervals means at least one read is missing.
GAP_FACTOR: Final = Fraction(3, 2)
NOTE_LENGTH: Final = 200
_MICROSECOND: Final = timedelta(microseconds=1)
_MICROSECONDS_PER_HOUR: Final = 3_600_000_000


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
    #: Worked out once: a span of more whole microseconds than this is a gap (a whole number
    #: of µs exceeds GAP_FACTOR x expected exactly when it exceeds its floor).
    gap_after_us: int = field(init=False, repr=False, compare=False)
    rollover_from: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gap_after = math.floor((self.expected // _MICROSECOND) * GAP_FACTOR)
        object.__setattr__(self, "gap_after_us", gap_after)
        object.__setattr__(self, "rollover_from", self.modulus * ROLLOVER_ZONE)


class Point(NamedTuple):
    """A stored read: when, the total register, and the caller's key for it (e.g. its id)."""

    read_at: datetime
    total: Decimal
    key: object = None


class Verdict(NamedTuple):
    status: Status
    delta: Decimal
    note: str

    @property
    def booked(self) -> bool:
        return self.status in BOOKED_STATUSES


class Derived(NamedTuple):
    """The interval a read closes."""

    start: Point
    end: Point
    status: Status
    register_delta: Decimal  # to 4 places
    multiplier: int
    consumption: Decimal  # register delta x multiplier, to 4 places
    booked: bool
    note: str


class MeterHistory(NamedTuple):
    """A meter's newest stored read and its newest good read (``None``: no reads yet)."""

    newest: Point | None = None
    good: Point | None = None


def _plausible(rules: MeterRules, delta: Decimal, span_us: int) -> bool:
    """delta <= max demand x hours + the resolution allowance, compared as products (no
    quotient to round). Exact in the default 28-digit context: a register delta has at most
    14 digits (x 3.6e9: 24), a ceiling at most 10 (x a span of up to 3000 years in µs: 27)."""
    return (delta - RESOLUTION_ALLOWANCE) * _MICROSECONDS_PER_HOUR <= rules.max_demand * span_us


def judge(rules: MeterRules, start: Point, end: Point) -> Verdict:
    """The status of the span ``start`` → ``end`` (``end`` later than ``start``)."""
    span_us = (end.read_at - start.read_at) // _MICROSECOND
    delta = end.total - start.total
    if delta < 0:
        modulus = rules.modulus
        rolled = modulus - start.total + end.total
        if start.total >= rules.rollover_from and _plausible(rules, rolled, span_us):
            return Verdict(Status.ROLLOVER, rolled, f"rolled over at {modulus}")
        return Verdict(Status.NEGATIVE, delta, f"register fell from {start.total} to {end.total}")
    if not _plausible(rules, delta, span_us):
        hours = Decimal(span_us) / _MICROSECONDS_PER_HOUR
        rate = (delta / hours).quantize(Decimal("0.01")) if hours else delta
        return Verdict(Status.SPIKE, delta, f"{rate} per hour exceeds the maximum demand")
    if span_us > rules.gap_after_us:  # more than GAP_FACTOR x the expected interval
        span = end.read_at - start.read_at
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
    status, delta, note = verdict
    return Derived(
        start,
        read,
        status,
        delta.quantize(FOUR_PLACES),
        rules.multiplier,
        (delta * rules.multiplier).quantize(FOUR_PLACES),
        status in BOOKED_STATUSES,
        note[:NOTE_LENGTH],
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
        return MeterHistory(newest, good), None
    interval = interval_between(rules, newest, good, read)
    if interval is None or interval.booked:
        good = read
    return MeterHistory(read, good), interval
