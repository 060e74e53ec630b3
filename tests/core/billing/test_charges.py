"""Custom charge items due in a billing period: cycles, proration, one-time, per area and unit."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.billing import (
    Basis,
    ChargeError,
    ChargeItemRule,
    Frequency,
    billing_cycle,
    charges_due,
)

D = Decimal


def rule(
    *,
    price: str = "3000.00",
    basis: Basis = Basis.FIXED,
    frequency: Frequency = Frequency.MONTHLY,
    code: str = "rent",
    **extra,
) -> ChargeItemRule:
    return ChargeItemRule(
        code=code, name=code.title(), basis=basis, unit_price=D(price), frequency=frequency, **extra
    )


def month(year: int, number: int) -> tuple[date, date]:
    end = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return date(year, number, 1), end


def due_in(item, year, number, move_in=None, move_out=None, **extra):
    start, end = month(year, number)
    return charges_due(
        item=item, period_start=start, period_end=end, move_in=move_in, move_out=move_out, **extra
    )


def test_rent_moved_in_on_10_march_is_22_of_31_days():
    (due,) = due_in(rule(), 2025, 3, move_in=date(2025, 3, 10))
    assert due.amount == D("2129.03")  # 3000 x 22/31 = 2129.032...
    assert due.amount_minor == 212903
    assert due.proration == D(22) / D(31)
    assert (due.cycle_start, due.cycle_end) == (date(2025, 3, 1), date(2025, 4, 1))
    assert (due.quantity, due.unit, due.unit_price) == (D(1), "month", D("3000.00"))
    assert due.key == "rent/2025-03-01"
    assert due_in(rule(), 2025, 2, move_in=date(2025, 3, 10)) == []


def test_a_whole_month_and_a_move_out():
    (full,) = due_in(rule(), 2025, 4, move_in=date(2025, 3, 10))
    assert full.amount == D("3000.00") and full.proration == 1
    (last,) = due_in(rule(), 2025, 6, move_in=date(2025, 3, 10), move_out=date(2025, 6, 20))
    assert last.amount == D("2000.00")  # 20 of 30 days
    assert due_in(rule(), 2025, 7, move_in=date(2025, 3, 10), move_out=date(2025, 6, 20)) == []
    (short,) = due_in(rule(), 2025, 2, move_in=date(2025, 2, 10), move_out=date(2025, 2, 16))
    assert short.amount == D("750.00")  # 7 of 28 days


def test_a_cycle_on_the_15th_is_billed_where_the_service_starts_in_it():
    item = rule(day_of_month=15)
    april = due_in(item, 2025, 4, move_in=date(2025, 4, 3))
    assert [(d.key, d.amount) for d in april] == [
        ("rent/2025-03-15", D("1161.29")),  # 3 Apr .. 14 Apr: 12 of 31 days
        ("rent/2025-04-15", D("3000.00")),
    ]
    assert [d.key for d in due_in(item, 2025, 5, move_in=date(2025, 4, 3))] == ["rent/2025-05-15"]
    # moving in on the 20th: the cycle 15 Apr - 14 May begins in April, billed in April.
    (late,) = due_in(item, 2025, 4, move_in=date(2025, 4, 20))
    assert late.key == "rent/2025-04-15" and late.amount == D("2500.00")  # 25 of 30 days


def test_quarterly_and_yearly_cycles():
    fee = rule(code="service", price="910.00", frequency=Frequency.QUARTERLY)
    (january,) = due_in(fee, 2025, 1)
    assert (january.cycle_start, january.cycle_end, january.unit) == (
        date(2025, 1, 1),
        date(2025, 4, 1),
        "quarter",
    )
    assert january.amount == D("910.00")
    assert due_in(fee, 2025, 2) == [] and due_in(fee, 2025, 3) == []
    (moved,) = due_in(fee, 2025, 2, move_in=date(2025, 2, 10))
    assert moved.amount == D("505.56")  # 10 Feb - 31 Mar: 50 of 90 days, 505.555...
    assert moved.key == "service/2025-01-01"
    insurance = rule(code="insurance", price="1200.00", frequency=Frequency.YEARLY, day_of_month=10)
    assert billing_cycle(item=insurance, moment=date(2025, 1, 9)) == (
        date(2024, 1, 10),
        date(2025, 1, 10),
    )
    (yearly,) = due_in(insurance, 2025, 1)
    assert (yearly.cycle_start, yearly.unit, yearly.amount) == (
        date(2025, 1, 10),
        "year",
        D("1200.00"),
    )
    assert all(due_in(insurance, 2025, m) == [] for m in range(2, 13))


def test_billing_cycle_anchors():
    quarterly = rule(frequency=Frequency.QUARTERLY, day_of_month=5)
    assert billing_cycle(item=quarterly, moment=date(2025, 4, 4)) == (
        date(2025, 1, 5),
        date(2025, 4, 5),
    )
    assert billing_cycle(item=quarterly, moment=date(2025, 4, 5)) == (
        date(2025, 4, 5),
        date(2025, 7, 5),
    )
    assert billing_cycle(item=quarterly, moment=date(2025, 1, 1)) == (
        date(2024, 10, 5),
        date(2025, 1, 5),
    )
    monthly = rule(day_of_month=28)
    assert billing_cycle(item=monthly, moment=date(2025, 3, 1)) == (
        date(2025, 2, 28),
        date(2025, 3, 28),
    )
    with pytest.raises(ChargeError, match="one-time"):
        billing_cycle(item=rule(frequency=Frequency.ONE_TIME), moment=date(2025, 1, 1))


def test_without_proration_the_whole_cycle_is_charged():
    (due,) = due_in(rule(prorate=False), 2025, 3, move_in=date(2025, 3, 31))
    assert due.amount == D("3000.00") and due.proration == 1


def test_a_price_change_mid_cycle_through_validity():
    old = rule(day_of_month=15, valid_to=date(2025, 6, 30))
    new = rule(price="3300.00", day_of_month=15, valid_from=date(2025, 7, 1))
    june = due_in(old, 2025, 6) + due_in(new, 2025, 6)
    july = due_in(old, 2025, 7) + due_in(new, 2025, 7)
    # cycle 15 Jun - 14 Jul (30 days): 16 days at 3000 billed in June, where the cycle starts;
    # 14 days at 3300 billed in July, where the new price starts, under its own key.
    assert [(d.key, d.amount) for d in june] == [("rent/2025-06-15", D("1600.00"))]
    assert [(d.key, d.amount) for d in july] == [
        ("rent/2025-06-15/from-2025-07-01", D("1540.00")),
        ("rent/2025-07-15", D("3300.00")),
    ]


def test_a_per_unit_price_applies_to_whole_periods():
    old = rule(code="water", price="4.10", basis=Basis.PER_UNIT, valid_to=date(2025, 6, 14))
    new = rule(code="water", price="4.50", basis=Basis.PER_UNIT, valid_from=date(2025, 6, 15))
    usage = {"usage": D(10), "usage_unit": "m3"}
    assert [d.amount for d in due_in(old, 2025, 6, **usage) + due_in(new, 2025, 6, **usage)] == [
        D("41.00")
    ]
    assert [d.amount for d in due_in(old, 2025, 7, **usage) + due_in(new, 2025, 7, **usage)] == [
        D("45.00")
    ]


def test_one_time_items_are_billed_once_unprorated():
    cleaning = rule(code="cleaning", price="200.00", frequency=Frequency.ONE_TIME, prorate=True)
    (due,) = due_in(cleaning, 2025, 3, move_in=date(2025, 3, 10))
    assert (due.amount, due.proration, due.unit, due.key) == (
        D("200.00"),
        1,
        "once",
        "cleaning/once",
    )
    assert (due.cycle_start, due.cycle_end) == (date(2025, 3, 10), date(2025, 3, 11))
    assert due_in(cleaning, 2025, 4, move_in=date(2025, 3, 10)) == []
    # introduced later for tenants already living there: billed when it starts to apply
    meter_fee = rule(
        code="meter", price="50.00", frequency=Frequency.ONE_TIME, valid_from=date(2025, 5, 2)
    )
    assert due_in(meter_fee, 2025, 3, move_in=date(2024, 1, 1)) == []
    assert [d.cycle_start for d in due_in(meter_fee, 2025, 5, move_in=date(2024, 1, 1))] == [
        date(2025, 5, 2)
    ]
    assert due_in(meter_fee, 2025, 5, move_in=date(2024, 1, 1), move_out=date(2025, 4, 30)) == []
    # with neither date: due in the period asked for, always under the same key
    plain = rule(code="deposit-fee", price="10.00", frequency=Frequency.ONE_TIME)
    assert (
        [d.key for d in due_in(plain, 2025, 3)]
        == [d.key for d in due_in(plain, 2025, 4)]
        == ["deposit-fee/once"]
    )
    assert due_in(plain, 2025, 4, move_out=date(2025, 3, 31)) == []


def test_per_area_items():
    fee = rule(code="property", price="3.50", basis=Basis.PER_AREA)
    (due,) = due_in(fee, 2025, 3, room_area_m2=D("45.5"))
    assert (due.quantity, due.unit, due.amount) == (D("45.5"), "m2", D("159.25"))
    (half,) = due_in(fee, 2025, 4, move_in=date(2025, 4, 16), room_area_m2=D("45.5"))
    assert half.amount == D("79.63")  # 159.25 x 15/30 = 79.625, half-up
    with pytest.raises(ChargeError, match="'Property' is per m² but the room area is unknown"):
        due_in(fee, 2025, 3)
    with pytest.raises(ChargeError, match="'Property' is per m² but the room area is 0"):
        due_in(fee, 2025, 3, room_area_m2=D(0))


def test_per_unit_items_are_billed_per_period_on_the_consumption():
    fee = rule(code="sewage", price="0.95", basis=Basis.PER_UNIT, day_of_month=20)
    (due,) = due_in(fee, 2025, 3, move_in=date(2025, 3, 10), usage=D("12.3"), usage_unit="m3")
    assert (due.quantity, due.unit, due.proration, due.amount) == (D("12.3"), "m3", 1, D("11.69"))
    assert (due.cycle_start, due.cycle_end, due.key) == (
        date(2025, 3, 1),
        date(2025, 4, 1),
        "sewage/2025-03-01",
    )
    assert due_in(fee, 2025, 3, move_in=date(2025, 4, 2), usage=D(0)) == []
    with pytest.raises(ChargeError, match="consumption in the period is missing"):
        due_in(fee, 2025, 3)
    with pytest.raises(ChargeError, match="at least 0"):
        due_in(fee, 2025, 3, usage=D(-1))
    with pytest.raises(ChargeError, match="kWh or m3"):
        due_in(fee, 2025, 3, usage=D(1), usage_unit="litre")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"day_of_month": 29}, "1 to 28"),
        ({"day_of_month": 0}, "1 to 28"),
        ({"valid_from": date(2025, 2, 1), "valid_to": date(2025, 1, 31)}, "before valid from"),
        ({"code": " "}, "needs a code"),
        ({"frequency": "weekly"}, "weekly"),
    ],
)
def test_bad_items_are_refused(extra, message):
    with pytest.raises(ChargeError, match=message):
        rule(**extra)
    with pytest.raises(ChargeError, match="Decimal"):
        ChargeItemRule(
            code="x", name="X", basis=Basis.FIXED, unit_price=1.5, frequency=Frequency.MONTHLY
        )  # type: ignore[arg-type]


def test_bad_periods_are_refused():
    with pytest.raises(ChargeError, match="is empty"):
        charges_due(
            item=rule(),
            period_start=date(2025, 3, 1),
            period_end=date(2025, 3, 1),
            move_in=None,
            move_out=None,
        )
    with pytest.raises(ChargeError, match="before the move-in"):
        due_in(rule(), 2025, 3, move_in=date(2025, 3, 2), move_out=date(2025, 3, 1))


# --- properties -----------------------------------------------------------------------------

prices = st.decimals(
    min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False
)
days_of_month = st.integers(min_value=1, max_value=28)
YEAR = 2024  # a leap year: 29 February and 366 days


def year_dues(item, *, move_in, move_out, year=YEAR):
    return [
        d for m in range(1, 13) for d in due_in(item, year, m, move_in=move_in, move_out=move_out)
    ]


def exact_cycle_shares(*, months_per_cycle, day, price, move_in, move_out, year=YEAR):
    """Per cycle overlapping the service: price x service days / cycle days, counted by hand."""
    anchors = [
        date(y, m, day)
        for y in (year - 1, year, year + 1)
        for m in range(1, 13)
        if (m - 1) % months_per_cycle == 0
    ]
    service_end = move_out + timedelta(days=1)
    shares = {}
    for start, end in itertools.pairwise(anchors):
        if start > date(year, 12, 31):
            break
        overlap = (min(end, service_end) - max(start, move_in)).days
        if overlap > 0:
            shares[start] = Fraction(price) * overlap / (end - start).days
    return shares


@settings(max_examples=150, deadline=None)
@given(
    price=prices,
    day=days_of_month,
    move_in=st.one_of(
        st.none(), st.dates(min_value=date(2020, 1, 1), max_value=date(YEAR - 1, 12, 1))
    ),
    move_out=st.one_of(
        st.none(), st.dates(min_value=date(YEAR + 1, 2, 1), max_value=date(2030, 1, 1))
    ),
)
def test_a_whole_year_of_a_monthly_item_is_twelve_prices_exactly(price, day, move_in, move_out):
    dues = year_dues(rule(price=str(price), day_of_month=day), move_in=move_in, move_out=move_out)
    assert len(dues) == 12
    assert sum(d.amount for d in dues) == 12 * price


@settings(max_examples=200, deadline=None)
@given(
    price=prices,
    day=days_of_month,
    frequency=st.sampled_from([Frequency.MONTHLY, Frequency.QUARTERLY, Frequency.YEARLY]),
    move_in=st.dates(min_value=date(YEAR, 1, 1), max_value=date(YEAR, 12, 31)),
    stay=st.integers(min_value=0, max_value=366),
)
def test_prorated_amounts_over_a_year_stay_within_half_a_fen_per_cycle(
    price, day, frequency, move_in, stay
):
    move_out = min(move_in + timedelta(days=stay), date(YEAR, 12, 31))
    item = rule(price=str(price), day_of_month=day, frequency=frequency)
    dues = year_dues(item, move_in=move_in, move_out=move_out)
    months = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.YEARLY: 12}[frequency]
    exact = exact_cycle_shares(
        months_per_cycle=months, day=day, price=price, move_in=move_in, move_out=move_out
    )
    assert [d.cycle_start for d in dues] == sorted(exact)
    half_fen = Fraction(1, 200)
    for due in dues:
        assert abs(Fraction(due.amount) - exact[due.cycle_start]) <= half_fen
    assert abs(sum(Fraction(d.amount) for d in dues) - sum(exact.values())) <= half_fen * len(dues)
    # re-running the year changes nothing
    assert year_dues(item, move_in=move_in, move_out=move_out) == dues


SPAN_START, SPAN_END = date(2024, 1, 1), date(2026, 1, 1)
MONTH_STARTS = [date(y, m, 1) for y in (2024, 2025) for m in range(1, 13)] + [SPAN_END]
span_dates = st.one_of(st.none(), st.dates(min_value=date(2023, 6, 1), max_value=date(2026, 6, 1)))


@settings(max_examples=200, deadline=None)
@given(
    price=prices,
    day=days_of_month,
    frequency=st.sampled_from(list(Frequency)),
    basis=st.sampled_from([Basis.FIXED, Basis.PER_AREA]),
    prorate=st.booleans(),
    dates=st.tuples(span_dates, span_dates, span_dates, span_dates),
    cuts=st.sets(st.sampled_from(MONTH_STARTS[1:-1])),
)
def test_any_split_of_the_span_into_periods_bills_each_cycle_once(
    price, day, frequency, basis, prorate, dates, cuts
):
    move_in, move_out, valid_from, valid_to = dates
    if move_in and move_out and move_out < move_in:
        move_in, move_out = move_out, move_in
    if valid_from and valid_to and valid_to < valid_from:
        valid_from, valid_to = valid_to, valid_from
    if frequency is Frequency.ONE_TIME and move_in is None and valid_from is None:
        # without either date a one-time item is due in every period asked for, by design
        move_in = min(SPAN_START + timedelta(days=100), move_out or SPAN_END)
    item = rule(
        price=str(price),
        basis=basis,
        frequency=frequency,
        day_of_month=day,
        prorate=prorate,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    area = D("37.25")
    bounds = [SPAN_START, *sorted(cuts), SPAN_END]

    def dues(start, end):
        return charges_due(
            item=item,
            period_start=start,
            period_end=end,
            move_in=move_in,
            move_out=move_out,
            room_area_m2=area,
        )

    split = [d for start, end in itertools.pairwise(bounds) for d in dues(start, end)]
    whole = dues(SPAN_START, SPAN_END)
    assert split == whole
    assert len({d.key for d in split}) == len(split)
    assert [dues(s, e) for s, e in itertools.pairwise(bounds)] == [
        dues(s, e) for s, e in itertools.pairwise(bounds)
    ]
    for due in split:
        assert due.amount_minor == int(due.amount * 100)
        assert 0 < due.proration <= 1
        assert due.cycle_start < due.cycle_end
