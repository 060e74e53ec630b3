"""Prepaid supply control: balance alarms, cut-off, deferral and restore, as pure decisions.

Rules (also in docs/money.md):

- Alarm level *n* is crossed when ``balance <= thresholds[n-1]`` (defaults 50 / 20 / 5 CNY,
  most lenient first). A crossed level is sent at most ``repeat_count`` times,
  ``repeat_interval`` apart; during quiet hours it is held, not counted. When the balance rises
  above a level's threshold again, the level is re-armed (its history is reset).
- Supply is cut when the available credit is used up: ``balance <= -overdraft`` (the overdraft,
  or emergency credit, is a positive allowance). During a protected period (night, weekend,
  holiday, or the account's keep-supply flag) the cut is deferred to the end of that period;
  keep-supply defers it indefinitely.
- Supply cut for balance is restored when ``balance > restore_threshold`` (which must be at
  least ``-overdraft``, so cut and restore cannot flap). A manual cut is never restored here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China
DEFAULT_ALARM_THRESHOLDS: tuple[Decimal, ...] = (Decimal(50), Decimal(20), Decimal(5))
_MAX_PROTECTION_STEPS = 2000  # a protected stretch longer than this many boundaries is a bug


class BalanceRuleError(ValueError):
    """A policy or input that makes no sense (a float, unordered thresholds, naive time)."""


class SupplyState(StrEnum):
    ON = "on"
    CUT_FOR_BALANCE = "cut_for_balance"
    CUT_MANUAL = "cut_manual"  # by an operator: only an operator restores it


class SupplyAction(StrEnum):
    NOTHING = "nothing"
    CUT_OFF = "cut_off"
    DEFER_CUT_OFF = "defer_cut_off"
    RESTORE = "restore"


def _decimal(value: Decimal, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise BalanceRuleError(f"{what} must be a finite Decimal, got {value!r}")
    return value


def _aware(value: datetime, what: str) -> datetime:
    if value.utcoffset() is None:
        raise BalanceRuleError(f"{what} must be timezone-aware")
    return value


@dataclass(frozen=True, slots=True)
class DailyWindow:
    """``[start, end)`` in local time; ``start > end`` wraps past midnight (22:00-06:00)."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise BalanceRuleError("a window must not start and end at the same time")

    def contains(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, slots=True)
class BalancePolicy:
    """Per organisation defaults; per-account overrides through :func:`with_overrides`."""

    alarm_thresholds: tuple[Decimal, ...] = DEFAULT_ALARM_THRESHOLDS
    overdraft: Decimal = Decimal(0)
    restore_threshold: Decimal = Decimal(0)
    repeat_count: int = 1
    repeat_interval: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        for threshold in self.alarm_thresholds:
            _decimal(threshold, "alarm threshold")
        if list(self.alarm_thresholds) != sorted(self.alarm_thresholds, reverse=True) or len(
            set(self.alarm_thresholds)
        ) != len(self.alarm_thresholds):
            raise BalanceRuleError(
                "alarm thresholds go strictly down: level 1 is the first warning"
            )
        if _decimal(self.overdraft, "overdraft") < 0:
            raise BalanceRuleError("the overdraft is a non-negative allowance")
        if _decimal(self.restore_threshold, "restore threshold") < -self.overdraft:
            raise BalanceRuleError("restore threshold below the cut-off point would flap")
        if self.repeat_count < 1 or self.repeat_interval <= timedelta(0):
            raise BalanceRuleError("repeat count and interval must be positive")


def with_overrides(
    *,
    policy: BalancePolicy,
    alarm_thresholds: Sequence[Decimal] | None = None,
    overdraft: Decimal | None = None,
    restore_threshold: Decimal | None = None,
    repeat_count: int | None = None,
    repeat_interval: timedelta | None = None,
) -> BalancePolicy:
    """An account's policy: the organisation's, with whatever the account sets."""
    return BalancePolicy(
        alarm_thresholds=policy.alarm_thresholds
        if alarm_thresholds is None
        else tuple(alarm_thresholds),
        overdraft=policy.overdraft if overdraft is None else overdraft,
        restore_threshold=policy.restore_threshold
        if restore_threshold is None
        else restore_threshold,
        repeat_count=policy.repeat_count if repeat_count is None else repeat_count,
        repeat_interval=policy.repeat_interval if repeat_interval is None else repeat_interval,
    )


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """What was sent for one level since it was last re-armed."""

    sent_count: int = 0
    last_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Protection:
    """Whether cut-off is held back now and until when (None: indefinitely)."""

    protected: bool
    until: datetime | None = None
    reason: str = ""


NOT_PROTECTED = Protection(protected=False)


@dataclass(frozen=True, slots=True)
class Decision:
    action: SupplyAction
    defer_until: datetime | None = None  # for DEFER_CUT_OFF; None with keep-supply
    alarms: tuple[int, ...] = ()  # levels to send now, most severe last
    held_alarms: tuple[int, ...] = ()  # crossed but held by quiet hours
    rearmed: tuple[int, ...] = ()  # levels whose history the caller resets
    reason: str = ""


def decide(
    *,
    balance: Decimal,
    policy: BalancePolicy,
    supply: SupplyState,
    alarm_history: Mapping[int, AlarmRecord],
    protection: Protection,
    now: datetime,
    quiet_hours: DailyWindow | None = None,
    tz: tzinfo = CHINA_STANDARD_TIME,
) -> Decision:
    """Alarms to send and what to do with supply, for one account at ``now``."""
    _decimal(balance, "balance")
    _aware(now, "now")
    quiet = quiet_hours is not None and quiet_hours.contains(now.astimezone(tz).time())

    alarms: list[int] = []
    held: list[int] = []
    rearmed: list[int] = []
    for level, threshold in enumerate(policy.alarm_thresholds, start=1):
        record = alarm_history.get(level, AlarmRecord())
        if balance > threshold:
            if record.sent_count:
                rearmed.append(level)
            continue
        if record.sent_count >= policy.repeat_count:
            continue
        if record.last_sent_at is not None and now - record.last_sent_at < policy.repeat_interval:
            continue
        (held if quiet else alarms).append(level)

    action, defer_until, reason = _supply(balance, policy, supply, protection)
    return Decision(
        action=action,
        defer_until=defer_until,
        alarms=tuple(alarms),
        held_alarms=tuple(held),
        rearmed=tuple(rearmed),
        reason=reason,
    )


def _supply(
    balance: Decimal, policy: BalancePolicy, supply: SupplyState, protection: Protection
) -> tuple[SupplyAction, datetime | None, str]:
    exhausted = balance <= -policy.overdraft
    if supply is SupplyState.ON:
        if not exhausted:
            return SupplyAction.NOTHING, None, "credit left"
        if protection.protected:
            return SupplyAction.DEFER_CUT_OFF, protection.until, protection.reason or "protected"
        return SupplyAction.CUT_OFF, None, "credit used up"
    if supply is SupplyState.CUT_FOR_BALANCE and balance > policy.restore_threshold:
        return SupplyAction.RESTORE, None, "balance above the restore threshold"
    if supply is SupplyState.CUT_MANUAL:
        return SupplyAction.NOTHING, None, "cut by an operator"
    return SupplyAction.NOTHING, None, "balance still below the restore threshold"


# --- protected periods ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtectionSchedule:
    """When balance cut-offs must wait (local time of ``tz``)."""

    night: DailyWindow | None = DailyWindow(time(18, 0), time(8, 0))
    weekend_days: frozenset[int] = frozenset({5, 6})  # Monday is 0
    protect_holidays: bool = True
    tz: tzinfo = CHINA_STANDARD_TIME


def evaluate_protection(
    *,
    at: datetime,
    schedule: ProtectionSchedule,
    holidays: Iterable[date] = (),
    working_days: Iterable[date] = (),
    keep_supply: bool = False,
) -> Protection:
    """Is ``at`` protected, and until when does the protected stretch last?

    ``working_days`` are weekend dates declared working days (China's 调休), which are then
    not protected as weekends. ``until`` is the first unprotected moment, following the
    stretch across nights, weekends and holidays (Friday evening -> Monday 08:00).
    """
    _aware(at, "at")
    if keep_supply:
        return Protection(protected=True, until=None, reason="keep-supply flag")
    holiday_set = frozenset(holidays) if schedule.protect_holidays else frozenset()
    working_set = frozenset(working_days)
    local = at.astimezone(schedule.tz)
    reason = _reason(local, schedule, holiday_set, working_set)
    if not reason:
        return NOT_PROTECTED
    moment = local
    for _ in range(_MAX_PROTECTION_STEPS):
        moment = _next_boundary(moment, schedule)
        if not _reason(moment, schedule, holiday_set, working_set):
            return Protection(protected=True, until=moment.astimezone(at.tzinfo), reason=reason)
    raise BalanceRuleError("protected period does not end")


def _reason(
    local: datetime,
    schedule: ProtectionSchedule,
    holidays: frozenset[date],
    working: frozenset[date],
) -> str:
    day = local.date()
    if day in holidays:
        return "holiday"
    if local.weekday() in schedule.weekend_days and day not in working:
        return "weekend"
    if schedule.night is not None and schedule.night.contains(local.time()):
        return "night"
    return ""


def _next_boundary(local: datetime, schedule: ProtectionSchedule) -> datetime:
    """The next moment after ``local`` at which protection can change: midnight or a window edge."""
    candidates = [datetime.combine(local.date() + timedelta(days=1), time(0), local.tzinfo)]
    if schedule.night is not None:
        for edge in (schedule.night.start, schedule.night.end):
            today = datetime.combine(local.date(), edge, local.tzinfo)
            candidates.append(today if today > local else today + timedelta(days=1))
    return min(candidates)


# --- days of credit left ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditEstimate:
    days: Decimal | None  # None when there is no recent use to go by
    daily_cost: Decimal | None
    days_used: int = field(default=0)


def days_of_credit_left(
    *,
    balance: Decimal,
    daily_costs: Sequence[Decimal],
    overdraft: Decimal = Decimal(0),
    window: int = 7,
) -> CreditEstimate:
    """Days until the available credit runs out at the recent pace.

    Method: take the last ``window`` days of ``daily_costs`` (oldest first, one per day),
    keep the days with positive cost, and divide the available credit
    (``balance + overdraft``) by their mean. Rounded *down* to 0.1 day so it never promises
    more than there is. ``days`` is None when none of those days had any use, and 0 when the
    credit is already used up.
    """
    _decimal(balance, "balance")
    _decimal(overdraft, "overdraft")
    if window < 1:
        raise BalanceRuleError("window must be at least one day")
    recent = [_decimal(cost, "daily cost") for cost in daily_costs[-window:]]
    used = [cost for cost in recent if cost > 0]
    if not used:
        return CreditEstimate(days=None, daily_cost=None, days_used=0)
    mean = sum(used, Decimal(0)) / len(used)
    available = balance + overdraft
    if available <= 0:
        return CreditEstimate(days=Decimal("0.0"), daily_cost=mean, days_used=len(used))
    days = (available / mean).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
    return CreditEstimate(days=days, daily_cost=mean, days_used=len(used))
