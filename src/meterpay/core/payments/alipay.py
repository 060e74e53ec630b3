"""Alipay asynchronous payment notifications (``notify_url``), RSA2 signature.

The scheme (opendocs.alipay.com, "异步通知验签"):

1. The notification is an ``application/x-www-form-urlencoded`` POST; take the decoded
   parameters, drop ``sign`` and ``sign_type`` (and empty values, which Alipay never signs).
2. Sort the rest by key (byte order), join as ``key=value`` with ``&``: the signing string,
   encoded in the notification's ``charset`` (UTF-8 unless it says GBK).
3. ``sign`` is base64 SHA256withRSA (PKCS#1 v1.5) over it, by Alipay's public key
   (the "支付宝公钥", not the app's own key).
4. ``total_amount`` is yuan with at most two decimals; ``trade_status`` TRADE_SUCCESS or
   TRADE_FINISHED means paid. A notification that carries ``gmt_refund``/``refund_fee`` on
   a paid trade reports a refund, not a new payment.

Alipay notifications carry no signed freshness window of their own (``notify_time`` is
signed but retries span 25 hours), so a replay is stopped by the ledger's idempotency key
(provider + ``trade_no``), not here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from meterpay.core.money import parse_amount, to_minor

from .types import ForgedNotification, MalformedNotification, PaymentNotification, PaymentStatus

PROVIDER = "alipay"
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # Alipay times; China has no DST
_AMOUNT = re.compile(r"\d{1,12}(\.\d{1,2})?")
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk"}

TRADE_STATUSES: dict[str, PaymentStatus] = {
    "TRADE_SUCCESS": PaymentStatus.PAID,
    "TRADE_FINISHED": PaymentStatus.PAID,
    "WAIT_BUYER_PAY": PaymentStatus.PENDING,
    "TRADE_CLOSED": PaymentStatus.CLOSED,
}


def load_alipay_public_key(*, pem: bytes) -> rsa.RSAPublicKey:
    """Alipay's public key from PEM (wrap the bare base64 from the console in PEM lines)."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Alipay's public key is an RSA key")
    return key


def parse_form(*, body: bytes) -> dict[str, str]:
    """Decode a form body into parameters; a repeated key is malformed, not last-one-wins."""
    try:
        text = body.decode("ascii")  # percent-encoded on the wire; charset applies after
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError):
        raise MalformedNotification("body is not a form") from None
    charset = _charset(dict(pairs).get("charset", "utf-8"))
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            encoding=charset,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise MalformedNotification(f"form is not {charset}") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise MalformedNotification(f"parameter {key} given twice")
        params[key] = value
    return params


def signing_string(*, params: Mapping[str, str]) -> str:
    """Sorted ``key=value&…`` over every non-empty parameter except ``sign`` and ``sign_type``."""
    items = sorted((k, v) for k, v in params.items() if k not in {"sign", "sign_type"} and v != "")
    return "&".join(f"{key}={value}" for key, value in items)


def verify_notification(
    *,
    params: Mapping[str, str],
    alipay_public_key: rsa.RSAPublicKey,
    expected_app_id: str | None = None,
    expected_seller_id: str | None = None,
) -> PaymentNotification:
    """Verify an Alipay notification's RSA2 signature and read the payment from it.

    Raises ForgedNotification or MalformedNotification; never anything else.
    """
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise MalformedNotification("parameters must be strings")
    sign_type = params.get("sign_type", "RSA2")
    if sign_type != "RSA2":
        raise ForgedNotification(f"sign_type {sign_type!r} refused; only RSA2 is accepted")
    sign = params.get("sign", "")
    if not sign:
        raise ForgedNotification("no sign")
    try:
        signature = base64.b64decode(sign.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ForgedNotification("sign is not base64") from None
    try:
        message = signing_string(params=params).encode(_charset(params.get("charset", "utf-8")))
    except UnicodeEncodeError:
        raise MalformedNotification("parameters do not fit the declared charset") from None
    try:
        alipay_public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise ForgedNotification("sign does not verify") from None

    if expected_app_id is not None and params.get("app_id") != expected_app_id:
        raise ForgedNotification("notification is for another app")
    if expected_seller_id is not None and params.get("seller_id") != expected_seller_id:
        raise ForgedNotification("notification is for another seller")
    trade_status = _required(params, "trade_status")
    status = TRADE_STATUSES.get(trade_status)
    if status is None:
        raise MalformedNotification(f"unknown trade_status {trade_status!r}")
    if status is PaymentStatus.PAID and (params.get("gmt_refund") or params.get("refund_fee")):
        status = PaymentStatus.REFUNDED
    total_text = _required(params, "total_amount")
    if not _AMOUNT.fullmatch(total_text):
        raise MalformedNotification(f"total_amount {total_text!r} is not yuan with two decimals")
    paid_at = None
    if status is PaymentStatus.PAID or params.get("gmt_payment"):
        paid_at = _beijing(_required(params, "gmt_payment"))
    return PaymentNotification(
        provider=PROVIDER,
        merchant_order_no=_required(params, "out_trade_no"),
        provider_transaction_id=_required(params, "trade_no"),
        amount_minor=to_minor(parse_amount(total_text, "CNY"), "CNY"),
        currency="CNY",
        paid_at=paid_at,
        status=status,
        provider_status=trade_status,
    )


def _charset(name: str) -> str:
    try:
        return _CHARSETS[name.strip().lower()]
    except KeyError:
        raise MalformedNotification(f"unsupported charset {name!r}") from None


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise MalformedNotification(f"{name} is missing")
    return value


def _beijing(text: str) -> datetime:
    try:
        value = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MalformedNotification(f"bad time {text!r}") from None
    return value.replace(tzinfo=BEIJING)
