"""Verification of online payment notifications: pure functions over bytes, headers and keys.

Each provider module turns a genuine notification into a :class:`PaymentNotification` and
anything else into a :class:`NotificationError` subclass:

- :mod:`.wechat`: WeChat Pay API v3 (RSA-SHA256 headers, AES-256-GCM resource).
- :mod:`.alipay`: Alipay asynchronous notifications (RSA2 over the sorted parameters).
- :mod:`.forwarding`: the customer's own payment system via the forwarding API (HMAC-SHA256).
"""

from __future__ import annotations

from . import alipay, forwarding, wechat
from .types import (
    ForgedNotification,
    MalformedNotification,
    NotificationError,
    PaymentNotification,
    PaymentStatus,
    StaleNotification,
)

__all__ = [
    "ForgedNotification",
    "MalformedNotification",
    "NotificationError",
    "PaymentNotification",
    "PaymentStatus",
    "StaleNotification",
    "alipay",
    "forwarding",
    "wechat",
]
