"""The checks a finance clerk sees before confirming a bill run.

Each bill is compared with the same account's previous bill and with the rest of the run.
Flags are machine-readable codes (also in docs/billing.md):

- ``no_previous``: there is no previous bill to compare with.
- ``jump`` / ``drop``: the total rose / fell by at least ``jump_percent`` of the previous
  total *and* by at least ``minimum_change_minor``, so small bills do not raise noise. After a
  previous total of 0, any rise of at least the minimum is a jump.
- ``zero_consumption``: an open account with 0 kWh and 0 m³ (a stuck or unread meter?).
- ``negative_total``: the bill is a credit.
- ``outlier``: in a run of at least 5 bills, the total lies more than 3 median absolute
  deviations (raw, unscaled) above the run's median, and at least ``minimum_change_minor``
  above it (so a run of identical bills, whose deviation is 0, does not flag a 1-fen difference).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

PERCENT_QUANTUM = Decimal("0.1")
OUTLIER_MIN_BILLS = 5
OUTLIER_DEVIATIONS = 3


class ReviewError(ValueError):
    """Figures that cannot be reviewed: keys that repeat or do not match, a bad threshold."""


@dataclass(frozen=True, slots=True)
class BillFigures:
    """What a review needs of one bill; ``account_open`` is False for a closed account."""

    key: str
    total_minor: int
    kwh: Decimal
    m3: Decimal
    account_open: bool = True


@dataclass(frozen=True, slots=True)
class Review:
    """``change_percent`` is relative to the previous total (1 decimal); None without one."""

    key: str
    previous_total_minor: int | None
    change_minor: int | None
    change_percent: Decimal | None
    flags: tuple[str, ...]


def review(
    *,
    current: BillFigures,
    previous: BillFigures | None,
    jump_percent: Decimal = Decimal(50),
    minimum_change_minor: int = 5000,
) -> Review:
    """The review of one bill against the account's previous bill."""
    if jump_percent <= 0:
        raise ReviewError(f"the jump threshold must be a positive percent, got {jump_percent}")
    if minimum_change_minor < 0:
        raise ReviewError(
            f"the minimum change cannot be negative, got {minimum_change_minor} minor units"
        )
    flags: list[str] = []
    previous_total = change = percent = None
    if previous is None:
        flags.append("no_previous")
    else:
        previous_total = previous.total_minor
        change = current.total_minor - previous_total
        base = abs(previous_total)
        if base:
            percent = (Decimal(change) * 100 / base).quantize(
                PERCENT_QUANTUM, rounding=ROUND_HALF_UP
            )
        # Exact comparison (change / base >= jump / 100) rather than on the rounded percent.
        large = abs(change) >= minimum_change_minor and abs(change) * 100 >= jump_percent * base
        if large and change > 0:
            flags.append("jump")
        elif large and change < 0:
            flags.append("drop")
    if current.account_open and current.kwh == 0 and current.m3 == 0:
        flags.append("zero_consumption")
    if current.total_minor < 0:
        flags.append("negative_total")
    return Review(
        key=current.key,
        previous_total_minor=previous_total,
        change_minor=change,
        change_percent=percent,
        flags=tuple(flags),
    )


def outlier_keys(*, bills: Sequence[BillFigures], minimum_change_minor: int = 5000) -> set[str]:
    """Keys of the bills far above the run's median (see the module doc); none under 5 bills."""
    if len(bills) < OUTLIER_MIN_BILLS:
        return set()
    totals = [Decimal(bill.total_minor) for bill in bills]
    centre = median(totals)
    deviation = median(abs(total - centre) for total in totals)
    return {
        bill.key
        for bill, total in zip(bills, totals, strict=True)
        if total - centre > OUTLIER_DEVIATIONS * deviation
        and total - centre >= minimum_change_minor
    }


def review_run(
    *,
    current: Sequence[BillFigures],
    previous: Mapping[str, BillFigures],
    jump_percent: Decimal = Decimal(50),
    minimum_change_minor: int = 5000,
) -> list[Review]:
    """Review every bill of a run (in order); ``previous`` holds the previous bills by key."""
    repeated = sorted(
        key for key, count in Counter(bill.key for bill in current).items() if count > 1
    )
    if repeated:
        raise ReviewError(f"the run lists these bills more than once: {', '.join(repeated)}")
    outliers = outlier_keys(bills=current, minimum_change_minor=minimum_change_minor)
    reviews = []
    for bill in current:
        one = review(
            current=bill,
            previous=previous.get(bill.key),
            jump_percent=jump_percent,
            minimum_change_minor=minimum_change_minor,
        )
        if bill.key in outliers:
            one = replace(one, flags=(*one.flags, "outlier"))
        reviews.append(one)
    return reviews
