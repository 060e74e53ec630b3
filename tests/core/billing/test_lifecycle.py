"""Bill states, payment allocation over open bills, overdue."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.billing import (
    TRANSITIONS,
    BillStatus,
    PaymentAllocationError,
    TransitionError,
    check_transition,
    days_overdue,
    overdue,
    payment_allocation,
)

S = BillStatus

ALLOWED = {
    (S.DRAFT, S.CONFIRMED),
    (S.DRAFT, S.VOID),
    (S.CONFIRMED, S.ISSUED),
    (S.CONFIRMED, S.DRAFT),
    (S.CONFIRMED, S.VOID),
    (S.ISSUED, S.PAID),
    (S.ISSUED, S.CREDITED),
    (S.PAID, S.CREDITED),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_every_pair_is_allowed_or_refused_with_a_reason(current, target):
    assert ((current, target) in ALLOWED) == (target in TRANSITIONS[current])
    if (current, target) in ALLOWED:
        check_transition(current=current, target=target)
    else:
        with pytest.raises(TransitionError) as refused:
            check_transition(current=current, target=target)
        assert str(refused.value)


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (
            S.ISSUED,
            S.DRAFT,
            "an issued bill cannot go back to draft; issue a credit note and re-issue it",
        ),
        (S.PAID, S.VOID, "a paid bill cannot be voided; issue a credit note"),
        (S.DRAFT, S.ISSUED, "a draft must be confirmed before it is issued"),
        (S.CONFIRMED, S.PAID, "a confirmed bill cannot be paid before it is issued"),
        (S.DRAFT, S.CREDITED, "nothing to credit; void it"),
        (S.VOID, S.DRAFT, "a void bill is final"),
        (S.CREDITED, S.PAID, "a credited bill is final"),
        (S.PAID, S.PAID, "the bill is already paid"),
    ],
)
def test_refusals_say_what_to_do(current, target, message):
    with pytest.raises(TransitionError, match=message):
        check_transition(current=current, target=target)


def test_statuses_as_strings_are_accepted():
    check_transition(current="draft", target="confirmed")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        check_transition(current="draft", target="archived")  # type: ignore[arg-type]


def test_the_transitions_cannot_be_changed():
    with pytest.raises(TypeError):
        TRANSITIONS[S.VOID] = frozenset({S.DRAFT})  # type: ignore[index]


def test_payments_settle_the_oldest_bills_first():
    bills = [("2025-01", 10000), ("2025-02", 8000), ("2025-03", 12000)]
    assert payment_allocation(owed_minor=15000, bills=bills) == {
        "2025-01": 0,
        "2025-02": 3000,
        "2025-03": 12000,
    }
    assert payment_allocation(owed_minor=0, bills=bills) == {
        "2025-01": 0,
        "2025-02": 0,
        "2025-03": 0,
    }
    assert payment_allocation(owed_minor=99999, bills=bills) == dict(bills)
    assert payment_allocation(owed_minor=500, bills=[]) == {}


@pytest.mark.parametrize(
    ("owed", "bills", "message"),
    [
        (-1, [], "the amount owed"),
        (1.5, [], "the amount owed"),
        (1, [("a", -3)], "bill 'a'"),
        (1, [("a", 3), ("a", 4)], "bill 'a' is listed twice"),
    ],
)
def test_bad_payment_inputs(owed, bills, message):
    with pytest.raises(PaymentAllocationError, match=message):
        payment_allocation(owed_minor=owed, bills=bills)


@settings(max_examples=300)
@given(
    owed=st.integers(min_value=0, max_value=10**7),
    dues=st.lists(st.integers(min_value=0, max_value=10**6), max_size=12),
)
def test_payment_allocation_properties(owed, dues):
    bills = [(f"B{i}", due) for i, due in enumerate(dues)]
    unpaid = payment_allocation(owed_minor=owed, bills=bills)
    assert list(unpaid) == [key for key, _ in bills]
    assert sum(unpaid.values()) == min(owed, sum(dues))
    assert all(0 <= unpaid[key] <= due for key, due in bills)
    # Oldest first: once a bill has something unpaid, every newer bill is wholly unpaid.
    parts = [unpaid[key] for key, _ in bills]
    for i, (part, due) in enumerate(zip(parts, dues, strict=True)):
        if part > 0:
            assert parts[i + 1 :] == dues[i + 1 :]
    # Paying more never makes an older bill less paid.
    more_paid = payment_allocation(owed_minor=max(0, owed - 1), bills=bills)
    assert all(more_paid[key] <= unpaid[key] for key, _ in bills)


def test_overdue_after_the_grace_days():
    due = date(2025, 3, 15)
    assert not overdue(due_on=due, today=date(2025, 3, 15), grace_days=0)
    assert overdue(due_on=due, today=date(2025, 3, 16), grace_days=0)
    assert not overdue(due_on=due, today=date(2025, 3, 22), grace_days=7)
    assert overdue(due_on=due, today=date(2025, 3, 23), grace_days=7)
    assert days_overdue(due_on=due, today=date(2025, 3, 10), grace_days=7) == 0
    assert days_overdue(due_on=due, today=date(2025, 3, 22), grace_days=7) == 0
    assert days_overdue(due_on=due, today=date(2025, 4, 1), grace_days=7) == 10
    with pytest.raises(ValueError, match="grace days"):
        overdue(due_on=due, today=due, grace_days=-1)


@settings(max_examples=200)
@given(
    due=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    today=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
    grace=st.integers(min_value=0, max_value=90),
)
def test_overdue_iff_days_overdue(due, today, grace):
    assert overdue(due_on=due, today=today, grace_days=grace) == (
        days_overdue(due_on=due, today=today, grace_days=grace) > 0
    )
