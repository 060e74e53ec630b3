"""What every payment provider's notification becomes once verified, and its typed errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from meterpay.core.money import MINOR_UNITS_PER_MAJOR


class NotificationError(Exception):
    """Base class: the notification must not be acted on. Answer the provider with a failure."""


class ForgedNotification(NotificationError):
    """Signature, serial, key, AES-GCM tag or merchant do not check out: not from the provider."""


class StaleNotification(NotificationError):
    """Genuine signature but a timestamp outside the accepted window: a possible replay."""


class MalformedNotification(NotificationError):
    """A field is missing, has the wrong type or an impossible value."""


class PaymentStatus(StrEnum):
    PAID = "paid"  # money received: recharge the wallet
    PENDING = "pending"  # created, not paid yet
    CLOSED = "closed"  # closed or revoked without payment
    FAILED = "failed"
    REFUNDED = "refunded"  # a refund event on a paid order: never a recharge


@dataclass(frozen=True, slots=True)
class PaymentNotification:
    """A verified notification, provider-neutral.

    ``provider`` is ``wechat``, ``alipay`` or ``forward.<name>`` and doubles as the qualifier
    of the provider's clearing account in the ledger.
    """

    provider: str
    merchant_order_no: str  # our order number (out_trade_no)
    provider_transaction_id: str  # the provider's id; with provider, the idempotency key
    amount_minor: int
    currency: str
    paid_at: datetime | None
    status: PaymentStatus
    provider_status: str  # the provider's own word, for support

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise MalformedNotification("amount must be int minor units")
        if self.amount_minor < 0:
            raise MalformedNotification("amount must not be negative")
        if self.currency not in MINOR_UNITS_PER_MAJOR:
            raise MalformedNotification(f"unknown currency {self.currency!r}")
        if not self.merchant_order_no or not self.provider_transaction_id:
            raise MalformedNotification("order number and transaction id are required")
        if self.paid_at is not None and self.paid_at.utcoffset() is None:
            raise MalformedNotification("paid_at must be timezone-aware")
