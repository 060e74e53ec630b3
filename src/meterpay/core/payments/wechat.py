"""WeChat Pay API v3 payment notifications: verify the signature, then decrypt the resource.

The scheme (pay.weixin.qq.com, "签名验证" and "证书和回调报文解密"):

1. Headers ``Wechatpay-Timestamp`` (Unix seconds), ``Wechatpay-Nonce``, ``Wechatpay-Serial``
   (platform certificate serial or ``PUB_KEY_ID_…`` public key id) and ``Wechatpay-Signature``
   (base64 RSA PKCS#1 v1.5 SHA-256) sign the message ``timestamp\\nnonce\\nbody\\n`` over the
   raw body bytes, exactly as received.
2. The body's ``resource`` is ``AEAD_AES_256_GCM`` with the merchant's APIv3 key (32 bytes),
   ``nonce`` (as UTF-8 bytes), ``associated_data`` and base64 ``ciphertext`` whose last 16
   bytes are the tag.
3. The plaintext is the transaction: ``out_trade_no``, ``transaction_id``, ``trade_state``,
   ``success_time`` (RFC 3339) and ``amount.total`` in fen with ``amount.currency``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .types import (
    ForgedNotification,
    MalformedNotification,
    PaymentNotification,
    PaymentStatus,
    StaleNotification,
)

PROVIDER = "wechat"
DEFAULT_MAX_AGE = timedelta(minutes=5)  # WeChat's own SDKs accept five minutes of skew

TIMESTAMP_HEADER = "Wechatpay-Timestamp"
NONCE_HEADER = "Wechatpay-Nonce"
SERIAL_HEADER = "Wechatpay-Serial"
SIGNATURE_HEADER = "Wechatpay-Signature"

TRADE_STATES: dict[str, PaymentStatus] = {
    "SUCCESS": PaymentStatus.PAID,
    "REFUND": PaymentStatus.REFUNDED,
    "NOTPAY": PaymentStatus.PENDING,
    "USERPAYING": PaymentStatus.PENDING,
    "CLOSED": PaymentStatus.CLOSED,
    "REVOKED": PaymentStatus.CLOSED,
    "PAYERROR": PaymentStatus.FAILED,
}


def load_platform_certificate(*, pem: bytes) -> tuple[str, rsa.RSAPublicKey]:
    """A platform certificate -> (serial as WeChat writes it: upper-case hex, its RSA key)."""
    cert = x509.load_pem_x509_certificate(pem)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a WeChat Pay platform certificate carries an RSA key")
    return format(cert.serial_number, "X"), key


def load_public_key(*, pem: bytes) -> rsa.RSAPublicKey:
    """A WeChat Pay public key (the ``PUB_KEY_ID_…`` mode) from PEM."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a WeChat Pay public key is an RSA key")
    return key


def signing_message(*, timestamp: str, nonce: str, body: bytes) -> bytes:
    """The bytes WeChat Pay signs: ``timestamp\\nnonce\\nbody\\n``."""
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def verify_notification(
    *,
    headers: Mapping[str, str],
    body: bytes,
    platform_keys: Mapping[str, rsa.RSAPublicKey],
    api_v3_key: bytes,
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
    expected_mchid: str | None = None,
    expected_appid: str | None = None,
) -> PaymentNotification:
    """Verify and decrypt a WeChat Pay v3 payment notification.

    ``platform_keys`` maps serial (certificate serial or public key id) to key; several
    entries allow key rotation. Raises ForgedNotification, StaleNotification or
    MalformedNotification; never anything else for any ``headers``/``body``.
    """
    if len(api_v3_key) != 32:
        raise ValueError("the APIv3 key is 32 bytes")
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = _header(lowered, TIMESTAMP_HEADER)
    nonce = _header(lowered, NONCE_HEADER)
    serial = _header(lowered, SERIAL_HEADER)
    signature_b64 = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not signature_b64:
        raise ForgedNotification("no Wechatpay-Signature")

    key = platform_keys.get(serial)
    if key is None:
        raise ForgedNotification(f"unknown Wechatpay-Serial {serial!r}")
    signature = _b64(signature_b64, error=ForgedNotification, what="signature")
    try:
        key.verify(
            signature,
            signing_message(timestamp=timestamp, nonce=nonce, body=body),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise ForgedNotification("Wechatpay-Signature does not verify") from None

    # Freshness after the signature, so "stale" always means "genuine but old".
    if not timestamp.isascii() or not timestamp.isdigit():
        raise MalformedNotification("Wechatpay-Timestamp is not Unix seconds")
    age = now.timestamp() - int(timestamp)
    if abs(age) > max_age.total_seconds():
        raise StaleNotification(f"timestamp {timestamp} is {int(age)} s from now")

    envelope = _json_object(body, what="body")
    event_type = _str(envelope, "event_type")
    if not event_type.startswith("TRANSACTION."):
        raise MalformedNotification(f"not a payment notification: {event_type}")
    resource = envelope.get("resource")
    if not isinstance(resource, dict):
        raise MalformedNotification("resource is missing")
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise MalformedNotification(f"unsupported algorithm {resource.get('algorithm')!r}")
    plaintext = decrypt_resource(
        api_v3_key=api_v3_key,
        ciphertext_b64=_str(resource, "ciphertext"),
        nonce=_str(resource, "nonce"),
        associated_data=_str(resource, "associated_data", allow_empty=True),
    )
    transaction = _json_object(plaintext, what="resource")
    return _transaction(transaction, expected_mchid=expected_mchid, expected_appid=expected_appid)


def decrypt_resource(
    *, api_v3_key: bytes, ciphertext_b64: str, nonce: str, associated_data: str
) -> bytes:
    """AES-256-GCM decrypt a ``resource``; a bad tag means the wrong key or a tampered resource."""
    ciphertext = _b64(ciphertext_b64, error=MalformedNotification, what="ciphertext")
    if len(ciphertext) <= 16 or not nonce:
        raise MalformedNotification("ciphertext or nonce too short")
    try:
        return AESGCM(api_v3_key).decrypt(nonce.encode(), ciphertext, associated_data.encode())
    except InvalidTag:
        raise ForgedNotification("resource fails AES-GCM authentication") from None


def _transaction(
    data: Mapping[str, Any], *, expected_mchid: str | None, expected_appid: str | None
) -> PaymentNotification:
    if expected_mchid is not None and data.get("mchid") != expected_mchid:
        raise ForgedNotification("notification is for another merchant")
    if expected_appid is not None and data.get("appid") != expected_appid:
        raise ForgedNotification("notification is for another app")
    trade_state = _str(data, "trade_state")
    status = TRADE_STATES.get(trade_state)
    if status is None:
        raise MalformedNotification(f"unknown trade_state {trade_state!r}")
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise MalformedNotification("amount is missing")
    total = amount.get("total")
    # fen as a JSON integer; bool is an int in Python and a float is never money.
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise MalformedNotification(f"amount.total is not fen: {total!r}")
    currency = amount.get("currency", "CNY")
    if not isinstance(currency, str):
        raise MalformedNotification("amount.currency is not a string")
    paid_at = None
    if status is PaymentStatus.PAID or "success_time" in data:
        paid_at = _rfc3339(_str(data, "success_time"))
    return PaymentNotification(
        provider=PROVIDER,
        merchant_order_no=_str(data, "out_trade_no"),
        provider_transaction_id=_str(data, "transaction_id"),
        amount_minor=total,
        currency=currency,
        paid_at=paid_at,
        status=status,
        provider_status=trade_state,
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower(), "")
    if not value:
        raise MalformedNotification(f"missing header {name}")
    return value


def _b64(text: str, *, error: type[Exception], what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise error(f"{what} is not base64") from None


def _json_object(raw: bytes, *, what: str) -> dict[str, Any]:
    try:
        # parse_float keeps any stray decimal out of float; amounts must be int anyway.
        data = json.loads(raw, parse_float=lambda text: text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedNotification(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedNotification(f"{what} is not a JSON object")
    return data


def _str(data: Mapping[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = data.get(name)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise MalformedNotification(f"{name} is missing")
    return value


def _rfc3339(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedNotification(f"bad time {text!r}") from None
    if value.utcoffset() is None:
        raise MalformedNotification(f"time without offset {text!r}")
    return value
