"""What a bill is made of before it is stored: :class:`LineDraft`, one per bill line.

Every part of the month end (consumption, charge items, public-area shares, line loss,
adjustments) makes drafts; a bill run stores them as :class:`~meterpay.apps.billing.models.
BillLine` rows. Amounts are int minor units, rounded once per line; unit prices are int
millionths (``meterpay.core.money.PRICE_QUANTUM``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meterpay.apps.billing.models import BillLine
from meterpay.core.ledger import ChargeType
from meterpay.core.money import round_price

_MICRO = Decimal(1_000_000)

Section = BillLine.Section


def price_micro(price: Decimal) -> int:
    """A unit price as int millionths (rounded half-up to 6 places once)."""
    return int(round_price(price) * _MICRO)


def micro_price(micro: int) -> Decimal:
    return (Decimal(micro) / _MICRO).quantize(Decimal("0.000001"))


@dataclass(frozen=True, slots=True)
class LineDraft:
    """One bill line to be. ``posted``: the bill books it when issued; otherwise it is in the
    ledger already (real-time deductions, fees) and the bill only shows it. ``settles``:
    "wallet" or "receivable" (see ``Bill.Settles``)."""

    section: str
    label: str
    amount_minor: int
    charge_type: ChargeType
    settles: str
    posted: bool
    quantity: Decimal | None = None
    unit: str = ""
    unit_price_micro: int | None = None
    meter_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self, *, bill_id: int, position: int) -> BillLine:
        return BillLine(
            bill_id=bill_id,
            position=position,
            section=self.section,
            label=self.label[:200],
            quantity=self.quantity,
            unit=self.unit,
            unit_price_micro=self.unit_price_micro,
            amount_minor=self.amount_minor,
            charge_type=str(self.charge_type),
            settles=self.settles,
            posted=self.posted,
            meter_id=self.meter_id,
            detail=self.detail,
        )
