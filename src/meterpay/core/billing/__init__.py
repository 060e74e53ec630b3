"""Pure month-end billing rules: sharing, line loss, charge items, review and bill life.

* :mod:`.allocation` — share an amount or a quantity among members (公摊), parts summing exactly.
* :mod:`.line_loss` — the loss (线损) between a grid meter and its sub-meters, and its bill.
* :mod:`.charges` — custom charge items (rent, property fee...) due in a billing period.
* :mod:`.review` — the checks shown before a bill run is confirmed.
* :mod:`.lifecycle` — bill states, payment allocation over open bills, overdue.

The rules are explained in docs/billing.md.
"""

from meterpay.core.billing.allocation import (
    AllocationError,
    Member,
    Rule,
    Share,
    allocate,
    split_minor,
    split_quantity,
    weights_for,
)
from meterpay.core.billing.charges import (
    Basis,
    ChargeDue,
    ChargeError,
    ChargeItemRule,
    Frequency,
    billing_cycle,
    charges_due,
)
from meterpay.core.billing.lifecycle import (
    TRANSITIONS,
    BillStatus,
    PaymentAllocationError,
    TransitionError,
    check_transition,
    days_overdue,
    overdue,
    payment_allocation,
)
from meterpay.core.billing.line_loss import (
    GridPeriod,
    LineLoss,
    LineLossError,
    LossBill,
    LossLine,
    grid_consumption,
    line_loss,
    loss_bill,
)
from meterpay.core.billing.review import (
    BillFigures,
    Review,
    ReviewError,
    outlier_keys,
    review_run,
)

__all__ = [
    "TRANSITIONS",
    "AllocationError",
    "Basis",
    "BillFigures",
    "BillStatus",
    "ChargeDue",
    "ChargeError",
    "ChargeItemRule",
    "Frequency",
    "GridPeriod",
    "LineLoss",
    "LineLossError",
    "LossBill",
    "LossLine",
    "Member",
    "PaymentAllocationError",
    "Review",
    "ReviewError",
    "Rule",
    "Share",
    "TransitionError",
    "allocate",
    "billing_cycle",
    "charges_due",
    "check_transition",
    "days_overdue",
    "grid_consumption",
    "line_loss",
    "loss_bill",
    "outlier_keys",
    "overdue",
    "payment_allocation",
    "review_run",
    "split_minor",
    "split_quantity",
    "weights_for",
]
