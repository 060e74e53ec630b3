"""The bill-run review: change against the previous bill, flags, outliers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterpay.core.billing import BillFigures, ReviewError, outlier_keys, review_run
from meterpay.core.billing.review import review

D = Decimal


def figures(
    key: str, total: int, kwh: str = "100", m3: str = "5", *, open_: bool = True
) -> BillFigures:
    return BillFigures(key=key, total_minor=total, kwh=D(kwh), m3=D(m3), account_open=open_)


def test_first_bill_has_no_previous():
    result = review(current=figures("A", 10000), previous=None)
    assert result.flags == ("no_previous",)
    assert result.previous_total_minor is None and result.change_minor is None
    assert result.change_percent is None


def test_a_jump_needs_both_the_percent_and_the_amount():
    big = review(current=figures("A", 30000), previous=figures("A", 20000))
    assert big.change_minor == 10000 and big.change_percent == D("50.0")
    assert big.flags == ("jump",)
    small = review(current=figures("A", 3000), previous=figures("A", 1000))
    assert small.change_percent == D("200.0") and small.flags == ()
    just_below = review(current=figures("A", 29999), previous=figures("A", 20000))
    assert just_below.change_percent == D("50.0")  # rounded for display, not for the flag
    assert just_below.flags == ()


def test_a_drop():
    result = review(current=figures("A", 4000), previous=figures("A", 12000))
    assert result.change_minor == -8000 and result.change_percent == D("-66.7")
    assert result.flags == ("drop",)


def test_after_a_zero_bill_any_large_rise_is_a_jump():
    result = review(current=figures("A", 8000), previous=figures("A", 0))
    assert result.change_percent is None and result.flags == ("jump",)
    assert review(current=figures("A", 10), previous=figures("A", 0)).flags == ()


def test_zero_consumption_only_for_open_accounts_and_negative_totals():
    assert review(current=figures("A", 0, "0", "0"), previous=figures("A", 0, "0", "0")).flags == (
        "zero_consumption",
    )
    assert (
        review(current=figures("A", 0, "0", "0", open_=False), previous=figures("A", 0)).flags == ()
    )
    assert review(current=figures("A", 0, "0", "1"), previous=figures("A", 0)).flags == ()
    credit = review(current=figures("A", -2500), previous=figures("A", -2000))
    assert credit.flags == ("negative_total",)
    assert credit.change_percent == D("-25.0")


def test_custom_thresholds_and_bad_thresholds():
    result = review(
        current=figures("A", 1200),
        previous=figures("A", 1000),
        jump_percent=D(20),
        minimum_change_minor=100,
    )
    assert result.flags == ("jump",)
    with pytest.raises(ReviewError):
        review(current=figures("A", 1), previous=None, jump_percent=D(0))
    with pytest.raises(ReviewError):
        review(current=figures("A", 1), previous=None, minimum_change_minor=-1)


def test_the_run_flags_an_outlier():
    totals = [10000, 11000, 9000, 10500, 9500, 60000]
    current = [figures(f"A-{i}", total) for i, total in enumerate(totals)]
    previous = {bill.key: bill for bill in current[:5]}
    reviews = review_run(current=current, previous=previous)
    assert [r.key for r in reviews] == [bill.key for bill in current]
    assert reviews[5].flags == ("no_previous", "outlier")
    assert all(r.flags == () for r in reviews[:5])


def test_no_outliers_in_small_runs_or_among_equal_bills():
    assert outlier_keys(bills=[figures("A", 100), figures("B", 10**7)]) == set()
    same = [figures(f"A-{i}", 300000) for i in range(8)]
    assert outlier_keys(bills=[*same, figures("odd", 300001)]) == set()
    assert outlier_keys(bills=[*same, figures("odd", 400000)]) == {"odd"}


def test_outliers_are_only_above_the_median():
    bills = [figures(f"A-{i}", t) for i, t in enumerate([10000, 10100, 9900, 10050, 9950, 0])]
    assert outlier_keys(bills=bills) == set()


def test_a_run_with_repeated_keys_is_refused():
    with pytest.raises(ReviewError, match="A-1"):
        review_run(current=[figures("A-1", 1), figures("A-1", 2)], previous={})
