"""The life of a bill, as pure rules: its states, how payments settle it, when it is overdue.

- A bill is drafted, confirmed by finance (and may be un-confirmed back to a draft), issued
  to the customer, then paid. A draft or a confirmed bill that is wrong is voided; an issued
  or paid bill is never edited or voided: it is credited (a credit note cancels it) and a
  corrected bill is issued in its place.
- Payments settle the oldest bills first: what the customer still owes is the unpaid part of
  the newest bills (:func:`payment_allocation`).
- A bill is overdue once today is past its due date plus the grace days.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType


class BillStatus(StrEnum):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    ISSUED = "issued"
    PAID = "paid"
    CREDITED = "credited"  # cancelled by a credit note; a corrected bill is issued in its place
    VOID = "void"  # a draft discarded before it was issued


TRANSITIONS: Mapping[BillStatus, frozenset[BillStatus]] = MappingProxyType(
    {
        BillStatus.DRAFT: frozenset({BillStatus.CONFIRMED, BillStatus.VOID}),
        BillStatus.CONFIRMED: frozenset({BillStatus.ISSUED, BillStatus.DRAFT, BillStatus.VOID}),
        BillStatus.ISSUED: frozenset({BillStatus.PAID, BillStatus.CREDITED}),
        BillStatus.PAID: frozenset({BillStatus.CREDITED}),
        BillStatus.CREDITED: frozenset(),
        BillStatus.VOID: frozenset(),
    }
)


class TransitionError(ValueError):
    """A status change the bill's life does not allow."""


class PaymentAllocationError(ValueError):
    """Owed or due amounts that are not whole, non-negative minor units, or repeated bills."""


def _a(status: BillStatus) -> str:
    return f"an {status}" if status[0] in "aeiou" else f"a {status}"


def _refusal(current: BillStatus, target: BillStatus) -> str:
    if current is target:
        return f"the bill is already {current}"
    if current in (BillStatus.CREDITED, BillStatus.VOID):
        return f"{_a(current)} bill is final; make a new bill instead"
    if current in (BillStatus.ISSUED, BillStatus.PAID):
        undo = "be voided" if target is BillStatus.VOID else f"go back to {target}"
        return f"{_a(current)} bill cannot {undo}; issue a credit note and re-issue it"
    if target is BillStatus.ISSUED:
        return "a draft must be confirmed before it is issued"
    if target is BillStatus.PAID:
        return f"{_a(current)} bill cannot be paid before it is issued"
    if target is BillStatus.CREDITED:
        return f"{_a(current)} bill has not been issued, so there is nothing to credit; void it"
    return f"{_a(current)} bill cannot become {target}"  # pragma: no cover - all pairs above


def check_transition(*, current: BillStatus, target: BillStatus) -> None:
    """Raise TransitionError unless a bill may go from ``current`` to ``target``."""
    current, target = BillStatus(current), BillStatus(target)
    if target not in TRANSITIONS[current]:
        raise TransitionError(_refusal(current, target))


def _minor(value: object, *, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PaymentAllocationError(f"{what} must be an int of minor units ≥ 0, got {value!r}")
    return value


def payment_allocation(*, owed_minor: int, bills: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The unpaid part of each open bill, given what the customer still owes in all.

    ``bills`` are ``(key, due amount)``, oldest first. The owed amount is laid on the newest
    bills first, so payments count as settling the oldest bills first. Each unpaid part lies
    between 0 and the bill's due amount, and they sum to ``min(owed, sum of dues)``.
    """
    remaining = _minor(owed_minor, what="the amount owed")
    unpaid: dict[str, int] = {}
    for key, due in bills:
        if key in unpaid:
            raise PaymentAllocationError(f"bill {key!r} is listed twice")
        unpaid[key] = _minor(due, what=f"the due amount of bill {key!r}")
    for key in reversed(unpaid):
        part = min(unpaid[key], remaining)
        unpaid[key] = part
        remaining -= part
    return unpaid


def _grace_end(*, due_on: date, grace_days: int) -> date:
    if not isinstance(grace_days, int) or isinstance(grace_days, bool) or grace_days < 0:
        raise ValueError(f"grace days must be an int ≥ 0, got {grace_days!r}")
    return due_on + timedelta(days=grace_days)


def overdue(*, due_on: date, today: date, grace_days: int) -> bool:
    """Overdue once ``today`` is after the due date plus the grace days."""
    return today > _grace_end(due_on=due_on, grace_days=grace_days)


def days_overdue(*, due_on: date, today: date, grace_days: int) -> int:
    """Days since the grace period ended (0 while not overdue), so ``overdue`` iff > 0."""
    return max(0, (today - _grace_end(due_on=due_on, grace_days=grace_days)).days)
