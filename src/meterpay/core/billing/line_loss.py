"""The line loss (线损) of a supply (grid) meter over the sub-meters it feeds.

Rules (also in docs/billing.md):

- The grid consumption is ``(reading - previous reading) x multiplier`` (the CT/PT ratio).
  A grid reading below the previous one is an error, never a negative consumption.
- ``loss = grid kWh - metered kWh``, where metered kWh is the sum of every sub-meter behind
  the grid meter, public-area meters included. ``loss rate = loss / grid`` (a fraction,
  4 decimals), undefined when the grid meter measured nothing.
- A negative loss (the sub-meters measured more than the grid meter) points at a wrong or
  missing reading: it is flagged and never billed. A loss of zero has nothing to bill.
- A billable loss is priced once, ``round_money(loss kWh x unit price)``, and that amount and
  the loss kWh are shared among the members by :mod:`.allocation` (by usage by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from meterpay.core.billing.allocation import AllocationError, Member, Rule, allocate
from meterpay.core.money import round_money, to_minor

LOSS_RATE_QUANTUM = Decimal("0.0001")


class LineLossError(ValueError):
    """A grid reading that goes down, a negative consumption or price, a float."""


def _checked(value: object, *, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise LineLossError(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise LineLossError(f"{what} is not a number ({value})")
    return value


@dataclass(frozen=True, slots=True)
class GridPeriod:
    """Two successive readings of the grid meter; validated on creation."""

    previous_reading: Decimal
    reading: Decimal
    multiplier: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        previous = _checked(self.previous_reading, what="the previous grid reading")
        reading = _checked(self.reading, what="the grid reading")
        multiplier = _checked(self.multiplier, what="the grid meter's multiplier")
        if multiplier <= 0:
            raise LineLossError(f"the grid meter's multiplier must be positive, got {multiplier}")
        if reading < previous:
            raise LineLossError(f"the grid reading {reading} is below the previous one {previous}")

    @property
    def consumption(self) -> Decimal:
        return (self.reading - self.previous_reading) * self.multiplier


def grid_consumption(
    *, previous_reading: Decimal, reading: Decimal, multiplier: Decimal = Decimal(1)
) -> Decimal:
    """kWh through the grid meter between two readings; raise LineLossError if it went down."""
    return GridPeriod(
        previous_reading=previous_reading, reading=reading, multiplier=multiplier
    ).consumption


@dataclass(frozen=True, slots=True)
class LineLoss:
    """``loss_rate`` is a fraction (0.0350 is 3.5 %); None when the grid measured nothing."""

    grid_kwh: Decimal
    metered_kwh: Decimal
    loss_kwh: Decimal
    loss_rate: Decimal | None
    negative: bool
    billable: bool


def line_loss(*, grid_kwh: Decimal, metered_kwh: Decimal) -> LineLoss:
    """The loss between the grid meter and the sum of its sub-meters (public meters included)."""
    grid = _checked(grid_kwh, what="the grid consumption")
    metered = _checked(metered_kwh, what="the metered consumption")
    if grid < 0:
        raise LineLossError(f"the grid consumption cannot be negative, got {grid} kWh")
    if metered < 0:
        raise LineLossError(f"the metered consumption cannot be negative, got {metered} kWh")
    loss = grid - metered
    rate = None if grid == 0 else (loss / grid).quantize(LOSS_RATE_QUANTUM, rounding=ROUND_HALF_UP)
    return LineLoss(
        grid_kwh=grid,
        metered_kwh=metered,
        loss_kwh=loss,
        loss_rate=rate,
        negative=loss < 0,
        billable=loss > 0,
    )


@dataclass(frozen=True, slots=True)
class LossLine:
    """One member's part of the loss; ``usage_kwh`` is None when the rule did not need it."""

    key: str
    usage_kwh: Decimal | None
    ratio: Decimal
    loss_kwh: Decimal
    amount_minor: int


@dataclass(frozen=True, slots=True)
class LossBill:
    """The priced loss and its lines; ``reason`` says why nothing is billed (empty otherwise)."""

    loss: LineLoss
    unit_price: Decimal
    currency: str
    amount_minor: int
    lines: tuple[LossLine, ...]
    reason: str = ""


def _not_billable_reason(loss: LineLoss) -> str:
    if loss.negative:
        return (
            f"negative loss: the sub-meters measured {-loss.loss_kwh} kWh more than the grid "
            "meter; check the grid reading before billing"
        )
    return "no line loss: the sub-meters measured exactly what the grid meter did"


def loss_bill(
    *,
    loss: LineLoss,
    members: Sequence[Member],
    rule: Rule = Rule.USAGE,
    unit_price: Decimal,
    currency: str = "CNY",
) -> LossBill:
    """Price a billable loss and share it among ``members``; otherwise zero lines and a reason.

    A loss that is not billable is never shared, so members are not validated against the rule
    then (an empty building has no usage to share by, and nothing to share).
    """
    price = _checked(unit_price, what="the unit price")
    if price < 0:
        raise LineLossError(f"the unit price cannot be negative, got {price}")
    if not loss.billable:
        if not members:
            raise AllocationError("there are no members to share among")
        return LossBill(
            loss=loss,
            unit_price=price,
            currency=currency,
            amount_minor=0,
            lines=tuple(
                LossLine(
                    key=member.key,
                    usage_kwh=member.usage,
                    ratio=Decimal(0),
                    loss_kwh=Decimal(0),
                    amount_minor=0,
                )
                for member in members
            ),
            reason=_not_billable_reason(loss),
        )
    amount_minor = to_minor(round_money(loss.loss_kwh * price, currency), currency)
    shares = allocate(
        rule=rule, members=members, total_minor=amount_minor, total_quantity=loss.loss_kwh
    )
    return LossBill(
        loss=loss,
        unit_price=price,
        currency=currency,
        amount_minor=amount_minor,
        lines=tuple(
            LossLine(
                key=share.key,
                usage_kwh=member.usage,
                ratio=share.ratio,
                loss_kwh=share.quantity,
                amount_minor=share.amount_minor,
            )
            for member, share in zip(members, shares, strict=True)
        ),
    )
