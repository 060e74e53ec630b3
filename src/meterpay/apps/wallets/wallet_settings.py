"""Wallet settings: payment provider credentials, the balance policy, notification channels.

Every write is validated here (keys parse, the APIv3 key is 32 bytes, alarm levels go down…)
and raises ``ValidationError`` keyed by field, so nothing is half saved. Secrets are never
written to the audit log: it records whether a secret is set or was replaced, and a public
key's fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.wallets.models import (
    NOTIFICATION_EVENTS,
    BalancePolicy,
    Notification,
    NotificationChannel,
    PaymentProviderConfig,
)
from meterpay.apps.wallets.notify import deliver, fill_target
from meterpay.core import balance_rules as rules
from meterpay.core.money import from_minor
from meterpay.core.payments import alipay, wechat

Kind = PaymentProviderConfig.Kind
SECRET_FIELDS = ("secret", "simulator_private_key_pem")
#: Which fields each provider kind uses (the rest stay empty).
PROVIDER_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.WECHAT: (
        "merchant_id",
        "app_id",
        "key_serial",
        "public_key_pem",
        "secret",
        "simulator_private_key_pem",
    ),
    Kind.ALIPAY: ("merchant_id", "app_id", "public_key_pem", "simulator_private_key_pem"),
    Kind.FORWARDING: ("name", "secret"),
}
#: Where each provider sends its payment notifications (the merchant sets it at the provider).
NOTIFY_PATHS = {
    Kind.WECHAT: "/api/v1/payments/wechat/notify",
    Kind.ALIPAY: "/api/v1/payments/alipay/notify",
    Kind.FORWARDING: "/api/v1/payments/forward/{name}/callback",
}
FORWARDING_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}$")
MIN_HMAC_SECRET = 32
NOT_A_PUBLIC_KEY = gettext_lazy(
    "This is not an RSA public key (-----BEGIN PUBLIC KEY-----…, or its base64 text)."
)


def notify_path(config: PaymentProviderConfig) -> str:
    return NOTIFY_PATHS[Kind(config.kind)].format(name=config.name)


def secret_hint(value: str) -> str:
    """How a set secret is shown: never the secret, only enough to recognise it."""
    value = value.strip()
    if not value:
        return _("not set")
    if "PRIVATE KEY" in value:
        try:
            key = serialization.load_pem_private_key(value.encode(), password=None)
        except (ValueError, TypeError):
            return _("set")
        return _("set (RSA %(bits)s-bit key)") % {"bits": getattr(key, "key_size", "?")}
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    if len(lines) > 1:
        return _("%(count)s set, the first ends …%(end)s") % {
            "count": len(lines),
            "end": lines[0][-4:],
        }
    return _("set, ends …%(end)s") % {"end": value[-4:]}


def fingerprint(pem: str) -> str:
    return "sha256:" + hashlib.sha256(pem.strip().encode()).hexdigest()[:16] if pem.strip() else ""


def _provider_audit(config: PaymentProviderConfig) -> dict[str, Any]:
    return {
        "kind": config.kind,
        "name": config.name,
        "enabled": config.enabled,
        "merchant_id": config.merchant_id,
        "app_id": config.app_id,
        "key_serial": config.key_serial,
        "public_key": fingerprint(config.public_key_pem),
        **{field: "set" if getattr(config, field) else "not set" for field in SECRET_FIELDS},
    }


def _pem_text(text: str, *, label: str) -> str:
    """PEM as pasted; a bare base64 key (as Alipay's console shows it) is wrapped."""
    text = text.strip()
    if text and "-----BEGIN" not in text:
        body = re.sub(r"\s+", "", text)
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        text = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return text + "\n" if text else ""


def _public_numbers(pem: str) -> rsa.RSAPublicNumbers | None:
    data = pem.encode()
    if b"CERTIFICATE" in data:
        return wechat.load_platform_certificate(pem=data)[1].public_numbers()
    return alipay.load_alipay_public_key(pem=data).public_numbers()


def _check_provider(config: PaymentProviderConfig, errors: dict[str, str]) -> None:
    kind = config.kind
    if kind == Kind.WECHAT:
        if not re.fullmatch(r"\d{6,20}", config.merchant_id):
            errors["merchant_id"] = _("The merchant id (mchid) is the digits WeChat Pay assigned.")
        if not re.fullmatch(r"[A-Za-z0-9_]{4,64}", config.app_id):
            errors["app_id"] = _(
                "The app id (appid) is letters and digits, e.g. wx8888888888888888."
            )
        pem = config.public_key_pem.encode()
        if not pem:
            errors["public_key_pem"] = _(
                "Paste the WeChat Pay public key or the platform certificate (PEM)."
            )
        elif b"CERTIFICATE" in pem:
            try:
                config.key_serial = wechat.load_platform_certificate(pem=pem)[0]
            except ValueError:
                errors["public_key_pem"] = _(
                    "This is not a certificate with an RSA key (-----BEGIN CERTIFICATE-----…)."
                )
        else:
            try:
                wechat.load_public_key(pem=pem)
            except ValueError:
                errors["public_key_pem"] = str(NOT_A_PUBLIC_KEY)
            if not config.key_serial:
                errors["key_serial"] = _(
                    "With a public key, give its id (PUB_KEY_ID_…) from the merchant platform."
                )
        if not config.secret:
            errors["secret"] = _("The APIv3 key is required.")
        elif len(config.secret.encode()) != 32:
            errors["secret"] = _("The APIv3 key is exactly 32 bytes; this one has %(count)s.") % {
                "count": len(config.secret.encode())
            }
    elif kind == Kind.ALIPAY:
        if not re.fullmatch(r"\d{10,32}", config.app_id):
            errors["app_id"] = _("The Alipay app id is digits, e.g. 2021000000000000.")
        if config.merchant_id and not re.fullmatch(r"2088\d{12}", config.merchant_id):
            errors["merchant_id"] = _(
                "The seller id (PID) is 16 digits starting with 2088; leave it empty to skip "
                "the check."
            )
        if not config.public_key_pem:
            errors["public_key_pem"] = _("Paste Alipay's public key (PEM or base64).")
        else:
            try:
                alipay.load_alipay_public_key(pem=config.public_key_pem.encode())
            except ValueError:
                errors["public_key_pem"] = str(NOT_A_PUBLIC_KEY)
    else:
        if not FORWARDING_NAME.fullmatch(config.name):
            errors["name"] = _(
                "2 to 59 lower-case letters, digits and dashes; it is part of the callback URL."
            )
        elif (
            PaymentProviderConfig.objects.filter(kind=Kind.FORWARDING, name=config.name)
            .exclude(pk=config.pk)
            .exists()
        ):
            errors["name"] = _("This name is taken; choose another.")
        lines = [line.strip() for line in config.secret.splitlines() if line.strip()]
        if not lines:
            errors["secret"] = _("The HMAC secret is required.")
        elif any(len(line) < MIN_HMAC_SECRET for line in lines):
            errors["secret"] = _(
                "Each HMAC secret is at least %(count)s characters (one per line while rotating)."
            ) % {"count": MIN_HMAC_SECRET}
        config.secret = "\n".join(lines)
    if config.simulator_private_key_pem and "public_key_pem" not in errors:
        try:
            key = serialization.load_pem_private_key(
                config.simulator_private_key_pem.encode(), password=None
            )
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("not an RSA key")
            if key.public_key().public_numbers() != _public_numbers(config.public_key_pem):
                errors["simulator_private_key_pem"] = _(
                    "This private key does not belong to the public key above."
                )
        except (ValueError, TypeError):
            errors["simulator_private_key_pem"] = _(
                "This is not an unencrypted RSA private key (-----BEGIN PRIVATE KEY-----…)."
            )


@transaction.atomic
def payment_provider_save(
    *,
    actor: Any,
    organisation_id: int,
    kind: str,
    values: Mapping[str, Any],
    config: PaymentProviderConfig | None = None,
) -> PaymentProviderConfig:
    """Create or change a provider. Empty secrets keep the stored ones."""
    if kind not in PROVIDER_FIELDS:
        raise ValidationError({"kind": _("Unknown payment provider.")})
    creating = config is None
    if config is None:
        if (
            kind != Kind.FORWARDING
            and PaymentProviderConfig.objects.filter(
                organisation_id=organisation_id, kind=kind
            ).exists()
        ):
            raise ValidationError(
                {"__all__": _("This provider is already set up; change it instead.")}
            )
        config = PaymentProviderConfig(organisation_id=organisation_id, kind=kind)
        before = None
    else:
        config = PaymentProviderConfig.objects.select_for_update().get(pk=config.pk)
        if config.organisation_id != organisation_id or config.kind != kind:
            raise ValidationError({"kind": _("The kind of a provider cannot change.")})
        before = _provider_audit(config)
    replaced = []
    for field in PROVIDER_FIELDS[kind]:
        value = str(values.get(field) or "").strip()
        if field == "public_key_pem":
            value = _pem_text(value, label="PUBLIC KEY")
        if field in SECRET_FIELDS:
            if not value:
                continue  # write-only: empty keeps what is stored
            replaced.append(field)
        setattr(config, field, value)
    if "simulator_private_key_pem" in PROVIDER_FIELDS[kind] and values.get(
        "clear_simulator_private_key"
    ):
        config.simulator_private_key_pem = ""
        replaced.append("simulator_private_key_pem")
    if "enabled" in values:
        config.enabled = bool(values["enabled"])
    errors: dict[str, str] = {}
    _check_provider(config, errors)
    if errors:
        raise ValidationError(errors)
    config.save()
    after = _provider_audit(config)
    for field in replaced:
        after[field] = "replaced" if after[field] == "set" else after[field]
    audit_record(
        actor=actor,
        action="payment_provider.create" if creating else "payment_provider.change",
        obj=config,
        before=before,
        after=after,
    )
    return config


@transaction.atomic
def payment_provider_enable(
    *, actor: Any, config: PaymentProviderConfig, enabled: bool
) -> PaymentProviderConfig:
    config = PaymentProviderConfig.objects.select_for_update().get(pk=config.pk)
    before = {"enabled": config.enabled}
    config.enabled = enabled
    config.save(update_fields=["enabled"])
    audit_record(
        actor=actor,
        action="payment_provider.enable" if enabled else "payment_provider.disable",
        obj=config,
        before=before,
        after={"enabled": enabled},
    )
    return config


# --- balance policy ---------------------------------------------------------------------------

POLICY_FIELDS = (
    "alarm_thresholds_minor",
    "overdraft_minor",
    "restore_threshold_minor",
    "repeat_count",
    "repeat_interval_minutes",
    "quiet_start",
    "quiet_end",
    "night_start",
    "night_end",
    "protect_weekends",
    "protect_holidays",
    "holidays",
    "working_days",
    "reminder_days",
    "postpaid_due_days",
    "postpaid_grace_days",
)


def policy_errors(values: Mapping[str, Any], currency: str = "CNY") -> dict[str, str]:
    """What is wrong with a policy, by field (empty: it is usable)."""
    errors: dict[str, str] = {}
    thresholds = list(values.get("alarm_thresholds_minor") or [])
    if not thresholds:
        errors["alarm_thresholds_minor"] = _("Set at least the first alarm level.")
    elif any(a <= b for a, b in pairwise(thresholds)):
        errors["alarm_thresholds_minor"] = _(
            "Each alarm level is lower than the one before: level 1 is the first warning."
        )
    overdraft = int(values.get("overdraft_minor") or 0)
    if overdraft < 0:
        errors["overdraft_minor"] = _("The overdraft is an allowance: zero or more.")
    elif int(values.get("restore_threshold_minor") or 0) < -overdraft:
        errors["restore_threshold_minor"] = _(
            "Restore at or above the cut-off point (minus the overdraft), or supply would flap."
        )
    if int(values.get("repeat_count") or 0) < 1:
        errors["repeat_count"] = _("Send each alarm at least once.")
    if int(values.get("repeat_interval_minutes") or 0) < 1:
        errors["repeat_interval_minutes"] = _("The repeat interval is at least one minute.")
    for start, end in (("quiet_start", "quiet_end"), ("night_start", "night_end")):
        a, b = values.get(start), values.get(end)
        if (a is None) != (b is None):
            errors[end if a is not None else start] = _("Give both times, or neither.")
        elif a is not None and a == b:
            errors[end] = _("A period cannot start and end at the same time.")
    reminder = values.get("reminder_days")
    if reminder is not None and not Decimal(0) < Decimal(reminder) <= Decimal(365):
        errors["reminder_days"] = _("Between 0.1 and 365 days, or empty for no reminder.")
    if not errors:
        try:
            rules.BalancePolicy(
                alarm_thresholds=tuple(from_minor(int(m), currency) for m in thresholds),
                overdraft=from_minor(overdraft, currency),
                restore_threshold=from_minor(
                    int(values.get("restore_threshold_minor") or 0), currency
                ),
                repeat_count=int(values["repeat_count"]),
                repeat_interval=timedelta(minutes=int(values["repeat_interval_minutes"])),
            )
        except rules.BalanceRuleError as exc:
            errors["__all__"] = str(exc)
    return errors


def _policy_json(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, time | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[key] = value
    return out


@transaction.atomic
def balance_policy_save(
    *, actor: Any, organisation_id: int, values: Mapping[str, Any]
) -> BalancePolicy:
    """Replace the organisation's policy settings (default tariffs are kept)."""
    unknown = set(values) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError({"__all__": f"unknown policy fields {sorted(unknown)}"})
    errors = policy_errors(values)
    if errors:
        raise ValidationError(errors)
    policy = (
        BalancePolicy.objects.select_for_update().filter(organisation_id=organisation_id).first()
    )
    before = None
    if policy is None:
        policy = BalancePolicy(organisation_id=organisation_id)
    else:
        before = {k: v for k, v in snapshot(policy).items() if k in POLICY_FIELDS}
    for key, value in values.items():
        setattr(policy, key, value)
    policy.holidays = [str(d) for d in policy.holidays]
    policy.working_days = [str(d) for d in policy.working_days]
    policy.save()
    audit_record(
        actor=actor,
        action="balance_policy.change",
        obj=policy,
        before=before,
        after=_policy_json({k: getattr(policy, k) for k in POLICY_FIELDS}),
    )
    return policy


# --- notification channels --------------------------------------------------------------------

EVENT_VALUES = frozenset(value for value, _label in NOTIFICATION_EVENTS)
#: A made-up recipient, so that target templates can be parsed and checked.
_SAMPLE = {"phone": "13800000000", "email": "tenant@example.com"}


def target_display(channel: NotificationChannel) -> str:
    """The target as shown: Apprise URLs carry tokens, so only their masked form is shown."""
    target = channel.target
    if channel.kind == NotificationChannel.Kind.APPRISE and target:
        scheme = target.split("://", 1)[0]
        try:
            import apprise

            plugin = apprise.Apprise.instantiate(fill_target(target, **_SAMPLE))
        except ValueError:
            plugin = None
        if plugin is None:
            return f"{scheme}://…"
        return str(plugin.url(privacy=True)).split("?", 1)[0]
    if channel.kind == NotificationChannel.Kind.WEBHOOK and target:
        parts = urlsplit(target)
        return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?…" if parts.query else "")
    return target


def _channel_audit(channel: NotificationChannel) -> dict[str, Any]:
    return {
        "kind": channel.kind,
        "name": channel.name,
        "target": target_display(channel),
        "secret": "set" if channel.secret else "not set",
        "events": list(channel.events or []),
        "enabled": channel.enabled,
    }


def _check_channel(channel: NotificationChannel, errors: dict[str, str]) -> None:
    if not channel.name.strip():
        errors["name"] = _("Give the channel a name.")
    events = list(channel.events or [])
    if not events:
        errors["events"] = _("Choose at least one event.")
    elif not set(events) <= EVENT_VALUES:
        errors["events"] = _("Unknown event.")
    sample = fill_target(channel.target, **_SAMPLE)
    if channel.kind == NotificationChannel.Kind.APPRISE:
        import apprise

        if not channel.target:
            errors["target"] = _("The Apprise URL is required.")
        elif apprise.Apprise.instantiate(sample) is None:
            errors["target"] = _(
                "Apprise does not understand this URL; see the Apprise documentation of the "
                "service (e.g. dingtalk://token/, wecombot://key, json://host/path)."
            )
    elif channel.kind == NotificationChannel.Kind.EMAIL:
        if sample:
            try:
                EmailValidator()(sample)
            except ValidationError:
                errors["target"] = _(
                    "An e-mail address, or {email} for the customer's, or empty for the same."
                )
    elif channel.kind == NotificationChannel.Kind.WEBHOOK:
        try:
            URLValidator(schemes=["http", "https"])(sample)
        except ValidationError:
            errors["target"] = _("The webhook is an http(s) URL.")
    else:
        errors["kind"] = _("Unknown channel kind.")


@transaction.atomic
def notification_channel_save(
    *,
    actor: Any,
    organisation_id: int,
    values: Mapping[str, Any],
    channel: NotificationChannel | None = None,
) -> NotificationChannel:
    """Create or change a channel. An empty Apprise URL or webhook secret keeps the stored one."""
    creating = channel is None
    if channel is None:
        channel = NotificationChannel(
            organisation_id=organisation_id, kind=str(values.get("kind", ""))
        )
        before = None
    else:
        channel = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
        if channel.organisation_id != organisation_id:
            raise ValidationError({"__all__": "another organisation's channel"})
        before = _channel_audit(channel)
    channel.name = str(values.get("name", channel.name)).strip()[:80]
    target = str(values.get("target") or "").strip()
    if target or channel.kind != NotificationChannel.Kind.APPRISE or creating:
        channel.target = target[:500]
    secret = str(values.get("secret") or "").strip()
    if channel.kind == NotificationChannel.Kind.WEBHOOK:
        if secret:
            channel.secret = secret[:200]
        elif values.get("clear_secret"):
            channel.secret = ""
    else:
        channel.secret = ""
    if "events" in values:
        channel.events = [e for e, _label in NOTIFICATION_EVENTS if e in set(values["events"])]
    if "enabled" in values:
        channel.enabled = bool(values["enabled"])
    errors: dict[str, str] = {}
    _check_channel(channel, errors)
    if errors:
        raise ValidationError(errors)
    channel.save()
    after = _channel_audit(channel)
    if secret:
        after["secret"] = "replaced"
    audit_record(
        actor=actor,
        action="notification_channel.create" if creating else "notification_channel.change",
        obj=channel,
        before=before,
        after=after,
    )
    return channel


@transaction.atomic
def notification_channel_enable(
    *, actor: Any, channel: NotificationChannel, enabled: bool
) -> NotificationChannel:
    channel = NotificationChannel.objects.select_for_update().get(pk=channel.pk)
    before = {"enabled": channel.enabled}
    channel.enabled = enabled
    channel.save(update_fields=["enabled"])
    audit_record(
        actor=actor,
        action="notification_channel.enable" if enabled else "notification_channel.disable",
        obj=channel,
        before=before,
        after={"enabled": enabled},
    )
    return channel


def notification_channel_test(
    *, actor: Any, channel: NotificationChannel, phone: str = "", email: str = ""
) -> Notification:
    """Send a test message now through ``channel``; the row records the delivery result."""
    if channel.kind != NotificationChannel.Kind.WEBHOOK:
        if "{phone}" in channel.target and not phone:
            raise ValidationError({"phone": _("This channel sends to {phone}: give a number.")})
        needs_email = "{email}" in channel.target or (
            channel.kind == NotificationChannel.Kind.EMAIL and not channel.target
        )
        if needs_email and not email:
            raise ValidationError({"email": _("This channel sends to {email}: give an address.")})
    who = getattr(actor, "username", None) or str(actor)
    # Built unsaved and sent in the request: the outbox sender never sees it pending.
    notification = Notification(
        organisation_id=channel.organisation_id,
        channel=channel,
        kind=Notification.Kind.TEST,
        subject=_("meterpay test message"),
        body=_("A test of the channel “%(name)s”, sent by %(user)s.")
        % {"name": channel.name, "user": who},
        attempts=1,
    )
    try:
        notification.result = deliver(notification, phone=phone, email=email)[:300]
        notification.status = Notification.Status.SENT
        notification.sent_at = timezone.now()
    except Exception as exc:  # any failure is the result the user came to see
        notification.result = f"{type(exc).__name__}: {exc}"[:300]
        notification.status = Notification.Status.FAILED
    with transaction.atomic():
        notification.save()
        audit_record(
            actor=actor,
            action="notification_channel.test",
            obj=channel,
            after={"status": notification.status, "result": notification.result},
        )
    return notification
