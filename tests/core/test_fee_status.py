"""The fee status rule: one word per account, the most urgent first."""

from __future__ import annotations

from typing import Any

import pytest

from meterpay.core.fee_status import FEE_STATUS_ORDER, FeeFacts, FeeStatus, fee_status, owed_minor

LEVELS = (5000, 2000, 500)


def facts(**changes: Any) -> FeeFacts:
    values: dict[str, Any] = {
        "prepaid": True,
        "meter_side": False,
        "balance_minor": 10000,
        "thresholds_minor": LEVELS,
    }
    values.update(changes)
    return FeeFacts(**values)


@pytest.mark.parametrize(
    "balance,expected",
    [
        (10000, FeeStatus.NORMAL),
        (5001, FeeStatus.NORMAL),
        (5000, FeeStatus.ALARM_1),
        (2001, FeeStatus.ALARM_1),
        (2000, FeeStatus.ALARM_2),
        (500, FeeStatus.ALARM_3),
        (0, FeeStatus.ALARM_3),
        (-1, FeeStatus.OVERDRAWN),
    ],
)
def test_prepaid_balance_levels(balance: int, expected: FeeStatus) -> None:
    assert fee_status(facts(balance_minor=balance)) is expected


def test_the_most_urgent_wins() -> None:
    assert fee_status(facts(balance_minor=-900, supply_cut=True, overdue=True)) is FeeStatus.CUT_OFF
    assert fee_status(facts(balance_minor=-900, overdue=True)) is FeeStatus.ARREARS
    assert list(FEE_STATUS_ORDER)[:3] == [
        FeeStatus.CUT_OFF,
        FeeStatus.ARREARS,
        FeeStatus.OVERDRAWN,
    ]
    assert set(FEE_STATUS_ORDER) == set(FeeStatus)


def test_postpaid_runs_below_zero_without_alarm() -> None:
    assert fee_status(facts(prepaid=False, balance_minor=-50000)) is FeeStatus.NORMAL
    assert fee_status(facts(prepaid=False, balance_minor=-50000, overdue=True)) is FeeStatus.ARREARS


def test_meter_side_goes_by_the_meters_money() -> None:
    side = {"meter_side": True, "balance_minor": 0}
    assert fee_status(facts(**side, meter_remaining_minor=None)) is FeeStatus.NORMAL
    assert fee_status(facts(**side, meter_remaining_minor=5001)) is FeeStatus.NORMAL
    assert fee_status(facts(**side, meter_remaining_minor=5000)) is FeeStatus.METER_LOW
    assert fee_status(facts(**side, meter_remaining_minor=100, thresholds_minor=())) is (
        FeeStatus.NORMAL
    )


def test_a_preset_account_is_normal() -> None:
    assert fee_status(facts(balance_minor=0, preset=True, overdue=True)) is FeeStatus.NORMAL


def test_more_levels_than_three_show_as_level_three() -> None:
    status = fee_status(facts(balance_minor=10, thresholds_minor=(4000, 3000, 2000, 1000)))
    assert status is FeeStatus.ALARM_3


def test_amount_owed() -> None:
    assert owed_minor(prepaid=False, balance_minor=-12345, receivable_unpaid_minor=0) == 12345
    assert owed_minor(prepaid=False, balance_minor=500, receivable_unpaid_minor=100) == 100
    assert owed_minor(prepaid=True, balance_minor=-700, receivable_unpaid_minor=300) == 300
