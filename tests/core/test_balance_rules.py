"""Prepaid supply control: alarms, cut-off, deferral, restore, protected periods, credit days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterpay.core.balance_rules import (
    CHINA_STANDARD_TIME,
    NOT_PROTECTED,
    AlarmRecord,
    BalancePolicy,
    BalanceRuleError,
    DailyWindow,
    Decision,
    Protection,
    ProtectionSchedule,
    SupplyAction,
    SupplyState,
    days_of_credit_left,
    decide,
    evaluate_protection,
    with_overrides,
)

CST = CHINA_STANDARD_TIME
NOW = datetime(2025, 3, 4, 10, 0, tzinfo=CST)  # a Tuesday morning
POLICY = BalancePolicy()


def run(balance: str, **kwargs: Any) -> Decision:
    options: dict[str, Any] = {
        "policy": POLICY,
        "supply": SupplyState.ON,
        "alarm_history": {},
        "protection": NOT_PROTECTED,
        "now": NOW,
    }
    options.update(kwargs)
    return decide(balance=Decimal(balance), **options)


# --- alarms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "levels"),
    [("50.01", ()), ("50.00", (1,)), ("20", (1, 2)), ("4.99", (1, 2, 3)), ("-3", (1, 2, 3))],
)
def test_levels_crossed(balance: str, levels: tuple[int, ...]) -> None:
    assert run(balance).alarms == levels


def test_sent_levels_are_not_sent_again() -> None:
    history = {1: AlarmRecord(sent_count=1, last_sent_at=NOW - timedelta(days=3))}
    assert run("19", alarm_history=history).alarms == (2,)


def test_repeat_count_and_interval() -> None:
    policy = BalancePolicy(repeat_count=3, repeat_interval=timedelta(hours=12))
    recent = {1: AlarmRecord(sent_count=1, last_sent_at=NOW - timedelta(hours=1))}
    assert run("40", policy=policy, alarm_history=recent).alarms == ()
    due = {1: AlarmRecord(sent_count=2, last_sent_at=NOW - timedelta(hours=12))}
    assert run("40", policy=policy, alarm_history=due).alarms == (1,)
    done = {1: AlarmRecord(sent_count=3, last_sent_at=NOW - timedelta(days=9))}
    assert run("40", policy=policy, alarm_history=done).alarms == ()


def test_quiet_hours_hold_alarms() -> None:
    quiet = DailyWindow(time(22, 0), time(7, 0))
    night = datetime(2025, 3, 4, 23, 30, tzinfo=CST)
    decision = run("10", quiet_hours=quiet, now=night)
    assert decision.alarms == ()
    assert decision.held_alarms == (1, 2)
    # Quiet hours are read in local time even when now is given in UTC.
    assert run("10", quiet_hours=quiet, now=night.astimezone(UTC)).alarms == ()
    assert run("10", quiet_hours=quiet).alarms == (1, 2)


def test_recharge_rearms_levels() -> None:
    history = {
        1: AlarmRecord(sent_count=1, last_sent_at=NOW),
        2: AlarmRecord(sent_count=1, last_sent_at=NOW),
        3: AlarmRecord(),
    }
    assert run("30", alarm_history=history).rearmed == (2,)
    assert run("300", alarm_history=history).rearmed == (1, 2)


def test_per_account_overrides() -> None:
    policy = with_overrides(policy=POLICY, alarm_thresholds=[Decimal(100)], overdraft=Decimal(10))
    assert policy.alarm_thresholds == (Decimal(100),)
    assert policy.repeat_count == POLICY.repeat_count
    assert run("99", policy=policy).alarms == (1,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alarm_thresholds": (Decimal(5), Decimal(20))},
        {"alarm_thresholds": (Decimal(5), Decimal(5))},
        {"alarm_thresholds": (50.0,)},
        {"overdraft": Decimal(-1)},
        {"overdraft": Decimal(10), "restore_threshold": Decimal(-11)},
        {"repeat_count": 0},
        {"overdraft": Decimal("NaN")},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(BalanceRuleError):
        BalancePolicy(**kwargs)  # type: ignore[arg-type]


def test_float_balance_is_refused() -> None:
    with pytest.raises(BalanceRuleError):
        decide(
            balance=1.5,  # type: ignore[arg-type]
            policy=POLICY,
            supply=SupplyState.ON,
            alarm_history={},
            protection=NOT_PROTECTED,
            now=NOW,
        )


# --- supply ------------------------------------------------------------------------------


def test_cut_off_when_credit_is_used_up() -> None:
    assert run("0.01").action is SupplyAction.NOTHING
    assert run("0").action is SupplyAction.CUT_OFF
    assert run("-5").action is SupplyAction.CUT_OFF


def test_overdraft_allows_going_below_zero() -> None:
    policy = BalancePolicy(overdraft=Decimal(20))
    assert run("-19.99", policy=policy).action is SupplyAction.NOTHING
    assert run("-20", policy=policy).action is SupplyAction.CUT_OFF


def test_protected_period_defers_cut_off() -> None:
    until = datetime(2025, 3, 5, 8, 0, tzinfo=CST)
    decision = run("-1", protection=Protection(protected=True, until=until, reason="night"))
    assert decision.action is SupplyAction.DEFER_CUT_OFF
    assert decision.defer_until == until
    keep = run("-1", protection=Protection(protected=True, until=None, reason="keep-supply flag"))
    assert keep.action is SupplyAction.DEFER_CUT_OFF
    assert keep.defer_until is None


def test_restore_above_threshold_only_after_a_balance_cut() -> None:
    policy = BalancePolicy(restore_threshold=Decimal(10))
    cut = SupplyState.CUT_FOR_BALANCE
    assert run("10", policy=policy, supply=cut).action is SupplyAction.NOTHING
    assert run("10.01", policy=policy, supply=cut).action is SupplyAction.RESTORE
    manual = SupplyState.CUT_MANUAL
    assert run("500", policy=policy, supply=manual).action is SupplyAction.NOTHING


def test_restore_is_not_held_by_protection() -> None:
    protected = Protection(protected=True, until=None, reason="night")
    decision = run("5", supply=SupplyState.CUT_FOR_BALANCE, protection=protected)
    assert decision.action is SupplyAction.RESTORE


amounts = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False)


@given(
    amounts,
    st.decimals(min_value=0, max_value=100, places=2),
    st.decimals(min_value=0, max_value=100, places=2),
)
def test_cut_and_restore_never_flap(balance: Decimal, overdraft: Decimal, extra: Decimal) -> None:
    policy = BalancePolicy(overdraft=overdraft, restore_threshold=-overdraft + extra)
    on = run(str(balance), policy=policy).action
    off = run(str(balance), policy=policy, supply=SupplyState.CUT_FOR_BALANCE).action
    assert not (on is SupplyAction.CUT_OFF and off is SupplyAction.RESTORE)


# --- protected periods -------------------------------------------------------------------

SCHEDULE = ProtectionSchedule()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=CST)


def test_working_hours_are_not_protected() -> None:
    assert evaluate_protection(at=at(4, 10), schedule=SCHEDULE) == NOT_PROTECTED


def test_night_until_morning() -> None:
    result = evaluate_protection(at=at(4, 19), schedule=SCHEDULE)
    assert result.protected and result.reason == "night"
    assert result.until == at(5, 8)


def test_friday_evening_lasts_until_monday_morning() -> None:
    result = evaluate_protection(at=at(7, 18, 30), schedule=SCHEDULE)  # Friday
    assert result.until == at(10, 8)


def test_holiday_then_weekend_then_night() -> None:
    holidays = {date(2025, 3, 6), date(2025, 3, 7)}  # Thursday and Friday
    result = evaluate_protection(at=at(6, 11), schedule=SCHEDULE, holidays=holidays)
    assert result.reason == "holiday"
    assert result.until == at(10, 8)


def test_declared_working_weekend_day_is_not_protected() -> None:
    saturday = at(8, 11)
    assert evaluate_protection(at=saturday, schedule=SCHEDULE).protected
    result = evaluate_protection(at=saturday, schedule=SCHEDULE, working_days={date(2025, 3, 8)})
    assert not result.protected


def test_keep_supply_flag_protects_indefinitely() -> None:
    result = evaluate_protection(at=at(4, 10), schedule=SCHEDULE, keep_supply=True)
    assert result.protected and result.until is None


def test_until_is_in_the_callers_timezone() -> None:
    result = evaluate_protection(at=at(4, 19).astimezone(UTC), schedule=SCHEDULE)
    assert result.until == at(5, 8)
    assert result.until is not None and result.until.tzinfo is UTC


def test_no_night_window_and_no_weekends() -> None:
    schedule = ProtectionSchedule(night=None, weekend_days=frozenset(), protect_holidays=False)
    assert not evaluate_protection(
        at=at(8, 23), schedule=schedule, holidays={date(2025, 3, 8)}
    ).protected


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(BalanceRuleError):
        evaluate_protection(at=datetime(2025, 3, 4, 10), schedule=SCHEDULE)


@given(st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)))
def test_until_is_unprotected_and_later(moment: datetime) -> None:
    when = moment.replace(tzinfo=CST)
    holidays = {date(2025, 10, d) for d in range(1, 8)}
    result = evaluate_protection(at=when, schedule=SCHEDULE, holidays=holidays)
    if result.protected:
        assert result.until is not None and result.until > when
        assert not evaluate_protection(
            at=result.until, schedule=SCHEDULE, holidays=holidays
        ).protected


# --- days of credit left -----------------------------------------------------------------


def test_days_left_from_mean_of_recent_nonzero_days() -> None:
    costs = [
        Decimal(100),
        *[Decimal(0)] * 2,
        Decimal(10),
        Decimal(20),
        Decimal(0),
        Decimal(30),
        Decimal(0),
        Decimal(0),
    ]
    # The last seven days are 0, 10, 20, 0, 30, 0, 0; the 100 is older.
    estimate = days_of_credit_left(balance=Decimal(100), daily_costs=costs)
    assert estimate.days_used == 3
    assert estimate.daily_cost == Decimal(20)
    assert estimate.days == Decimal("5.0")


def test_days_left_rounds_down() -> None:
    estimate = days_of_credit_left(balance=Decimal(10), daily_costs=[Decimal(3)])
    assert estimate.days == Decimal("3.3")


def test_days_left_counts_the_overdraft() -> None:
    estimate = days_of_credit_left(
        balance=Decimal(-5), daily_costs=[Decimal(5)], overdraft=Decimal(20)
    )
    assert estimate.days == Decimal("3.0")


def test_days_left_unknown_or_zero() -> None:
    assert days_of_credit_left(balance=Decimal(10), daily_costs=[]).days is None
    assert days_of_credit_left(balance=Decimal(10), daily_costs=[Decimal(0)] * 7).days is None
    assert days_of_credit_left(balance=Decimal(-1), daily_costs=[Decimal(1)]).days == Decimal("0.0")
    with pytest.raises(BalanceRuleError):
        days_of_credit_left(balance=Decimal(1), daily_costs=[1.5])  # type: ignore[list-item]
