"""Sharing an amount or a quantity among members so that the parts sum exactly to the whole.

Used for the public-area share (公摊) and the line loss (线损) of a building, and for any
amount a manager splits between rooms. Rules (also in docs/billing.md):

- A member's weight comes from the rule: ``ratio`` (an agreed ratio), ``area`` (the room's
  m²), ``usage`` (the member's own consumption in the period) or ``equal`` (1 each).
- The whole is shared by the largest-remainder (Hamilton) method on exact rationals: each
  part first gets ``floor(total x weight / sum of weights)`` units, then the units left over
  go one each to the parts with the largest remainders; equal remainders favour the earlier
  member, so the result depends only on the members' order, never on chance.
- A negative whole (a credit to share) is split as its absolute value and negated, so the
  same members receive the larger parts either way.
- The parts always sum to the whole; each part is within one unit of its exact share; a
  member of weight 0 gets 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction

RATIO_QUANTUM = Decimal("0.000001")
QUANTITY_QUANTUM = Decimal("0.01")


class AllocationError(ValueError):
    """Input that cannot be shared: no members, a missing or negative weight, all weights 0."""


class Rule(StrEnum):
    RATIO = "ratio"
    AREA = "area"
    USAGE = "usage"
    EQUAL = "equal"


@dataclass(frozen=True, slots=True)
class Member:
    """One participant in a split; the rule reads the field it needs."""

    key: str
    ratio: Decimal | None = None
    area_m2: Decimal | None = None
    usage: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Share:
    """A member's part: ``ratio`` is weight / sum of weights rounded for display only."""

    key: str
    weight: Decimal
    ratio: Decimal
    quantity: Decimal
    amount_minor: int


def _checked_number(value: object, *, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise AllocationError(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise AllocationError(f"{what} is not a number ({value})")
    return value


def weights_for(*, rule: Rule, members: Sequence[Member]) -> list[Decimal]:
    """The weight of every member under ``rule``, in member order; raise AllocationError."""
    if not members:
        raise AllocationError("there are no members to share among")
    seen: set[str] = set()
    for member in members:
        if member.key in seen:
            raise AllocationError(f"member {member.key!r} is listed twice")
        seen.add(member.key)
    match Rule(rule):
        case Rule.EQUAL:
            return [Decimal(1)] * len(members)
        case Rule.AREA:
            weights = []
            for member in members:
                if member.area_m2 is None:
                    raise AllocationError(
                        f"member {member.key!r}: no area is recorded; "
                        "the area rule needs every member's area"
                    )
                area = _checked_number(member.area_m2, what=f"member {member.key!r}: the area")
                if area <= 0:
                    raise AllocationError(
                        f"member {member.key!r}: area is {area} m²; "
                        "the area rule needs every member's area"
                    )
                weights.append(area)
            return weights
        case Rule.USAGE:
            weights = []
            for member in members:
                if member.usage is None:
                    raise AllocationError(
                        f"member {member.key!r}: no usage is recorded; "
                        "the usage rule needs every member's consumption in the period"
                    )
                usage = _checked_number(member.usage, what=f"member {member.key!r}: the usage")
                if usage < 0:
                    raise AllocationError(
                        f"member {member.key!r}: usage is {usage}, below zero; "
                        "check the member's readings"
                    )
                weights.append(usage)
            if not any(weights):
                raise AllocationError("no member used anything in the period; choose another rule")
            return weights
        case Rule.RATIO:
            weights = []
            for member in members:
                if member.ratio is None:
                    raise AllocationError(
                        f"member {member.key!r}: no ratio is set; "
                        "the ratio rule needs every member's ratio"
                    )
                ratio = _checked_number(member.ratio, what=f"member {member.key!r}: the ratio")
                if ratio < 0:
                    raise AllocationError(
                        f"member {member.key!r}: ratio is {ratio}; ratios cannot be negative"
                    )
                weights.append(ratio)
            if not any(weights):
                raise AllocationError("every member's ratio is 0; give at least one a ratio")
            return weights
    raise AllocationError(f"unknown rule {rule!r}")  # pragma: no cover - exhaustive above


def _checked_weights(weights: Sequence[Decimal]) -> list[Fraction]:
    if not weights:
        raise AllocationError("there are no weights to share by")
    exact = []
    for position, weight in enumerate(weights, start=1):
        value = _checked_number(weight, what=f"weight {position}")
        if value < 0:
            raise AllocationError(f"weight {position} is {value}; weights cannot be negative")
        exact.append(Fraction(value))
    if sum(exact) == 0:
        raise AllocationError("every weight is 0; there is nothing to share by")
    return exact


def split_minor(*, total_minor: int, weights: Sequence[Decimal]) -> list[int]:
    """Split ``total_minor`` by ``weights`` with the largest-remainder method (see module doc).

    Ties between equal remainders go to the earlier position. A negative total is split as its
    absolute value and negated.
    """
    if not isinstance(total_minor, int) or isinstance(total_minor, bool):
        raise AllocationError(f"the total must be an int of minor units, got {total_minor!r}")
    exact_weights = _checked_weights(weights)
    sign = -1 if total_minor < 0 else 1
    whole = abs(total_minor)
    weight_sum = sum(exact_weights)
    exact_parts = [whole * weight / weight_sum for weight in exact_weights]
    parts = [math.floor(part) for part in exact_parts]
    left_over = whole - sum(parts)
    # Largest remainder first; on equal remainders the earlier position first.
    order = sorted(range(len(parts)), key=lambda i: (-(exact_parts[i] - parts[i]), i))
    for position in order[:left_over]:
        parts[position] += 1
    return [sign * part for part in parts]


def split_quantity(
    *, total: Decimal, weights: Sequence[Decimal], quantum: Decimal = QUANTITY_QUANTUM
) -> list[Decimal]:
    """Split a quantity (kWh, m³) by ``weights`` in steps of ``quantum``; the parts sum to it.

    ``total`` must be a whole number of quanta, so that an exact split exists.
    """
    total = _checked_number(total, what="the total quantity")
    quantum = _checked_number(quantum, what="the quantum")
    if quantum <= 0:
        raise AllocationError(f"the quantum must be positive, got {quantum}")
    units = total / quantum
    if units != units.to_integral_value():
        raise AllocationError(f"the total {total} is not a whole number of steps of {quantum}")
    return [
        Decimal(part) * quantum for part in split_minor(total_minor=int(units), weights=weights)
    ]


def quantum_of(quantity: Decimal) -> Decimal:
    """The step in which ``quantity`` is shared: 0.01, or finer when it has more decimals."""
    exponent = quantity.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return Decimal(1).scaleb(-places)


def allocate(
    *, rule: Rule, members: Sequence[Member], total_minor: int, total_quantity: Decimal
) -> list[Share]:
    """Share an amount and a quantity among ``members`` under ``rule``; shares in member order.

    The quantity is shared in steps of 0.01, or finer when ``total_quantity`` has more decimals,
    so the shares always sum to it.
    """
    weights = weights_for(rule=rule, members=members)
    total_quantity = _checked_number(total_quantity, what="the total quantity")
    amounts = split_minor(total_minor=total_minor, weights=weights)
    quantities = split_quantity(
        total=total_quantity, weights=weights, quantum=quantum_of(total_quantity)
    )
    weight_sum = sum(weights, Decimal(0))
    return [
        Share(
            key=member.key,
            weight=weight,
            ratio=(weight / weight_sum).quantize(RATIO_QUANTUM, rounding=ROUND_HALF_UP),
            quantity=quantity,
            amount_minor=amount,
        )
        for member, weight, quantity, amount in zip(
            members, weights, quantities, amounts, strict=True
        )
    ]
