"""Line loss (线损): grid consumption, the loss and its rate, and the loss bill."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.billing import (
    AllocationError,
    GridPeriod,
    LineLossError,
    Member,
    Rule,
    grid_consumption,
    line_loss,
    loss_bill,
)

D = Decimal


def test_grid_consumption_applies_the_multiplier():
    assert grid_consumption(
        previous_reading=D("1250.00"), reading=D("1262.50"), multiplier=D(80)
    ) == D("1000.0000")
    assert GridPeriod(previous_reading=D(5), reading=D(5)).consumption == 0


def test_a_grid_reading_that_goes_down_is_refused():
    with pytest.raises(
        LineLossError, match=r"the grid reading 1200\.00 is below the previous one 1250\.00"
    ):
        grid_consumption(previous_reading=D("1250.00"), reading=D("1200.00"))
    with pytest.raises(LineLossError, match="multiplier must be positive"):
        grid_consumption(previous_reading=D(1), reading=D(2), multiplier=D(0))
    with pytest.raises(LineLossError, match="must be a Decimal"):
        grid_consumption(previous_reading=1.0, reading=D(2))  # type: ignore[arg-type]


def test_a_positive_loss_and_its_rate():
    loss = line_loss(grid_kwh=D("1000"), metered_kwh=D("950.5"))
    assert loss.loss_kwh == D("49.5")
    assert loss.loss_rate == D("0.0495")
    assert loss.billable and not loss.negative


def test_the_rate_is_rounded_half_up_to_four_places_and_undefined_without_grid():
    assert line_loss(grid_kwh=D("3"), metered_kwh=D("2")).loss_rate == D("0.3333")
    assert line_loss(grid_kwh=D("16"), metered_kwh=D("15.99992")).loss_rate == D("0.0000")
    assert line_loss(grid_kwh=D("2"), metered_kwh=D("1.99999")).loss_rate == D("0.0000")
    assert line_loss(grid_kwh=D("20000"), metered_kwh=D("19999")).loss_rate == D("0.0001")
    empty = line_loss(grid_kwh=D(0), metered_kwh=D(0))
    assert empty.loss_rate is None and not empty.billable and not empty.negative


def test_negative_loss_is_flagged_and_never_billed():
    loss = line_loss(grid_kwh=D("1000.0"), metered_kwh=D("1012.5"))
    assert loss.negative and not loss.billable
    assert loss.loss_kwh == D("-12.5") and loss.loss_rate == D("-0.0125")
    bill = loss_bill(
        loss=loss,
        members=[Member("A-101", usage=D(500)), Member("A-102", usage=D("512.5"))],
        unit_price=D("0.80"),
    )
    assert bill.amount_minor == 0
    assert [(line.key, line.loss_kwh, line.amount_minor) for line in bill.lines] == [
        ("A-101", D(0), 0),
        ("A-102", D(0), 0),
    ]
    assert bill.reason == (
        "negative loss: the sub-meters measured 12.5 kWh more than the grid meter; "
        "check the grid reading before billing"
    )


def test_no_loss_has_nothing_to_bill_even_for_an_empty_building():
    loss = line_loss(grid_kwh=D(0), metered_kwh=D(0))
    bill = loss_bill(loss=loss, members=[Member("A", usage=D(0))], unit_price=D("0.8"))
    assert bill.amount_minor == 0 and bill.reason.startswith("no line loss")
    with pytest.raises(AllocationError, match="no members"):
        loss_bill(loss=loss, members=[], unit_price=D("0.8"))


def test_loss_bill_by_usage():
    loss = line_loss(grid_kwh=D("1000"), metered_kwh=D("950.5"))
    members = [Member("A", usage=D(100)), Member("B", usage=D(200)), Member("public", usage=D(0))]
    bill = loss_bill(loss=loss, members=members, unit_price=D("0.65"))
    # 49.5 kWh x 0.65 = 32.175 -> 32.18, shared 1:2:0 -> 10.7266.., 21.4533.., 0.
    assert bill.amount_minor == 3218
    assert bill.reason == ""
    assert [
        (line.key, line.usage_kwh, line.ratio, line.loss_kwh, line.amount_minor)
        for line in bill.lines
    ] == [
        ("A", D(100), D("0.333333"), D("16.50"), 1073),
        ("B", D(200), D("0.666667"), D("33.00"), 2145),
        ("public", D(0), D("0.000000"), D("0.00"), 0),
    ]


def test_loss_bill_by_area():
    loss = line_loss(grid_kwh=D("100"), metered_kwh=D("90"))
    members = [Member("A", area_m2=D(30)), Member("B", area_m2=D(70))]
    bill = loss_bill(loss=loss, members=members, rule=Rule.AREA, unit_price=D("1"))
    assert [(line.loss_kwh, line.amount_minor, line.usage_kwh) for line in bill.lines] == [
        (D("3.00"), 300, None),
        (D("7.00"), 700, None),
    ]


def test_bad_inputs():
    with pytest.raises(LineLossError, match="cannot be negative"):
        line_loss(grid_kwh=D(-1), metered_kwh=D(0))
    with pytest.raises(LineLossError, match="cannot be negative"):
        line_loss(grid_kwh=D(1), metered_kwh=D(-1))
    loss = line_loss(grid_kwh=D(10), metered_kwh=D(9))
    with pytest.raises(LineLossError, match="unit price cannot be negative"):
        loss_bill(loss=loss, members=[Member("A", usage=D(1))], unit_price=D(-1))
    with pytest.raises(AllocationError, match="no member used anything"):
        loss_bill(loss=loss, members=[Member("A", usage=D(0))], unit_price=D(1))


kwh = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=200)
@given(
    grid=kwh,
    usages=st.lists(kwh, min_size=1, max_size=8).filter(any),
    price=st.decimals(min_value=0, max_value=5, places=6),
)
def test_the_lines_add_up_to_the_bill(grid, usages, price):
    loss = line_loss(grid_kwh=grid, metered_kwh=sum(usages, D(0)))
    members = [Member(f"M{i}", usage=u) for i, u in enumerate(usages)]
    bill = loss_bill(loss=loss, members=members, unit_price=price)
    assert sum(line.amount_minor for line in bill.lines) == bill.amount_minor
    if loss.billable:
        assert sum(line.loss_kwh for line in bill.lines) == loss.loss_kwh
        assert bill.reason == ""
    else:
        assert bill.amount_minor == 0 and bill.reason
    assert loss.negative == (loss.loss_kwh < 0)
