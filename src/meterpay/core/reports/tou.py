"""Which time-of-use period an interval's consumption falls in, by the tariff engine's rule.

The engine rates an interval whole in the period of its **local start** (the version in force
at the start, then the schedule's critical-peak windows, rules and defaults, with the
account's holidays); reports split consumption the same way, so the kWh of each period in a
report is the kWh the engine priced in that period.

Reports keep four named columns (sharp, peak, flat, valley), one for any other period name
(deep valley, a URDB ``on``/``off``…) and what is left untimed: intervals of a version
without energy prices by time of use (a single price, water) or before the first version.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime

from meterpay.core.tariffs.model import DayType, Tariff

#: Report columns, in order; an interval gets the index of one of them.
SLOTS: tuple[str, ...] = ("sharp", "peak", "flat", "valley", "other", "untimed")
SHARP, PEAK, FLAT, VALLEY, OTHER, UNTIMED = range(len(SLOTS))
#: The columns that are time-of-use periods (all but ``untimed``).
TOU_SLOTS: tuple[str, ...] = SLOTS[:UNTIMED]
_NAMED = {"sharp": SHARP, "peak": PEAK, "flat": FLAT, "valley": VALLEY}


def day_type(day: date, holidays: frozenset[date]) -> DayType:
    """The engine's day type: a holiday of the account's calendar, else weekend or weekday."""
    if day in holidays:
        return "holiday"
    return "weekend" if day.weekday() >= 5 else "weekday"


def slot_of(period: str | None) -> int:
    """The report column of a period name (None: untimed)."""
    if period is None:
        return UNTIMED
    return _NAMED.get(period, OTHER)


class TouClassifier:
    """The period of an interval by its naive local start, for one tariff and holiday set.

    ``tariff`` None (an account without a tariff) classifies everything as untimed. Answers
    are cached per (day, minute): a classifier serves every meter on the same tariff.
    """

    __slots__ = ("_cache", "_holidays", "_starts", "tariff")

    def __init__(self, tariff: Tariff | None, holidays: frozenset[date] = frozenset()) -> None:
        self.tariff = tariff
        self._holidays = holidays
        self._starts = [v.effective_from for v in tariff.versions] if tariff is not None else []
        self._cache: dict[datetime, str | None] = {}

    @property
    def timed(self) -> bool:
        """Whether any version of the tariff prices energy by time of use."""
        if self.tariff is None:
            return False
        return any(v.energy is not None and len(v.energy.periods) > 1 for v in self.tariff.versions)

    def period(self, start: datetime) -> str | None:
        """The period the engine rates an interval starting at ``start`` in; None: untimed."""
        try:
            return self._cache[start]
        except KeyError:
            pass
        found: str | None = None
        index = bisect.bisect_right(self._starts, start) - 1
        if index >= 0 and self.tariff is not None:
            energy = self.tariff.versions[index].energy
            if energy is not None and len(energy.periods) > 1:
                found = energy.schedule.period_at(
                    start.month,
                    day_type(start.date(), self._holidays),
                    start.hour * 60 + start.minute,
                )
        self._cache[start] = found
        return found

    def slot(self, start: datetime) -> int:
        """The report column (index into :data:`SLOTS`) of an interval starting at ``start``."""
        return slot_of(self.period(start))
