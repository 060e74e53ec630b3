"""The forwarding provider: a payment handed to the customer's own local payment system.

Both directions are signed the same way, with a secret shared per forwarding provider:

- ``X-Meterpay-Timestamp``: Unix seconds.
- ``X-Meterpay-Signature``: ``v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``;
  several ``v1=`` values separated by commas are allowed so that a secret can be rotated.

The receiver recomputes the HMAC over the raw bytes, compares in constant time, and refuses
timestamps further than the replay window from now. Within the window a replay is harmless:
the ledger's idempotency key (provider + transaction id) admits one recharge per payment.

Callback body (JSON, amounts as integer minor units, never decimals)::

    {"order_no": "...", "transaction_id": "...", "amount_minor": 1234, "currency": "USD",
     "status": "paid" | "pending" | "failed" | "closed", "paid_at": "2025-03-01T10:00:00Z"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from meterpay.core.money import MINOR_UNITS_PER_MAJOR

from .types import (
    ForgedNotification,
    MalformedNotification,
    PaymentNotification,
    PaymentStatus,
    StaleNotification,
)

TIMESTAMP_HEADER = "X-Meterpay-Timestamp"
SIGNATURE_HEADER = "X-Meterpay-Signature"
SCHEME = "v1"
DEFAULT_MAX_AGE = timedelta(minutes=5)
PROVIDER_PREFIX = "forward."
_NAME = re.compile(r"[a-z0-9][a-z0-9_\-]{0,39}")
_STATUSES = {
    "paid": PaymentStatus.PAID,
    "pending": PaymentStatus.PENDING,
    "failed": PaymentStatus.FAILED,
    "closed": PaymentStatus.CLOSED,
}


def provider_id(*, name: str) -> str:
    """``acme`` -> ``forward.acme``, the provider and clearing-account qualifier."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"forwarding provider names are [a-z0-9_-]+, got {name!r}")
    return PROVIDER_PREFIX + name


def compute_signature(*, secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``<timestamp>.<body>``."""
    if not secret:
        raise ValueError("the shared secret must not be empty")
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_request(*, secret: bytes, body: bytes, now: datetime) -> dict[str, str]:
    """Headers to send with an outgoing request body."""
    timestamp = int(now.timestamp())
    signature = compute_signature(secret=secret, timestamp=timestamp, body=body)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"{SCHEME}={signature}"}


def payment_request_body(
    *,
    order_no: str,
    amount_minor: int,
    currency: str,
    account_reference: str,
    notify_url: str,
    description: str = "",
) -> bytes:
    """The canonical JSON of a payment request to the customer's system (sorted, compact)."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise ValueError("amount_minor must be a positive int")
    if currency not in MINOR_UNITS_PER_MAJOR:
        raise ValueError(f"unknown currency {currency!r}")
    payload = {
        "order_no": order_no,
        "amount_minor": amount_minor,
        "currency": currency,
        "account_reference": account_reference,
        "notify_url": notify_url,
        "description": description,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_signature(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[bytes],
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
) -> None:
    """Raise unless one ``v1`` signature matches one secret and the timestamp is fresh."""
    if not secrets or not all(secrets):
        raise ValueError("at least one non-empty shared secret is needed")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp_text = lowered.get(TIMESTAMP_HEADER.lower(), "")
    header = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not header:
        raise ForgedNotification(f"no {SIGNATURE_HEADER}")
    if not timestamp_text.isascii() or not timestamp_text.isdigit() or len(timestamp_text) > 12:
        raise MalformedNotification(f"{TIMESTAMP_HEADER} is not Unix seconds")
    timestamp = int(timestamp_text)
    offered = [
        value.strip()[len(SCHEME) + 1 :]
        for value in header.split(",")
        if value.strip().startswith(SCHEME + "=")
    ]
    # Compare against every secret and every offered value; no early exit on a match.
    matched = False
    for secret in secrets:
        expected = compute_signature(secret=secret, timestamp=timestamp, body=body)
        for candidate in offered:
            matched |= hmac.compare_digest(expected.encode(), candidate.encode("ascii", "replace"))
    if not matched:
        raise ForgedNotification("signature does not verify")
    if abs(now.timestamp() - timestamp) > max_age.total_seconds():
        raise StaleNotification(f"timestamp {timestamp} is outside the replay window")


def verify_callback(
    *,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[bytes],
    provider_name: str,
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
) -> PaymentNotification:
    """Verify a payment callback from a forwarding provider and read the payment from it."""
    provider = provider_id(name=provider_name)
    verify_signature(headers=headers, body=body, secrets=secrets, now=now, max_age=max_age)
    try:
        # A JSON decimal becomes a str and fails the int check: money is never a float.
        data: Any = json.loads(body, parse_float=lambda text: text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedNotification("body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedNotification("body is not a JSON object")
    amount = data.get("amount_minor")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise MalformedNotification(f"amount_minor is not int minor units: {amount!r}")
    status_text = _str(data, "status")
    status = _STATUSES.get(status_text)
    if status is None:
        raise MalformedNotification(f"unknown status {status_text!r}")
    paid_at = None
    if status is PaymentStatus.PAID or data.get("paid_at"):
        try:
            paid_at = datetime.fromisoformat(_str(data, "paid_at"))
        except ValueError:
            raise MalformedNotification("paid_at is not RFC 3339") from None
        if paid_at.utcoffset() is None:
            raise MalformedNotification("paid_at has no offset")
    return PaymentNotification(
        provider=provider,
        merchant_order_no=_str(data, "order_no"),
        provider_transaction_id=_str(data, "transaction_id"),
        amount_minor=amount,
        currency=_str(data, "currency"),
        paid_at=paid_at,
        status=status,
        provider_status=status_text,
    )


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedNotification(f"{name} is missing")
    return value
