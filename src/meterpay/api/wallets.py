"""Wallet API: recharges and refunds (with Idempotency-Key), ledger history, and the payment
providers' notification endpoints (unauthenticated, verified by signature)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Header, Router, Schema, Status
from ninja.pagination import paginate

from meterpay.api.pagination import LimitOffset
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.selectors import wallet_history
from meterpay.apps.ledger.services import WalletError
from meterpay.apps.organisations.access import access_object, require
from meterpay.apps.payments.models import Recharge
from meterpay.apps.payments.online import payment_notification_receive
from meterpay.apps.payments.refunds import refund_record
from meterpay.apps.payments.services import recharge_record
from meterpay.core.ledger import IdempotencyConflict
from meterpay.core.money import format_amount, from_minor
from meterpay.core.roles import Permission

router = Router(tags=["wallets and payments"])
notifications = Router(tags=["payment notifications"])


class RechargeIn(Schema):
    amount: str  # a decimal string, e.g. "50.00"; never a JSON number
    channel: str = "cash"  # cash | bank_transfer (online payments come by notification)
    reference: str = ""


class RechargeOut(Schema):
    id: int
    number: str
    account_id: int
    amount: str
    currency: str
    channel: str
    status: str
    reference: str
    entry_id: int | None
    balance_after: str | None
    created_at: datetime
    paid_at: datetime | None

    @staticmethod
    def resolve_amount(obj: Any) -> str:
        return format_amount(from_minor(obj.amount_minor, obj.currency), obj.currency)

    @staticmethod
    def resolve_balance_after(obj: Any) -> str | None:
        minor = obj.balance_after_minor
        return None if minor is None else str(from_minor(minor, obj.currency))


class RefundIn(Schema):
    amount: str | None = None  # None: the whole balance
    channel: str = "cash"


class EntryOut(Schema):
    id: int
    kind: str
    occurred_at: datetime
    amount: str  # what the wallet gained (+) or lost (-)
    channel: str
    reference: str
    memo: str
    idempotency_key: str
    reverses_id: int | None

    @staticmethod
    def resolve_amount(obj: Any) -> str:
        return str(from_minor(obj.wallet_amount, obj.currency))


def _conflict(exc: Exception) -> JsonResponse:
    return JsonResponse({"detail": str(exc), "errors": {"Idempotency-Key": [str(exc)]}}, status=409)


def _key(value: str | None) -> str:
    if not value or not value.strip():
        raise WalletError({"Idempotency-Key": "send an Idempotency-Key header"})
    return value.strip()


@router.post("/accounts/{account_id}/recharges", response={201: RechargeOut, 409: Any})
def recharge_create(
    request: HttpRequest,
    account_id: int,
    payload: RechargeIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Any:
    """Record a cash (credited now) or bank-transfer (pending until confirmed) recharge.

    Send an `Idempotency-Key` header: a replay returns the same result and credits once; the
    same key with a different account, amount or channel answers 409.
    """
    require(request.user, Permission.RECORD_PAYMENTS)
    account = access_object(request.user, Account, account_id)
    try:
        recharge, _created = recharge_record(
            actor=request.user,
            account=account,
            amount=payload.amount,
            channel=payload.channel,
            idempotency_key=_key(idempotency_key),
            reference=payload.reference,
        )
    except IdempotencyConflict as exc:
        return _conflict(exc)
    return Status(201, recharge)


@router.get("/accounts/{account_id}/recharges", response=list[RechargeOut])
@paginate(LimitOffset)
def recharge_list(request: HttpRequest, account_id: int) -> Any:
    require(request.user, Permission.VIEW_FINANCE)
    account = access_object(request.user, Account, account_id)
    return Recharge.objects.filter(account=account)


@router.post("/accounts/{account_id}/refunds", response={201: EntryOut, 409: Any})
def refund_create(
    request: HttpRequest,
    account_id: int,
    payload: RefundIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Any:
    """Refund part (`amount`) or all (no amount) of the balance; never more than it holds."""
    require(request.user, Permission.RECORD_PAYMENTS)
    account = access_object(request.user, Account, account_id)
    try:
        entry = refund_record(
            actor=request.user,
            account=account,
            amount=payload.amount,
            channel=payload.channel,
            idempotency_key=_key(idempotency_key),
        )
    except IdempotencyConflict as exc:
        return _conflict(exc)
    return Status(201, entry)


@router.get("/accounts/{account_id}/entries", response=list[EntryOut])
@paginate(LimitOffset)
def entry_list(request: HttpRequest, account_id: int) -> Any:
    """The account's ledger history, newest first."""
    require(request.user, Permission.VIEW_FINANCE)
    account = access_object(request.user, Account, account_id)
    return wallet_history(account)


# --- provider notifications ------------------------------------------------------------------


def _remote(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


@notifications.post("/payments/wechat/notify", auth=None, response={200: Any, 400: Any})
def wechat_notify(request: HttpRequest) -> HttpResponse:
    """WeChat Pay v3 notification: signature, serial, AES-GCM resource verified."""
    result = payment_notification_receive(
        kind="wechat",
        headers=dict(request.headers),
        body=request.body,
        remote_addr=_remote(request),
    )
    if result.accepted:
        return HttpResponse(status=204)
    return JsonResponse(
        {"code": "FAIL", "message": result.detail[:100], "detail": result.detail}, status=400
    )


_TEXT = {"text/plain": {"schema": {"type": "string", "enum": ["success", "fail"]}}}


@notifications.post(
    "/payments/alipay/notify",
    auth=None,
    openapi_extra={
        "responses": {
            "200": {"description": "accepted: `success`", "content": _TEXT},
            "400": {"description": "refused: `fail`", "content": _TEXT},
        }
    },
)
def alipay_notify(request: HttpRequest) -> HttpResponse:
    """Alipay asynchronous notification (RSA2); answers `success` or `fail` as Alipay expects."""
    result = payment_notification_receive(
        kind="alipay",
        headers=dict(request.headers),
        body=request.body,
        remote_addr=_remote(request),
    )
    return HttpResponse(
        "success" if result.accepted else "fail",
        status=200 if result.accepted else 400,
        content_type="text/plain",
    )


@notifications.post(
    "/payments/forward/{provider}/callback", auth=None, response={200: Any, 400: Any}
)
def forward_callback(request: HttpRequest, provider: str) -> HttpResponse:
    """A forwarding provider's payment callback (HMAC-SHA256, replay window)."""
    result = payment_notification_receive(
        kind="forward",
        headers=dict(request.headers),
        body=request.body,
        provider_name=provider,
        remote_addr=_remote(request),
    )
    body = {
        "status": "ok" if result.accepted else "rejected",
        "outcome": result.outcome,
        "detail": result.detail or result.outcome,
    }
    return HttpResponse(
        json.dumps(body), status=200 if result.accepted else 400, content_type="application/json"
    )
