"""DL/T 645 purchase (credit download) and refund writes: golden frames, round trips, errors."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterpay.protocols import dlt645
from meterpay.protocols.errors import (
    EncodeError,
    ExceptionReply,
    FrameError,
    ProtocolError,
    UnexpectedReply,
    UnknownDataIdentifier,
)

ADDRESS = "000000000001"
CREDENTIALS = {"password": "02000000", "operator_code": "00000000"}


def purchase(amount: str = "50.00", count: int = 2) -> dlt645.Dlt645Frame:
    return dlt645.credit_write_request(
        ADDRESS,
        dlt645.CreditOperation.PURCHASE,
        amount=Decimal(amount),
        purchase_count=count,
        **CREDENTIALS,
    )


def test_purchase_golden_frame() -> None:
    # DI 070104FF -> FF 04 01 07 (+33: 32 37 34 3A); password 02 000000 -> 35 33 33 33;
    # operator 33 33 33 33; 50.00 -> 00 50 00 00 (+33: 33 83 33 33); count 2 -> 35 33.
    # checksum: the sum of the 28 bytes from the first 68, mod 256 = EC.
    wire = bytes.fromhex("68 010000000000 68 14 12 3237343A 35333333 33333333 33833333 3533 EC 16")
    assert dlt645.encode_frame(purchase(), preamble=0) == wire
    decoded = dlt645.parse_credit_write(dlt645.decode_frame(wire))
    assert decoded == dlt645.CreditWrite(
        ADDRESS, dlt645.CreditOperation.PURCHASE, "02000000", "00000000", Decimal("50.00"), 2
    )


def test_refund_golden_frame() -> None:
    frame = dlt645.credit_write_request(
        ADDRESS, dlt645.CreditOperation.REFUND, amount=Decimal(0), purchase_count=7, **CREDENTIALS
    )
    # DI 070103FF -> FF 03 01 07 (+33: 32 36 34 3A); amount 0 -> 33 33 33 33; 7 -> 3A 33
    wire = dlt645.encode_frame(frame, preamble=0)
    assert wire[10:14] == bytes.fromhex("3236343A")
    assert wire[22:28] == bytes.fromhex("33333333 3A33")
    assert wire[-2] == sum(wire[:-2]) & 0xFF
    assert dlt645.parse_credit_write(dlt645.decode_frame(wire)).operation is (
        dlt645.CreditOperation.REFUND
    )


def test_write_replies() -> None:
    assert dlt645.encode_frame(dlt645.write_reply(ADDRESS), preamble=0) == bytes.fromhex(
        "68 010000000000 68 94 00 65 16"
    )
    dlt645.parse_write_reply(dlt645.write_reply(ADDRESS))
    error = dlt645.error_reply(ADDRESS, dlt645.Function.WRITE, dlt645.ERROR_OTHER)
    assert error.control == 0xD4
    with pytest.raises(ExceptionReply) as caught:
        dlt645.parse_write_reply(error)
    assert caught.value.code == dlt645.ERROR_OTHER
    with pytest.raises(UnexpectedReply):
        dlt645.parse_write_reply(dlt645.relay_control_reply(ADDRESS))


def test_last_purchase_record_registers_read() -> None:
    for di in (
        dlt645.LAST_PURCHASE_AMOUNT,
        dlt645.REMAINING_BEFORE_LAST_PURCHASE,
        dlt645.REMAINING_AFTER_LAST_PURCHASE,
    ):
        reply = dlt645.read_reply(ADDRESS, di, [Decimal("12.34")])
        assert dlt645.parse_read_reply(dlt645.decode_frame(dlt645.encode_frame(reply)), di) == (
            Decimal("12.34"),
        )


@pytest.mark.parametrize(
    ("amount", "count"),
    [("0", 2), ("-1.00", 2), ("0.001", 2), ("1000000.00", 2), ("1.00", 0), ("1.00", 10000)],
)
def test_values_that_cannot_be_sent_are_refused(amount: str, count: int) -> None:
    with pytest.raises(EncodeError):
        purchase(amount, count)


def test_decoder_errors_are_typed() -> None:
    good = purchase()
    with pytest.raises(FrameError):
        dlt645.parse_credit_write(
            dlt645.Dlt645Frame(ADDRESS, dlt645.Function.WRITE, good.data[:-1])
        )
    with pytest.raises(FrameError):
        dlt645.parse_credit_write(dlt645.read_request(ADDRESS, dlt645.TOTAL_ENERGY))
    with pytest.raises(UnknownDataIdentifier):
        other = (0x04000101).to_bytes(4, "little") + good.data[4:]
        dlt645.parse_credit_write(dlt645.Dlt645Frame(ADDRESS, dlt645.Function.WRITE, other))
    not_bcd = good.data[:12] + b"\xaa" + good.data[13:]
    with pytest.raises(FrameError):
        dlt645.parse_credit_write(dlt645.Dlt645Frame(ADDRESS, dlt645.Function.WRITE, not_bcd))


@given(
    address=st.text(alphabet="0123456789", min_size=12, max_size=12),
    operation=st.sampled_from(list(dlt645.CreditOperation)),
    cents=st.integers(min_value=1, max_value=99_999_999),
    count=st.integers(min_value=1, max_value=9999),
    password=st.text(alphabet="0123456789ABCDEF", min_size=8, max_size=8),
    operator_code=st.text(alphabet="0123456789ABCDEF", min_size=8, max_size=8),
)
def test_credit_write_round_trip(
    address: str,
    operation: dlt645.CreditOperation,
    cents: int,
    count: int,
    password: str,
    operator_code: str,
) -> None:
    amount = Decimal(cents).scaleb(-2)
    frame = dlt645.credit_write_request(
        address,
        operation,
        amount=amount,
        purchase_count=count,
        password=password,
        operator_code=operator_code,
    )
    decoded = dlt645.parse_credit_write(dlt645.decode_frame(dlt645.encode_frame(frame)))
    assert decoded == dlt645.CreditWrite(address, operation, password, operator_code, amount, count)


@given(data=st.binary(max_size=40))
def test_hostile_write_payloads_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        dlt645.parse_credit_write(dlt645.Dlt645Frame(ADDRESS, dlt645.Function.WRITE, data))
