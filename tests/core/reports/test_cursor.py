"""The roll-up cursor: every row committed is taken exactly once, whatever order the writing
transactions commit in and however the runs fall between them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.reports.cursor import GAP_TIMEOUT_SECONDS, MAX_GAPS, Gap, IdCursor


def run(cursor: IdCursor, committed: set[int], batch: int, now: float) -> list[int]:
    """One roll-up run against the rows visible now (what the service does)."""
    taken = []
    in_gaps = [i for i in committed if any(g.low <= i <= g.high for g in cursor.gaps)]
    taken += cursor.fill(in_gaps)
    new = sorted(i for i in committed if i > cursor.last_id)[:batch]
    taken += cursor.advance(new, now=now)
    cursor.expire(now=now)
    return taken


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    sizes=st.lists(st.integers(1, 20), min_size=1, max_size=12),
    batch=st.integers(1, 30),
)
def test_every_committed_row_is_taken_once(
    data: st.DataObject, sizes: list[int], batch: int
) -> None:
    # transactions draw consecutive ids, then commit (or roll back) in any order
    transactions, next_id = [], 1
    for size in sizes:
        transactions.append(list(range(next_id, next_id + size)))
        next_id += size
    order = data.draw(st.permutations(range(len(transactions))))
    rolled_back = data.draw(st.sets(st.sampled_from(range(len(transactions))), max_size=3))
    cursor = IdCursor()
    committed: set[int] = set()
    taken: list[int] = []
    now = 1000.0
    for index in order:
        if index not in rolled_back:
            committed.update(transactions[index])
        for _ in range(data.draw(st.integers(0, 2))):
            now += 1
            taken += run(cursor, committed, batch, now)
    for _ in range(next_id // batch + 2):
        now += 1
        taken += run(cursor, committed, batch, now)
    assert sorted(taken) == sorted(committed)
    assert all(cursor.taken(i) for i in committed)
    # ids that never turn up are given up after the timeout
    taken += run(cursor, committed, batch, now + GAP_TIMEOUT_SECONDS + 1)
    assert cursor.gaps == [] and sorted(taken) == sorted(committed)


def test_a_late_batch_fills_its_gap() -> None:
    cursor = IdCursor()
    assert cursor.advance([1, 2, 3], now=0) == [1, 2, 3]
    assert cursor.advance([7, 9], now=5) == [7, 9]
    assert cursor.ranges() == [(4, 6), (8, 8)]
    assert not cursor.taken(5) and cursor.taken(7) and not cursor.taken(10)
    assert cursor.fill([5, 8, 11]) == [5, 8]
    assert cursor.ranges() == [(4, 4), (6, 6)]
    assert cursor.fill([5]) == []  # taken once
    state = IdCursor.from_state(cursor.last_id, cursor.gaps_state())
    assert state == cursor


def test_a_new_cursor_waits_for_the_ids_below_its_first_row_too() -> None:
    cursor = IdCursor()
    cursor.advance([500, 502], now=0)
    assert cursor.ranges() == [(1, 499), (501, 501)]


def test_gaps_beyond_the_limit_are_given_up_oldest_first() -> None:
    cursor = IdCursor(
        last_id=3 * MAX_GAPS,
        gaps=[Gap(2 * i + 1, 2 * i + 1, float(i)) for i in range(MAX_GAPS + 5)],
    )
    dropped = cursor.expire(now=float(MAX_GAPS), timeout=10.0**9)
    assert [gap.low for gap in dropped] == [1, 3, 5, 7, 9]
    assert len(cursor.gaps) == MAX_GAPS
