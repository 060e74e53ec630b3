"""A room's fee status at a glance: one word (and, in the console, one colour) per account.

The room grid, the room page and the room state API share this one rule. From the most
urgent down, the first that holds:

- ``cut_off``: supply is cut (for balance, for an overdue bill or by an operator);
- ``arrears``: an issued bill is unpaid past its due date;
- ``meter_low``: a meter-side account whose meter reported money at or below alarm level 1
  (the meter holds the money, so the platform's wallet says nothing about it);
- ``overdrawn``: a prepaid wallet below zero (in its overdraft, not cut yet);
- ``alarm_3`` / ``alarm_2`` / ``alarm_1``: a prepaid wallet at or below that alarm level
  (the most severe level crossed; a policy with more than three levels shows them as 3);
- ``normal``: none of these (and always for a pre-set account: it does not bill yet).

Postpaid accounts run below zero by design: only a cut, or a bill past its due date, changes
their status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class FeeStatus(StrEnum):
    NORMAL = "normal"
    ALARM_1 = "alarm_1"
    ALARM_2 = "alarm_2"
    ALARM_3 = "alarm_3"
    OVERDRAWN = "overdrawn"
    CUT_OFF = "cut_off"
    ARREARS = "arrears"
    METER_LOW = "meter_low"


#: The statuses from the most urgent down (the grid's legend and counts follow this order).
FEE_STATUS_ORDER: tuple[FeeStatus, ...] = (
    FeeStatus.CUT_OFF,
    FeeStatus.ARREARS,
    FeeStatus.OVERDRAWN,
    FeeStatus.ALARM_3,
    FeeStatus.ALARM_2,
    FeeStatus.ALARM_1,
    FeeStatus.METER_LOW,
    FeeStatus.NORMAL,
)
_ALARMS = (FeeStatus.ALARM_1, FeeStatus.ALARM_2, FeeStatus.ALARM_3)


@dataclass(frozen=True, slots=True, kw_only=True)
class FeeFacts:
    """What the status is decided from, in minor units."""

    prepaid: bool
    meter_side: bool
    balance_minor: int
    #: Alarm levels, most lenient first (the account's own, else its organisation's).
    thresholds_minor: Sequence[int]
    supply_cut: bool = False
    #: An issued bill unpaid past its due date.
    overdue: bool = False
    #: What a meter-side account's meter last reported holding (None: never reported).
    meter_remaining_minor: int | None = None
    #: A pre-set account: entered in advance, not billing yet.
    preset: bool = False


def fee_status(facts: FeeFacts) -> FeeStatus:
    if facts.preset:
        return FeeStatus.NORMAL
    if facts.supply_cut:
        return FeeStatus.CUT_OFF
    if facts.overdue:
        return FeeStatus.ARREARS
    if facts.meter_side:
        remaining = facts.meter_remaining_minor
        if (
            remaining is not None
            and facts.thresholds_minor
            and remaining <= facts.thresholds_minor[0]
        ):
            return FeeStatus.METER_LOW
        return FeeStatus.NORMAL
    if not facts.prepaid:
        return FeeStatus.NORMAL
    if facts.balance_minor < 0:
        return FeeStatus.OVERDRAWN
    crossed = sum(1 for threshold in facts.thresholds_minor if facts.balance_minor <= threshold)
    if crossed:
        return _ALARMS[min(crossed, len(_ALARMS)) - 1]
    return FeeStatus.NORMAL


def owed_minor(*, prepaid: bool, balance_minor: int, receivable_unpaid_minor: int) -> int:
    """What the customer owes now (≥ 0): a postpaid account's running debt (its issued,
    unpaid bills and what it used since the last one: both sit in the wallet below zero) plus
    any payment requests unpaid (owed outside the wallet, for prepaid accounts too)."""
    running = 0 if prepaid else max(0, -balance_minor)
    return running + max(0, receivable_unpaid_minor)
