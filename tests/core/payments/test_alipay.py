"""Alipay RSA2 notifications: genuine ones verify, every forgery raises its typed error."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.payments import (
    ForgedNotification,
    MalformedNotification,
    NotificationError,
    PaymentStatus,
    alipay,
)

from .helpers import alipay_form, alipay_params, public_key_pem, rsa_key, sign_alipay

ALIPAY_KEY = alipay.load_alipay_public_key(pem=public_key_pem("alipay"))


def verify(params: dict[str, str], **kwargs: Any) -> Any:
    return alipay.verify_notification(params=params, alipay_public_key=ALIPAY_KEY, **kwargs)


def test_genuine_notification_verifies() -> None:
    note = verify(sign_alipay(alipay_params()), expected_app_id="2015102700040153")
    assert note.provider == "alipay"
    assert note.merchant_order_no == "MP20250301-0002"
    assert note.provider_transaction_id == "2025030122001400111234567890"
    assert note.amount_minor == 1234
    assert note.currency == "CNY"
    assert note.status is PaymentStatus.PAID
    assert note.paid_at == datetime(2025, 3, 1, 10, 0, 5, tzinfo=UTC)


def test_genuine_form_body_verifies() -> None:
    body = alipay_form(sign_alipay(alipay_params()))
    assert verify(alipay.parse_form(body=body)).amount_minor == 1234


def test_gbk_notification_verifies() -> None:
    params = sign_alipay(alipay_params(charset="GBK"), encoding="gbk")
    body = alipay_form(params, encoding="gbk")
    parsed = alipay.parse_form(body=body)
    assert parsed["subject"] == "电费充值 房间 101"
    assert verify(parsed).amount_minor == 1234


def test_signing_string_sorts_and_skips_sign_and_empty_values() -> None:
    params = {"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "empty": "", "c": "a=b&c"}
    assert alipay.signing_string(params=params) == "a=1&b=2&c=a=b&c"


@pytest.mark.parametrize(
    ("text", "minor"),
    [("0.01", 1), ("0.1", 10), ("12.34", 1234), ("100", 10000), ("99999999.99", 9999999999)],
)
def test_amounts_are_exact(text: str, minor: int) -> None:
    assert verify(sign_alipay(alipay_params(total_amount=text))).amount_minor == minor


@pytest.mark.parametrize("text", ["12.345", "-1.00", "1e2", "12,34", " 12.34", "NaN", "0x10", ".5"])
def test_odd_amounts_are_malformed(text: str) -> None:
    with pytest.raises(MalformedNotification):
        verify(sign_alipay(alipay_params(total_amount=text)))


@pytest.mark.parametrize(
    ("trade_status", "status"),
    [
        ("TRADE_FINISHED", PaymentStatus.PAID),
        ("WAIT_BUYER_PAY", PaymentStatus.PENDING),
        ("TRADE_CLOSED", PaymentStatus.CLOSED),
    ],
)
def test_trade_statuses(trade_status: str, status: PaymentStatus) -> None:
    gmt_payment = None if status is not PaymentStatus.PAID else "2025-03-01 18:00:05"
    params = alipay_params(trade_status=trade_status, gmt_payment=gmt_payment)
    assert verify(sign_alipay(params)).status is status


def test_refund_notification_is_not_a_payment() -> None:
    params = alipay_params(
        refund_fee="2.00", gmt_refund="2025-03-02 09:00:00.123", out_biz_no="RF-1"
    )
    assert verify(sign_alipay(params)).status is PaymentStatus.REFUNDED


# --- forgeries ---------------------------------------------------------------------------


def test_altered_amount_is_forged() -> None:
    params = sign_alipay(alipay_params())
    with pytest.raises(ForgedNotification):
        verify({**params, "total_amount": "1234.00"})


def test_altered_or_added_parameter_is_forged() -> None:
    params = sign_alipay(alipay_params())
    with pytest.raises(ForgedNotification):
        verify({**params, "out_trade_no": "MP-someone-else"})
    with pytest.raises(ForgedNotification):
        verify({**params, "extra": "1"})
    params.pop("buyer_id")
    with pytest.raises(ForgedNotification):
        verify(params)


def test_wrong_key_is_forged() -> None:
    with pytest.raises(ForgedNotification):
        verify(sign_alipay(alipay_params(), key=rsa_key("attacker")))


def test_signed_by_our_own_app_key_is_forged() -> None:
    # A classic mistake is to verify with the app's key pair; only Alipay's key counts.
    with pytest.raises(ForgedNotification):
        verify(sign_alipay(alipay_params(), key=rsa_key("merchant-app")))


@pytest.mark.parametrize("sign_type", ["RSA", "MD5", "rsa2"])
def test_weaker_sign_types_are_refused(sign_type: str) -> None:
    params = sign_alipay(alipay_params())
    with pytest.raises(ForgedNotification):
        verify({**params, "sign_type": sign_type})


def test_missing_or_bad_sign_is_forged() -> None:
    params = sign_alipay(alipay_params())
    with pytest.raises(ForgedNotification):
        verify({k: v for k, v in params.items() if k != "sign"})
    with pytest.raises(ForgedNotification):
        verify({**params, "sign": "@@not base64@@"})
    with pytest.raises(ForgedNotification):
        verify({**params, "sign": "签名"})


def test_other_app_or_seller_is_forged() -> None:
    params = sign_alipay(alipay_params())
    with pytest.raises(ForgedNotification):
        verify(params, expected_app_id="2021000000000000")
    with pytest.raises(ForgedNotification):
        verify(params, expected_seller_id="2088000000000000")


# --- malformed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["trade_no", "out_trade_no", "total_amount", "trade_status", "gmt_payment"]
)
def test_missing_field_is_malformed(field: str) -> None:
    with pytest.raises(MalformedNotification):
        verify(sign_alipay(alipay_params(**{field: None})))


def test_bad_payment_time_is_malformed() -> None:
    with pytest.raises(MalformedNotification):
        verify(sign_alipay(alipay_params(gmt_payment="yesterday")))


def test_unknown_status_or_charset_is_malformed() -> None:
    with pytest.raises(MalformedNotification):
        verify(sign_alipay(alipay_params(trade_status="TRADE_PAID")))
    with pytest.raises(MalformedNotification):
        verify({**sign_alipay(alipay_params()), "charset": "latin-1"})


def test_repeated_form_key_is_malformed() -> None:
    body = alipay_form(sign_alipay(alipay_params())) + b"&total_amount=1000.00"
    with pytest.raises(MalformedNotification):
        alipay.parse_form(body=body)


@pytest.mark.parametrize(
    "body", [b"\xff\xfe", b"a=%FF%FE&charset=utf-8", b"=&&==", b"charset=klingon"]
)
def test_bad_form_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedNotification):
        alipay.parse_form(body=body)


# --- never crash ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_form_only_raises_notification_errors(body: bytes) -> None:
    with pytest.raises(NotificationError):
        verify(alipay.parse_form(body=body))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(alipay_params())), st.text(max_size=20), max_size=6))
def test_genuinely_signed_garbage_only_raises_notification_errors(changes: dict[str, str]) -> None:
    params = alipay_params(**changes)
    with contextlib.suppress(NotificationError):
        verify(sign_alipay(params))
