"""WeChat Pay v3 notifications: genuine ones verify, every forgery raises its typed error."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterpay.core.payments import (
    ForgedNotification,
    MalformedNotification,
    NotificationError,
    PaymentStatus,
    StaleNotification,
    wechat,
)

from .helpers import (
    API_V3_KEY,
    NOW,
    encrypt_resource,
    genuine_wechat,
    platform_certificate,
    public_key_pem,
    rsa_key,
    rsa_sign,
    wechat_body,
    wechat_headers,
    wechat_transaction,
)

SERIAL, PLATFORM_KEY = wechat.load_platform_certificate(pem=platform_certificate("wechat"))
KEYS = {SERIAL: PLATFORM_KEY}


def verify(headers: dict[str, str], body: bytes, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"platform_keys": KEYS, "api_v3_key": API_V3_KEY, "now": NOW}
    options.update(kwargs)
    return wechat.verify_notification(headers=headers, body=body, **options)


def signed(plaintext: bytes, **resource: Any) -> tuple[dict[str, str], bytes]:
    """Genuinely signed by the platform key, whatever the (possibly broken) resource."""
    body = wechat_body(encrypt_resource(plaintext, **resource))
    return wechat_headers(body, serial=SERIAL, key=rsa_key("wechat")), body


def test_genuine_notification_verifies() -> None:
    headers, body, _ = genuine_wechat()
    note = verify(headers, body, expected_mchid="1230000109", expected_appid="wxd678efh567hg6787")
    assert note.provider == "wechat"
    assert note.merchant_order_no == "MP20250301-0001"
    assert note.provider_transaction_id == "4200002512202503011234567890"
    assert note.amount_minor == 5000  # amount.total is fen
    assert note.currency == "CNY"
    assert note.status is PaymentStatus.PAID
    assert note.paid_at == datetime(2025, 3, 1, 10, 0, 5, tzinfo=UTC)


def test_serial_is_upper_case_hex() -> None:
    assert SERIAL.upper() == SERIAL
    int(SERIAL, 16)


def test_headers_are_case_insensitive() -> None:
    headers, body, _ = genuine_wechat()
    assert verify({k.lower(): v for k, v in headers.items()}, body).amount_minor == 5000


def test_public_key_mode() -> None:
    pem = public_key_pem("wechat-pub")
    key_id = "PUB_KEY_ID_0112345678202503010000000000000000"
    body = wechat_body(encrypt_resource(json.dumps(wechat_transaction()).encode()))
    headers = wechat_headers(body, serial=key_id, key=rsa_key("wechat-pub"))
    keys = {key_id: wechat.load_public_key(pem=pem), **KEYS}
    assert verify(headers, body, platform_keys=keys).amount_minor == 5000


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("REFUND", PaymentStatus.REFUNDED),
        ("NOTPAY", PaymentStatus.PENDING),
        ("CLOSED", PaymentStatus.CLOSED),
    ],
)
def test_other_trade_states(state: str, status: PaymentStatus) -> None:
    transaction = wechat_transaction(trade_state=state)
    if state != "REFUND":
        del transaction["success_time"]
    headers, body = signed(json.dumps(transaction).encode())
    note = verify(headers, body)
    assert note.status is status


# --- forgeries ---------------------------------------------------------------------------


def test_altered_body_is_forged() -> None:
    headers, body, _ = genuine_wechat()
    with pytest.raises(ForgedNotification):
        verify(headers, body.replace("支付成功".encode(), b"payment ok"))
    with pytest.raises(ForgedNotification):
        verify(headers, body + b" ")


def test_altered_amount_is_forged() -> None:
    headers, _, _ = genuine_wechat()
    # Whoever knows the APIv3 key can re-encrypt, but cannot re-sign.
    richer = wechat_body(
        encrypt_resource(
            json.dumps(wechat_transaction(amount={"total": 500000, "currency": "CNY"})).encode()
        )
    )
    with pytest.raises(ForgedNotification):
        verify(headers, richer)


def test_wrong_key_is_forged() -> None:
    body = wechat_body(encrypt_resource(json.dumps(wechat_transaction()).encode()))
    headers = wechat_headers(body, serial=SERIAL, key=rsa_key("attacker"))
    with pytest.raises(ForgedNotification):
        verify(headers, body)


def test_unknown_serial_is_forged() -> None:
    headers, body, _ = genuine_wechat()
    with pytest.raises(ForgedNotification, match="Serial"):
        verify({**headers, "Wechatpay-Serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"}, body)


def test_serial_of_another_known_key_is_forged() -> None:
    other_serial, other_key = wechat.load_platform_certificate(pem=platform_certificate("old"))
    headers, body, _ = genuine_wechat()
    keys = {**KEYS, other_serial: other_key}
    with pytest.raises(ForgedNotification):
        verify({**headers, "Wechatpay-Serial": other_serial}, body, platform_keys=keys)


def test_signature_probe_is_forged() -> None:
    # WeChat Pay sends deliberately bad signatures to check that merchants verify.
    headers, body, _ = genuine_wechat()
    probe = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]
    with pytest.raises(ForgedNotification):
        verify({**headers, "Wechatpay-Signature": probe}, body)


def test_bad_base64_signature_is_forged() -> None:
    headers, body, _ = genuine_wechat()
    with pytest.raises(ForgedNotification):
        verify({**headers, "Wechatpay-Signature": "not*base64"}, body)


def test_missing_signature_is_forged() -> None:
    headers, body, _ = genuine_wechat()
    del headers["Wechatpay-Signature"]
    with pytest.raises(ForgedNotification):
        verify(headers, body)


def test_timestamp_is_signed() -> None:
    headers, body, _ = genuine_wechat()
    with pytest.raises(ForgedNotification):
        verify({**headers, "Wechatpay-Timestamp": str(int(NOW.timestamp()) + 1)}, body)


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-6), timedelta(minutes=6), timedelta(days=-1)]
)
def test_stale_timestamp(offset: timedelta) -> None:
    body = wechat_body(encrypt_resource(json.dumps(wechat_transaction()).encode()))
    headers = wechat_headers(
        body, serial=SERIAL, key=rsa_key("wechat"), timestamp=int((NOW + offset).timestamp())
    )
    with pytest.raises(StaleNotification):
        verify(headers, body)
    # The window is a parameter.
    assert verify(headers, body, max_age=timedelta(days=2)).amount_minor == 5000


def test_wrong_aes_tag_is_forged() -> None:
    resource = encrypt_resource(json.dumps(wechat_transaction()).encode())
    raw = bytearray(base64.b64decode(resource["ciphertext"]))
    raw[-1] ^= 0x01
    resource["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    body = wechat_body(resource)
    headers = wechat_headers(body, serial=SERIAL, key=rsa_key("wechat"))
    with pytest.raises(ForgedNotification, match="AES-GCM"):
        verify(headers, body)


def test_wrong_api_v3_key_is_forged() -> None:
    headers, body, _ = genuine_wechat()
    with pytest.raises(ForgedNotification):
        verify(headers, body, api_v3_key=b"X" * 32)


def test_wrong_associated_data_is_forged() -> None:
    resource = encrypt_resource(json.dumps(wechat_transaction()).encode())
    resource["associated_data"] = "refund"
    body = wechat_body(resource)
    with pytest.raises(ForgedNotification):
        verify(wechat_headers(body, serial=SERIAL, key=rsa_key("wechat")), body)


def test_other_merchant_is_forged() -> None:
    headers, body, _ = genuine_wechat(mchid="1900000001")
    with pytest.raises(ForgedNotification):
        verify(headers, body, expected_mchid="1230000109")


# --- malformed ---------------------------------------------------------------------------


def test_bad_base64_ciphertext_is_malformed() -> None:
    resource = encrypt_resource(b"{}")
    resource["ciphertext"] = "%%%"
    body = wechat_body(resource)
    with pytest.raises(MalformedNotification):
        verify(wechat_headers(body, serial=SERIAL, key=rsa_key("wechat")), body)


@pytest.mark.parametrize("header", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"])
def test_missing_header_is_malformed(header: str) -> None:
    headers, body, _ = genuine_wechat()
    del headers[header]
    with pytest.raises(MalformedNotification):
        verify(headers, body)


def test_non_numeric_timestamp_is_malformed() -> None:
    body = b"{}"
    headers = wechat_headers(body, serial=SERIAL, key=rsa_key("wechat"))
    ts = "\uff11\uff12\uff13"  # full-width digits: isdigit() but not Unix seconds
    headers["Wechatpay-Timestamp"] = ts
    headers["Wechatpay-Signature"] = rsa_sign(
        rsa_key("wechat"),
        wechat.signing_message(timestamp=ts, nonce=headers["Wechatpay-Nonce"], body=body),
    )
    with pytest.raises(MalformedNotification):
        verify(headers, body)


@pytest.mark.parametrize(
    "field", ["out_trade_no", "transaction_id", "trade_state", "amount", "success_time"]
)
def test_missing_transaction_field_is_malformed(field: str) -> None:
    transaction = wechat_transaction()
    del transaction[field]
    headers, body = signed(json.dumps(transaction).encode())
    with pytest.raises(MalformedNotification):
        verify(headers, body)


@pytest.mark.parametrize("total", [50.0, "5000", True, -1, None])
def test_amount_total_must_be_int_fen(total: object) -> None:
    headers, body = signed(
        json.dumps(wechat_transaction(amount={"total": total, "currency": "CNY"})).encode()
    )
    with pytest.raises(MalformedNotification):
        verify(headers, body)


@pytest.mark.parametrize(
    "plaintext", [b"not json", b"[]", json.dumps(wechat_transaction(trade_state="PAID?")).encode()]
)
def test_bad_resource_is_malformed(plaintext: bytes) -> None:
    headers, body = signed(plaintext)
    with pytest.raises(MalformedNotification):
        verify(headers, body)


def test_non_payment_event_is_malformed() -> None:
    body = wechat_body(encrypt_resource(b"{}"), event_type="REFUND.SUCCESS")
    with pytest.raises(MalformedNotification):
        verify(wechat_headers(body, serial=SERIAL, key=rsa_key("wechat")), body)


def test_bad_envelope_is_malformed() -> None:
    for body in [b"not json", b"[1]", json.dumps({"event_type": "TRANSACTION.SUCCESS"}).encode()]:
        with pytest.raises(MalformedNotification):
            verify(wechat_headers(body, serial=SERIAL, key=rsa_key("wechat")), body)


def test_short_api_v3_key_is_a_configuration_error() -> None:
    headers, body, _ = genuine_wechat()
    with pytest.raises(ValueError):
        verify(headers, body, api_v3_key=b"short")


# --- never crash ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature"]
        ),
        st.text(max_size=40),
    ),
    st.binary(max_size=200),
)
def test_arbitrary_input_only_raises_notification_errors(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(NotificationError):
        verify(headers, body)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_any_single_byte_change_is_forged(data: st.DataObject) -> None:
    headers, body, _ = genuine_wechat()
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(ForgedNotification):
        verify(headers, tampered)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=6,
    )
)
def test_genuine_but_garbled_resource_only_raises_notification_errors(
    fields: dict[str, Any],
) -> None:
    headers, body = signed(json.dumps(wechat_transaction(**fields)).encode())
    with contextlib.suppress(NotificationError):
        verify(headers, body)
