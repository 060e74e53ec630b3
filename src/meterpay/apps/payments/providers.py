"""Payment provider settings: credentials validated on every write (keys parse, the APIv3 key is
32 bytes…), raising ``ValidationError`` keyed by field, so nothing is half saved. Secrets are
never written to the audit log: it records whether a secret is set or was replaced, and a
public key's fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.audit.services import audit_record
from meterpay.apps.payments.models import PaymentProviderConfig
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
