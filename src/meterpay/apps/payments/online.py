"""Online payments: orders, verified provider notifications, and the demo payment simulator.

A notification is verified with :mod:`meterpay.core.payments` against the provider credentials
of the organisation it names (WeChat: the platform key serial; Alipay: the app id; forwarding:
the provider name in the URL). Only a genuine ``paid`` notification for a known order of the
same amount credits the wallet; the ledger key (provider + provider transaction id) makes
replays harmless and the order lock makes them order-independent. Everything received is
logged in :class:`PaymentNotificationLog`.

"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers.models import Account
from meterpay.apps.ledger.services import (
    WalletError,
    amount_parse,
    order_number,
    wallet_for,
)
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.payments.models import PaymentNotificationLog, PaymentProviderConfig, Recharge
from meterpay.apps.payments.services import recharge_credit
from meterpay.core import ledger
from meterpay.core.money import to_minor
from meterpay.core.payments import (
    ForgedNotification,
    MalformedNotification,
    NotificationError,
    PaymentNotification,
    PaymentStatus,
    alipay,
    forwarding,
    wechat,
)

log = logging.getLogger(__name__)
ACTOR = "payment_notification"


class UnknownOrder(NotificationError):
    """Genuine, but for no order of ours, or for another amount or currency."""


# --- orders -----------------------------------------------------------------------------


@transaction.atomic
def online_order_create(
    *, actor: Any, account: Account, amount: Decimal | str, provider: str
) -> Recharge:
    """A pending order the tenant pays online; the provider's notification credits it."""
    config = provider_config(organisation_id=account.organisation_id, provider=provider)
    if config is None:
        raise WalletError({"provider": f"{provider} is not set up for online payments"})
    account = Account.objects.get(pk=account.pk)
    if account.status not in (Account.Status.OPEN, Account.Status.SUSPENDED):
        raise WalletError({"account": "only an open account can be recharged"})
    wallet = wallet_for(account)
    value = amount_parse(amount, wallet.currency)
    number = order_number("MP")
    channel = (
        ledger.Channel.FORWARDING
        if config.kind == config.Kind.FORWARDING
        else ledger.Channel(config.kind)
    )
    recharge = Recharge.objects.create(
        organisation_id=account.organisation_id,
        number=number,
        account=account,
        channel=channel,
        provider=config.provider,
        amount_minor=to_minor(value, wallet.currency),
        currency=wallet.currency,
        status=Recharge.Status.PENDING,
        idempotency_key=f"order/{number}",
        created_by=actor if hasattr(actor, "pk") else None,
        actor_label=(getattr(actor, "username", None) or str(actor))[:150],
    )
    audit_record(
        actor=actor,
        action="recharge.order",
        obj=recharge,
        after={"amount": str(value), "provider": config.provider},
    )
    return recharge


def provider_config(*, organisation_id: int, provider: str) -> PaymentProviderConfig | None:
    configs = PaymentProviderConfig.objects.filter(organisation_id=organisation_id, enabled=True)
    if provider.startswith(ledger.FORWARDING_PREFIX):
        return configs.filter(
            kind=PaymentProviderConfig.Kind.FORWARDING,
            name=provider.removeprefix(ledger.FORWARDING_PREFIX),
        ).first()
    return configs.filter(kind=provider).first()


# --- notifications ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationResult:
    accepted: bool  # answer the provider "success" (no retry)
    outcome: str
    detail: str = ""


def _wechat_keys(config: PaymentProviderConfig) -> dict[str, rsa.RSAPublicKey]:
    pem = config.public_key_pem.encode()
    if b"CERTIFICATE" in pem:
        serial, key = wechat.load_platform_certificate(pem=pem)
        return {serial: key}
    return {config.key_serial: wechat.load_public_key(pem=pem)}


def _verify(
    kind: str, headers: Mapping[str, str], body: bytes, provider_name: str, now: datetime
) -> tuple[PaymentProviderConfig, PaymentNotification]:
    """The configuration that verifies this notification, and the notification; or raise."""
    configs = PaymentProviderConfig.objects.filter(enabled=True)
    if kind == "wechat":
        serial = {k.lower(): v for k, v in headers.items()}.get("wechatpay-serial", "")
        candidates = configs.filter(kind=PaymentProviderConfig.Kind.WECHAT, key_serial=serial)
        error: NotificationError = ForgedNotification(f"unknown serial {serial!r}")
        for config in candidates:
            try:
                return config, wechat.verify_notification(
                    headers=headers,
                    body=body,
                    platform_keys=_wechat_keys(config),
                    api_v3_key=config.secret.encode(),
                    now=now,
                    expected_mchid=config.merchant_id or None,
                    expected_appid=config.app_id or None,
                )
            except NotificationError as exc:
                error = exc
        raise error
    if kind == "alipay":
        params = alipay.parse_form(body=body)
        candidates = configs.filter(
            kind=PaymentProviderConfig.Kind.ALIPAY, app_id=params.get("app_id", "")
        )
        error = ForgedNotification("unknown app_id")
        for config in candidates:
            try:
                key = alipay.load_alipay_public_key(pem=config.public_key_pem.encode())
                return config, alipay.verify_notification(
                    params=params,
                    alipay_public_key=key,
                    expected_app_id=config.app_id or None,
                    expected_seller_id=config.merchant_id or None,
                )
            except NotificationError as exc:
                error = exc
        raise error
    if kind == "forward":
        forwarder = configs.filter(
            kind=PaymentProviderConfig.Kind.FORWARDING, name=provider_name
        ).first()
        if forwarder is None:
            raise ForgedNotification(f"unknown forwarding provider {provider_name!r}")
        secrets_ = [s.strip().encode() for s in forwarder.secret.splitlines() if s.strip()]
        return forwarder, forwarding.verify_callback(
            headers=headers, body=body, secrets=secrets_, provider_name=provider_name, now=now
        )
    raise MalformedNotification(f"unknown provider kind {kind!r}")


def _log(
    *,
    organisation_id: int | None,
    provider: str,
    outcome: str,
    detail: str = "",
    notification: PaymentNotification | None = None,
    remote_addr: str = "",
) -> None:
    PaymentNotificationLog.objects.create(
        organisation_id=organisation_id,
        provider=provider[:70],
        outcome=outcome,
        detail=detail[:300],
        merchant_order_no=(notification.merchant_order_no if notification else "")[:64],
        provider_transaction_id=(notification.provider_transaction_id if notification else "")[:80],
        remote_addr=remote_addr[:64],
    )


def payment_notification_receive(
    *,
    kind: str,
    headers: Mapping[str, str],
    body: bytes,
    provider_name: str = "",
    remote_addr: str = "",
    now: datetime | None = None,
) -> NotificationResult:
    """Verify and apply one provider notification. Never raises for bad input."""
    now = now or timezone.now()
    provider = f"forward.{provider_name}" if kind == "forward" else kind
    try:
        with transaction.atomic():
            config, notification = _verify(kind, headers, body, provider_name, now)
            return _apply(config, notification, remote_addr=remote_addr)
    except NotificationError as exc:
        log.warning(
            "payment notification from %s rejected: %s %s", provider, type(exc).__name__, exc
        )
        _log(
            organisation_id=None,
            provider=provider,
            outcome=PaymentNotificationLog.Outcome.REJECTED,
            detail=f"{type(exc).__name__}: {exc}",
            remote_addr=remote_addr,
        )
        return NotificationResult(False, "rejected", f"{type(exc).__name__}: {exc}")
    except ValueError as exc:  # e.g. an unusable configured key
        log.error("payment notification from %s could not be checked: %s", provider, exc)
        _log(
            organisation_id=None,
            provider=provider,
            outcome=PaymentNotificationLog.Outcome.REJECTED,
            detail=f"configuration: {exc}",
            remote_addr=remote_addr,
        )
        return NotificationResult(False, "rejected", "configuration error")


def _apply(
    config: PaymentProviderConfig, notification: PaymentNotification, *, remote_addr: str
) -> NotificationResult:
    org_id = config.organisation_id
    order = (
        Recharge.objects.select_for_update()
        .filter(organisation_id=org_id, number=notification.merchant_order_no)
        .first()
    )
    if order is None or order.provider != notification.provider:
        raise UnknownOrder(
            f"no order {notification.merchant_order_no!r} for {notification.provider}"
        )
    if notification.status is not PaymentStatus.PAID:
        if order.status == Recharge.Status.PENDING and notification.status in (
            PaymentStatus.CLOSED,
            PaymentStatus.FAILED,
        ):
            order.status = (
                Recharge.Status.CLOSED
                if notification.status is PaymentStatus.CLOSED
                else Recharge.Status.FAILED
            )
        order.provider_status = notification.provider_status[:40]
        order.save(update_fields=["status", "provider_status"])
        _log(
            organisation_id=org_id,
            provider=notification.provider,
            outcome=PaymentNotificationLog.Outcome.IGNORED,
            detail=f"status {notification.status}",
            notification=notification,
            remote_addr=remote_addr,
        )
        return NotificationResult(True, "ignored", f"status {notification.status}")
    if (order.amount_minor, order.currency) != (notification.amount_minor, notification.currency):
        raise UnknownOrder(
            f"order {order.number} is {order.amount_minor} {order.currency}, "
            f"paid {notification.amount_minor} {notification.currency}"
        )
    entry = ledger.build_recharge_from_notification(
        account_id=str(order.account_id), notification=notification
    )
    second = order.entry_id is not None
    posted = recharge_credit(
        actor=ACTOR,
        recharge=order,
        entry=entry,
        reference=notification.provider_transaction_id,
        paid_at=notification.paid_at,
        provider_fields={
            "provider_transaction_id": notification.provider_transaction_id[:80],
            "provider_status": notification.provider_status[:40],
        },
    )
    if not posted.created:
        _log(
            organisation_id=org_id,
            provider=notification.provider,
            outcome=PaymentNotificationLog.Outcome.REPLAY,
            notification=notification,
            remote_addr=remote_addr,
        )
        return NotificationResult(True, "replay")
    detail = ""
    if second:  # a second genuine payment of one order: the money is ours, credit it, flag it
        detail = f"second payment of order {order.number}"
        log.warning(detail)
    _log(
        organisation_id=org_id,
        provider=notification.provider,
        outcome=PaymentNotificationLog.Outcome.CREDITED,
        detail=detail,
        notification=notification,
        remote_addr=remote_addr,
    )
    return NotificationResult(True, "credited", detail)


# --- demo: provider credentials and the payment simulator --------------------------------


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@transaction.atomic
def demo_providers_create(*, actor: Any, organisation: Organisation) -> list[PaymentProviderConfig]:
    """Generated keys for WeChat Pay, Alipay and a forwarding provider (demo only)."""
    created = []
    wechat_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alipay_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    specs = [
        {
            "kind": PaymentProviderConfig.Kind.WECHAT,
            "merchant_id": "1900000109",
            "app_id": f"wxdemo{organisation.pk:06d}",
            "key_serial": f"PUB_KEY_ID_DEMO{organisation.pk:04d}{secrets.token_hex(4).upper()}",
            "public_key_pem": _public_pem(wechat_key),
            "secret": secrets.token_hex(16),  # 32 ASCII characters: the APIv3 key
            "simulator_private_key_pem": _private_pem(wechat_key),
        },
        {
            "kind": PaymentProviderConfig.Kind.ALIPAY,
            "merchant_id": "2088000000000001",
            "app_id": f"2021{organisation.pk:012d}",
            "public_key_pem": _public_pem(alipay_key),
            "simulator_private_key_pem": _private_pem(alipay_key),
        },
        {
            "kind": PaymentProviderConfig.Kind.FORWARDING,
            "name": f"{organisation.slug}-local",
            "secret": secrets.token_hex(32),
        },
    ]
    for spec in specs:
        config = PaymentProviderConfig.objects.create(organisation=organisation, **spec)
        audit_record(
            actor=actor,
            action="payment_provider.create",
            obj=config,
            after={"kind": config.kind, "name": config.name},
        )
        created.append(config)
    return created


def _load_private(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the simulator key is not RSA")
    return key


def _sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass(frozen=True, slots=True)
class SimulatedNotification:
    kind: str  # wechat, alipay, forward
    provider_name: str
    headers: dict[str, str]
    body: bytes
    content_type: str


def simulate_payment(
    *, order: Recharge, transaction_id: str | None = None, now: datetime | None = None
) -> SimulatedNotification:
    """What the provider would send when ``order`` is paid: genuinely signed with demo keys."""
    config = provider_config(organisation_id=order.organisation_id, provider=order.provider)
    if config is None:
        raise WalletError({"provider": "the provider is not configured"})
    now = now or timezone.now()
    local = timezone.localtime(now)
    txid = transaction_id or f"{now:%Y%m%d}{secrets.token_hex(8)}"
    if config.kind == PaymentProviderConfig.Kind.WECHAT:
        if not config.simulator_private_key_pem:
            raise WalletError({"provider": "no simulator key: not a demo provider"})
        plaintext = json.dumps(
            {
                "appid": config.app_id,
                "mchid": config.merchant_id,
                "out_trade_no": order.number,
                "transaction_id": txid,
                "trade_type": "NATIVE",
                "trade_state": "SUCCESS",
                "trade_state_desc": "支付成功",
                "success_time": local.isoformat(timespec="seconds"),
                "amount": {"total": order.amount_minor, "currency": order.currency},
            }
        ).encode()
        nonce = secrets.token_hex(6)
        ciphertext = AESGCM(config.secret.encode()).encrypt(
            nonce.encode(), plaintext, b"transaction"
        )
        body = json.dumps(
            {
                "id": f"EV-{secrets.token_hex(8)}",
                "create_time": local.isoformat(timespec="seconds"),
                "resource_type": "encrypt-resource",
                "event_type": "TRANSACTION.SUCCESS",
                "summary": "支付成功",
                "resource": {
                    "original_type": "transaction",
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                    "associated_data": "transaction",
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        ts = str(int(now.timestamp()))
        header_nonce = secrets.token_hex(16)
        signature = _sign(
            _load_private(config.simulator_private_key_pem),
            wechat.signing_message(timestamp=ts, nonce=header_nonce, body=body),
        )
        headers = {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": header_nonce,
            "Wechatpay-Serial": config.key_serial,
            "Wechatpay-Signature": signature,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }
        return SimulatedNotification("wechat", "", headers, body, "application/json")
    if config.kind == PaymentProviderConfig.Kind.ALIPAY:
        if not config.simulator_private_key_pem:
            raise WalletError({"provider": "no simulator key: not a demo provider"})
        from urllib.parse import urlencode

        beijing = now.astimezone(alipay.BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        params = {
            "notify_time": beijing,
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": config.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": txid,
            "out_trade_no": order.number,
            "seller_id": config.merchant_id,
            "trade_status": "TRADE_SUCCESS",
            "total_amount": f"{Decimal(order.amount_minor) / 100:.2f}",
            "subject": f"recharge {order.account.number}",
            "gmt_create": beijing,
            "gmt_payment": beijing,
        }
        params["sign"] = _sign(
            _load_private(config.simulator_private_key_pem),
            alipay.signing_string(params=params).encode(),
        )
        params["sign_type"] = "RSA2"
        return SimulatedNotification(
            "alipay",
            "",
            {},
            urlencode(params).encode("ascii"),
            "application/x-www-form-urlencoded",
        )
    body = json.dumps(
        {
            "order_no": order.number,
            "transaction_id": txid,
            "amount_minor": order.amount_minor,
            "currency": order.currency,
            "status": "paid",
            "paid_at": now.isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    secret = config.secret.splitlines()[0].strip().encode()
    headers = forwarding.sign_request(secret=secret, body=body, now=now)
    return SimulatedNotification("forward", config.name, headers, body, "application/json")
