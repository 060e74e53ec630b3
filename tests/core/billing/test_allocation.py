"""Sharing amounts and quantities: hand-checked examples and the largest-remainder properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.billing import (
    AllocationError,
    Member,
    Rule,
    allocate,
    split_minor,
    split_quantity,
    weights_for,
)

D = Decimal


def test_three_equal_parts_of_100_give_the_extra_fen_to_the_first():
    assert split_minor(total_minor=10000, weights=[D(1), D(1), D(1)]) == [3334, 3333, 3333]


def test_ties_go_to_the_earlier_position_and_a_credit_mirrors_a_charge():
    assert split_minor(total_minor=5, weights=[D(1), D(1), D(1), D(1)]) == [2, 1, 1, 1]
    assert split_minor(total_minor=-5, weights=[D(1), D(1), D(1), D(1)]) == [-2, -1, -1, -1]


def test_the_largest_remainder_wins_over_the_earlier_position():
    # exact shares 2.5, 3.75 (weight 0.375) and 3.75: floors 2+3+3 = 8, two fen left over;
    # the remainders .75 and .75 beat .5.
    assert split_minor(total_minor=10, weights=[D("0.25"), D("0.375"), D("0.375")]) == [2, 4, 4]


def test_zero_weight_gets_nothing_and_a_zero_total_splits_into_zeros():
    assert split_minor(total_minor=101, weights=[D(0), D(1), D(0), D(1)]) == [0, 51, 0, 50]
    assert split_minor(total_minor=0, weights=[D(2), D(3)]) == [0, 0]


def test_split_quantity_in_steps_of_a_hundredth():
    assert split_quantity(total=D("100.00"), weights=[D(1)] * 3) == [
        D("33.34"),
        D("33.33"),
        D("33.33"),
    ]
    assert split_quantity(total=D("1"), weights=[D(1)] * 3, quantum=D("0.1")) == [
        D("0.4"),
        D("0.3"),
        D("0.3"),
    ]
    with pytest.raises(AllocationError, match="not a whole number of steps"):
        split_quantity(total=D("1.005"), weights=[D(1)])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([], "no weights"),
        ([D(0), D(0)], "every weight is 0"),
        ([D(1), D(-1)], "weight 2 is -1"),
        ([1.5], "must be a Decimal"),
        ([D("NaN")], "not a number"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(AllocationError, match=message):
        split_minor(total_minor=100, weights=weights)


def test_a_float_or_bool_total_is_refused():
    with pytest.raises(AllocationError, match="int of minor units"):
        split_minor(total_minor=1.0, weights=[D(1)])  # type: ignore[arg-type]
    with pytest.raises(AllocationError, match="int of minor units"):
        split_minor(total_minor=True, weights=[D(1)])


def test_weights_per_rule():
    members = [
        Member("A-101", ratio=D("0.2"), area_m2=D("45.5"), usage=D("120")),
        Member("A-102", ratio=D("0.8"), area_m2=D("60"), usage=D("0")),
    ]
    assert weights_for(rule=Rule.RATIO, members=members) == [D("0.2"), D("0.8")]
    assert weights_for(rule=Rule.AREA, members=members) == [D("45.5"), D("60")]
    assert weights_for(rule=Rule.USAGE, members=members) == [D("120"), D("0")]
    assert weights_for(rule=Rule.EQUAL, members=members) == [D(1), D(1)]
    assert weights_for(rule=Rule("area"), members=members) == [D("45.5"), D("60")]


@pytest.mark.parametrize(
    ("rule", "members", "message"),
    [
        (Rule.EQUAL, [], "no members"),
        (Rule.EQUAL, [Member("A"), Member("A")], "member 'A' is listed twice"),
        (
            Rule.AREA,
            [Member("A-100", area_m2=D(30)), Member("A-101", area_m2=D(0))],
            "member 'A-101': area is 0 m²; the area rule needs every member's area",
        ),
        (Rule.AREA, [Member("A-101")], "member 'A-101': no area"),
        (Rule.AREA, [Member("A-101", area_m2=D(-3))], "area is -3 m²"),
        (
            Rule.USAGE,
            [Member("A", usage=D(0)), Member("B", usage=D(0))],
            "no member used anything in the period; choose another rule",
        ),
        (Rule.USAGE, [Member("A", usage=D(-1))], "member 'A': usage is -1"),
        (Rule.USAGE, [Member("A")], "member 'A': no usage"),
        (Rule.RATIO, [Member("A", ratio=D(-1))], "member 'A': ratio is -1"),
        (Rule.RATIO, [Member("A", ratio=D(0))], "every member's ratio is 0"),
        (Rule.RATIO, [Member("A")], "member 'A': no ratio"),
        (Rule.RATIO, [Member("A", ratio=0.5)], "member 'A': the ratio must be a Decimal"),  # type: ignore[arg-type]
    ],
)
def test_bad_members_are_refused_with_the_member_named(rule, members, message):
    with pytest.raises(AllocationError, match=message):
        weights_for(rule=rule, members=members)


def test_allocate_public_area_by_area():
    members = [
        Member("A-101", area_m2=D("50")),
        Member("A-102", area_m2=D("30")),
        Member("A-103", area_m2=D("20")),
    ]
    shares = allocate(rule=Rule.AREA, members=members, total_minor=12345, total_quantity=D("99.99"))
    assert [s.key for s in shares] == ["A-101", "A-102", "A-103"]
    # 6172.5, 3703.5, 2469: one fen left over, equal remainders, the earlier member gets it.
    assert [s.amount_minor for s in shares] == [6173, 3703, 2469]
    # 49.995, 29.997, 19.998: two hundredths left over, to the largest remainders .8 and .7.
    assert [s.quantity for s in shares] == [D("49.99"), D("30.00"), D("20.00")]
    assert [s.ratio for s in shares] == [D("0.500000"), D("0.300000"), D("0.200000")]
    assert sum(s.amount_minor for s in shares) == 12345


def test_allocate_shares_a_quantity_with_more_decimals_in_its_own_steps():
    shares = allocate(
        rule=Rule.EQUAL,
        members=[Member("A"), Member("B")],
        total_minor=1,
        total_quantity=D("0.005"),
    )
    assert [s.quantity for s in shares] == [D("0.003"), D("0.002")]
    assert [s.amount_minor for s in shares] == [1, 0]
    assert shares[0].ratio == D("0.500000")


totals = st.integers(min_value=-(10**9), max_value=10**9)
weight_lists = st.lists(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
).filter(any)


@settings(max_examples=300)
@given(total=totals, weights=weight_lists)
def test_parts_sum_to_the_whole_and_stay_within_one_unit_of_the_exact_share(total, weights):
    parts = split_minor(total_minor=total, weights=weights)
    assert sum(parts) == total
    weight_sum = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = total * Fraction(weight) / weight_sum
        assert abs(part - exact) < 1
        if weight == 0:
            assert part == 0


@settings(max_examples=200)
@given(total=totals, weights=weight_lists)
def test_a_credit_is_the_mirror_of_the_charge(total, weights):
    assert split_minor(total_minor=-total, weights=weights) == [
        -part for part in split_minor(total_minor=total, weights=weights)
    ]


@settings(max_examples=200)
@given(total=totals, weights=weight_lists)
def test_the_split_is_the_largest_remainder_one(total, weights):
    """No unit can move from one part to another and bring both closer to their exact shares."""
    parts = split_minor(total_minor=abs(total), weights=weights)
    weight_sum = sum(Fraction(w) for w in weights)
    exact = [abs(total) * Fraction(w) / weight_sum for w in weights]
    for i, part in enumerate(parts):
        assert part in (int(exact[i]), int(exact[i]) + 1)
    extra = [i for i, part in enumerate(parts) if part > int(exact[i])]
    plain = [i for i, part in enumerate(parts) if part == int(exact[i])]
    for i in extra:
        for j in plain:
            remainder_i, remainder_j = exact[i] - int(exact[i]), exact[j] - int(exact[j])
            assert remainder_i > remainder_j or (remainder_i == remainder_j and i < j)


@settings(max_examples=200)
@given(
    hundredths=st.integers(min_value=-(10**8), max_value=10**8),
    weights=weight_lists,
    members_total=totals,
)
def test_allocate_sums_both_the_amount_and_the_quantity(hundredths, weights, members_total):
    members = [Member(f"M{i}", ratio=w) for i, w in enumerate(weights)]
    quantity = Decimal(hundredths).scaleb(-2)
    shares = allocate(
        rule=Rule.RATIO, members=members, total_minor=members_total, total_quantity=quantity
    )
    assert sum(s.amount_minor for s in shares) == members_total
    assert sum(s.quantity for s in shares) == quantity
    assert all(s.quantity.as_tuple().exponent == -2 for s in shares)
