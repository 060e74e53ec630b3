"""The forwarding provider: HMAC-SHA256 over ``timestamp.body``, replay window, typed errors."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
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
    forwarding,
)

from .helpers import NOW

SECRET = b"s3cret-shared-with-acme"


def callback_body(**overrides: Any) -> bytes:
    payload: dict[str, Any] = {
        "order_no": "MP20250301-0003",
        "transaction_id": "acme-77",
        "amount_minor": 2599,
        "currency": "USD",
        "status": "paid",
        "paid_at": "2025-03-01T09:59:30Z",
    }
    payload.update(overrides)
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def verify(headers: dict[str, str], body: bytes, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"secrets": [SECRET], "provider_name": "acme", "now": NOW}
    options.update(kwargs)
    return forwarding.verify_callback(headers=headers, body=body, **options)


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1740823200.{}", hashlib.sha256).hexdigest()
    assert forwarding.compute_signature(secret=SECRET, timestamp=1740823200, body=b"{}") == expected


def test_genuine_callback_verifies() -> None:
    body = callback_body()
    note = verify(forwarding.sign_request(secret=SECRET, body=body, now=NOW), body)
    assert note.provider == "forward.acme"
    assert note.provider_transaction_id == "acme-77"
    assert note.amount_minor == 2599
    assert note.currency == "USD"
    assert note.status is PaymentStatus.PAID
    assert note.paid_at == datetime(2025, 3, 1, 9, 59, 30, tzinfo=UTC)


def test_outgoing_request_is_canonical_and_verifiable() -> None:
    body = forwarding.payment_request_body(
        order_no="MP-1",
        amount_minor=1000,
        currency="HKD",
        account_reference="A-1",
        notify_url="https://pay.example/cb/acme",
    )
    assert body == (
        b'{"account_reference":"A-1","amount_minor":1000,"currency":"HKD","description":"",'
        b'"notify_url":"https://pay.example/cb/acme","order_no":"MP-1"}'
    )
    headers = forwarding.sign_request(secret=SECRET, body=body, now=NOW)
    assert headers["X-Meterpay-Timestamp"] == str(int(NOW.timestamp()))
    assert headers["X-Meterpay-Signature"].startswith("v1=")
    forwarding.verify_signature(headers=headers, body=body, secrets=[SECRET], now=NOW)
    with pytest.raises(ValueError):
        forwarding.payment_request_body(
            order_no="MP-1", amount_minor=0, currency="HKD", account_reference="A", notify_url="u"
        )


def test_secret_rotation() -> None:
    body = callback_body()
    old = forwarding.sign_request(secret=b"old", body=body, now=NOW)
    assert verify(old, body, secrets=[SECRET, b"old"]).amount_minor == 2599
    new = forwarding.sign_request(secret=SECRET, body=body, now=NOW)
    both = {
        **new,
        "X-Meterpay-Signature": old["X-Meterpay-Signature"] + "," + new["X-Meterpay-Signature"],
    }
    assert verify(both, body).amount_minor == 2599


def test_headers_are_case_insensitive() -> None:
    body = callback_body()
    headers = {
        k.lower(): v for k, v in forwarding.sign_request(secret=SECRET, body=body, now=NOW).items()
    }
    assert verify(headers, body).amount_minor == 2599


# --- forgeries and replays -------------------------------------------------------------


def test_altered_body_or_amount_is_forged() -> None:
    body = callback_body()
    headers = forwarding.sign_request(secret=SECRET, body=body, now=NOW)
    with pytest.raises(ForgedNotification):
        verify(headers, callback_body(amount_minor=259900))
    with pytest.raises(ForgedNotification):
        verify(headers, body + b"\n")


def test_wrong_secret_is_forged() -> None:
    body = callback_body()
    with pytest.raises(ForgedNotification):
        verify(forwarding.sign_request(secret=b"guess", body=body, now=NOW), body)


def test_moved_timestamp_is_forged() -> None:
    body = callback_body()
    headers = forwarding.sign_request(secret=SECRET, body=body, now=NOW - timedelta(hours=1))
    headers["X-Meterpay-Timestamp"] = str(int(NOW.timestamp()))
    with pytest.raises(ForgedNotification):
        verify(headers, body)


@pytest.mark.parametrize("header", ["", "v0=abc", "deadbeef", "v1=", "v1=zz"])
def test_missing_or_bad_signature_is_forged(header: str) -> None:
    body = callback_body()
    headers = forwarding.sign_request(secret=SECRET, body=body, now=NOW)
    headers["X-Meterpay-Signature"] = header
    with pytest.raises(ForgedNotification):
        verify(headers, body)


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(minutes=-6)])
def test_replay_outside_the_window_is_stale(age: timedelta) -> None:
    body = callback_body()
    headers = forwarding.sign_request(secret=SECRET, body=body, now=NOW - age)
    with pytest.raises(StaleNotification):
        verify(headers, body)
    assert verify(headers, body, max_age=timedelta(minutes=10)).amount_minor == 2599


@pytest.mark.parametrize("timestamp", ["", "soon", "-5", "1e9", "99999999999999999"])
def test_bad_timestamp_is_malformed(timestamp: str) -> None:
    body = callback_body()
    headers = forwarding.sign_request(secret=SECRET, body=body, now=NOW)
    headers["X-Meterpay-Timestamp"] = timestamp
    with pytest.raises(MalformedNotification):
        verify(headers, body)


# --- malformed ---------------------------------------------------------------------------


def signed_verify(body: bytes) -> Any:
    return verify(forwarding.sign_request(secret=SECRET, body=body, now=NOW), body)


@pytest.mark.parametrize("amount", [25.99, "2599", True, -1, None])
def test_amount_must_be_int_minor_units(amount: object) -> None:
    with pytest.raises(MalformedNotification):
        signed_verify(callback_body(amount_minor=amount))


@pytest.mark.parametrize("field", ["order_no", "transaction_id", "currency", "status", "paid_at"])
def test_missing_field_is_malformed(field: str) -> None:
    with pytest.raises(MalformedNotification):
        signed_verify(callback_body(**{field: None}))


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "done"},
        {"currency": "XBT"},
        {"paid_at": "yesterday"},
        {"paid_at": "2025-03-01T10:00:00"},
    ],
)
def test_bad_values_are_malformed(overrides: dict[str, Any]) -> None:
    with pytest.raises(MalformedNotification):
        signed_verify(callback_body(**overrides))


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b"\xff"])
def test_bad_json_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedNotification):
        signed_verify(body)


def test_provider_names_are_checked() -> None:
    with pytest.raises(ValueError):
        forwarding.provider_id(name="Acme:Pay")


# --- never crash ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["X-Meterpay-Timestamp", "X-Meterpay-Signature"]), st.text(max_size=80)
    ),
    st.binary(max_size=200),
)
def test_arbitrary_input_only_raises_notification_errors(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(NotificationError):
        verify(headers, body)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_genuinely_signed_garbage_only_raises_notification_errors(body: bytes) -> None:
    with contextlib.suppress(NotificationError):
        signed_verify(body)
