"""Pure rules of the reports: time-of-use classification of intervals, roll-up buckets,
the roll-up cursor, month-on-month / year-on-year, and the energy-efficiency rules.

The reports app (``meterpay.apps.reports``) stores the roll-ups and reads them; everything
here works without the database (docs/reports.md).
"""

from meterpay.core.reports.compare import (
    Change,
    QuantityChange,
    previous_span,
    split_span,
    year_before,
)
from meterpay.core.reports.cursor import IdCursor
from meterpay.core.reports.rollup import (
    FIGURES,
    ConsumptionRollup,
    CostRollup,
    LocalClock,
    MeterContext,
    from_units,
    to_units,
)
from meterpay.core.reports.tou import SLOTS, TouClassifier

__all__ = [
    "FIGURES",
    "SLOTS",
    "Change",
    "ConsumptionRollup",
    "CostRollup",
    "IdCursor",
    "LocalClock",
    "MeterContext",
    "QuantityChange",
    "TouClassifier",
    "from_units",
    "previous_span",
    "split_span",
    "to_units",
    "year_before",
]
