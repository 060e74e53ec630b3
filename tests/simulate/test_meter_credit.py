"""The simulated DL/T 645 meter honours purchase and refund writes by the purchase-count rule."""

from __future__ import annotations

from decimal import Decimal

from meterpay.protocols import dlt645
from meterpay.simulate.clock import ManualClock
from meterpay.simulate.meters import Dlt645Responder, VirtualElectricityMeter
from tests.simulate.factories import DLT_ADDRESS, START, electricity_meter


def write(
    operation: dlt645.CreditOperation, amount: str, count: int, password: str = "02000000"
) -> dlt645.Dlt645Frame:
    return dlt645.credit_write_request(
        DLT_ADDRESS,
        operation,
        amount=Decimal(amount),
        purchase_count=count,
        password=password,
        operator_code="00000000",
    )


def read(responder: Dlt645Responder, di: int) -> Decimal:
    reply = responder.handle(dlt645.read_request(DLT_ADDRESS, di))
    assert reply is not None
    (value,) = dlt645.parse_read_reply(reply, di)
    return Decimal(value)


def meter_and_responder(
    remaining: str = "10.00", count: int = 4
) -> tuple[VirtualElectricityMeter, Dlt645Responder]:
    meter = electricity_meter(
        ManualClock(START), remaining_money=Decimal(remaining), purchase_count=count
    )
    return meter, Dlt645Responder(meter)


def test_next_purchase_number_is_applied_once() -> None:
    meter, responder = meter_and_responder()
    ok = dlt645.write_reply(DLT_ADDRESS)
    assert responder.handle(write(dlt645.CreditOperation.PURCHASE, "50.00", 5)) == ok
    assert meter.remaining_money == Decimal("60.00") and meter.purchase_count == 5
    # the same frame again (its reply was lost): answered, not applied twice
    assert responder.handle(write(dlt645.CreditOperation.PURCHASE, "50.00", 5)) == ok
    assert meter.remaining_money == Decimal("60.00") and meter.purchase_count == 5
    assert read(responder, dlt645.PURCHASE_COUNT) == 5
    assert read(responder, dlt645.LAST_PURCHASE_AMOUNT) == Decimal("50.00")
    assert read(responder, dlt645.REMAINING_BEFORE_LAST_PURCHASE) == Decimal("10.00")
    assert read(responder, dlt645.REMAINING_AFTER_LAST_PURCHASE) == Decimal("60.00")


def test_out_of_sequence_or_unauthorised_purchases_are_refused() -> None:
    meter, responder = meter_and_responder()
    for frame, error in (
        (write(dlt645.CreditOperation.PURCHASE, "50.00", 7), dlt645.ERROR_OTHER),
        (write(dlt645.CreditOperation.PURCHASE, "50.00", 3), dlt645.ERROR_OTHER),
        (write(dlt645.CreditOperation.PURCHASE, "50.00", 5, "02123456"), dlt645.ERROR_UNAUTHORISED),
    ):
        assert responder.handle(frame) == dlt645.error_reply(
            DLT_ADDRESS, dlt645.Function.WRITE, error
        )
    assert meter.remaining_money == Decimal("10.00") and meter.purchase_count == 4


def test_refund_leaves_the_given_remaining_money_and_records_what_was_taken() -> None:
    meter, responder = meter_and_responder("42.50", 9)
    assert responder.handle(write(dlt645.CreditOperation.REFUND, "0", 10)) == dlt645.write_reply(
        DLT_ADDRESS
    )
    assert meter.remaining_money == 0 and meter.purchase_count == 10
    assert read(responder, dlt645.REMAINING_BEFORE_LAST_PURCHASE) == Decimal("42.50")
    assert read(responder, dlt645.REMAINING_AFTER_LAST_PURCHASE) == 0
    assert read(responder, dlt645.LAST_PURCHASE_AMOUNT) == 0  # a refund buys nothing
    # a refund never adds money
    assert responder.handle(write(dlt645.CreditOperation.REFUND, "5.00", 11)) == (
        dlt645.error_reply(DLT_ADDRESS, dlt645.Function.WRITE, dlt645.ERROR_OTHER)
    )
    assert meter.remaining_money == 0 and meter.purchase_count == 10


def test_a_purchase_at_the_meter_itself_counts_too() -> None:
    meter, _ = meter_and_responder()
    meter.top_up(Decimal("20.00"))
    assert meter.purchase_count == 5 and meter.remaining_money == Decimal("30.00")
