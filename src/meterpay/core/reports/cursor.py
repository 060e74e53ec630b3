"""Which rows of an append-only table a roll-up has taken: a high-water id and its gaps.

Ids come from a sequence when a row is inserted, but transactions commit in any order: a
batch holding ids 1000-1999 may become visible after one holding 2000-2999. A cursor that
only kept the highest id seen would skip the late batch for ever. So the ids below the
high-water mark that were not there when it passed them are kept as **gaps**, looked at
again on every run until their rows turn up, and given up after a timeout (ids drawn by a
transaction that rolled back never turn up). A row is counted exactly once: when it is
first seen above the mark, or when it fills a gap.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: How long a gap is looked at again (seconds): far longer than any writing transaction.
GAP_TIMEOUT_SECONDS = 15 * 60
#: The most gaps kept; beyond it the oldest are given up (and reported).
MAX_GAPS = 10_000


@dataclass(slots=True)
class Gap:
    """Ids ``low..high`` (inclusive) not seen yet, since ``since`` (epoch seconds)."""

    low: int
    high: int
    since: float


@dataclass(slots=True)
class IdCursor:
    last_id: int = 0
    gaps: list[Gap] = field(default_factory=list)

    @classmethod
    def from_state(cls, last_id: int, gaps: Sequence[Sequence[Any]]) -> IdCursor:
        return cls(int(last_id), [Gap(int(g[0]), int(g[1]), float(g[2])) for g in gaps])

    def gaps_state(self) -> list[list[int | float]]:
        """The gaps as plain JSON."""
        return [[gap.low, gap.high, gap.since] for gap in self.gaps]

    def ranges(self) -> list[tuple[int, int]]:
        """The id ranges to look at again."""
        return [(gap.low, gap.high) for gap in self.gaps]

    def taken(self, row_id: int) -> bool:
        """Whether the row with this id has been rolled up (or given up on)."""
        if row_id > self.last_id:
            return False
        index = bisect.bisect_right([gap.low for gap in self.gaps], row_id) - 1
        return not (index >= 0 and self.gaps[index].high >= row_id)

    def fill(self, ids: Iterable[int]) -> list[int]:
        """Rows found inside gaps: take them (once); returns the ids that were in a gap."""
        filled = []
        for row_id in sorted(set(ids)):
            lows = [gap.low for gap in self.gaps]
            index = bisect.bisect_right(lows, row_id) - 1
            if index < 0 or self.gaps[index].high < row_id:
                continue
            gap = self.gaps[index]
            parts = []
            if gap.low < row_id:
                parts.append(Gap(gap.low, row_id - 1, gap.since))
            if row_id < gap.high:
                parts.append(Gap(row_id + 1, gap.high, gap.since))
            self.gaps[index : index + 1] = parts
            filled.append(row_id)
        return filled

    def advance(self, ids: Iterable[int], *, now: float) -> list[int]:
        """Rows found above the mark: take them, and keep the ids skipped as gaps.

        Returns the ids taken (those above the mark, ascending).
        """
        taken = []
        for row_id in sorted(set(ids)):
            if row_id <= self.last_id:
                continue
            if row_id > self.last_id + 1:
                self.gaps.append(Gap(self.last_id + 1, row_id - 1, now))
            self.last_id = row_id
            taken.append(row_id)
        return taken

    def expire(self, *, now: float, timeout: float = GAP_TIMEOUT_SECONDS) -> list[Gap]:
        """Give up gaps older than ``timeout`` and beyond :data:`MAX_GAPS`; the ones dropped."""
        kept = [gap for gap in self.gaps if now - gap.since <= timeout]
        dropped = [gap for gap in self.gaps if now - gap.since > timeout]
        if len(kept) > MAX_GAPS:
            oldest = sorted(kept, key=lambda gap: (gap.since, gap.low))[: len(kept) - MAX_GAPS]
            dropped.extend(oldest)
            gone = {id(gap) for gap in oldest}
            kept = [gap for gap in kept if id(gap) not in gone]
        self.gaps = kept
        return dropped
