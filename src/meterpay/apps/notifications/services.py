"""Notifications: the outbox (one row per channel, written in the deciding transaction and sent
after commit), delivery through e-mail, Apprise or a signed webhook, and the channels' settings.

Channel writes are validated here and raise ``ValidationError`` keyed by field; a webhook
secret is never written to the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.audit.services import audit_record
from meterpay.apps.customers.models import Account
from meterpay.apps.notifications.models import (
    NOTIFICATION_EVENTS,
    Notification,
    NotificationChannel,
)
from meterpay.apps.notifications.sending import deliver, fill_target
from meterpay.apps.notifications.tasks import notifications_send_task

log = logging.getLogger(__name__)


def notification_create(
    *, account: Account, kind: str, subject: str, body: str, level: int | None = None
) -> list[Notification]:
    """One outbox row per enabled channel that takes ``kind``.

    An organisation with no enabled channel at all notifies the customer's e-mail address; one
    whose channels all leave ``kind`` out has chosen not to send it.
    """
    enabled = list(
        NotificationChannel.objects.filter(organisation_id=account.organisation_id, enabled=True)
    )
    channels: list[NotificationChannel | None] = [c for c in enabled if kind in (c.events or [])]
    if not enabled:
        channels = [None]
    rows = [
        Notification.objects.create(
            organisation_id=account.organisation_id,
            account=account,
            channel=channel,
            kind=kind,
            level=level,
            subject=subject[:200],
            body=body,
        )
        for channel in channels
    ]
    transaction.on_commit(_schedule_sending)
    return rows


def _schedule_sending() -> None:
    try:
        notifications_send_task()
    except Exception:  # the periodic task retries; never break the committed request
        log.exception("could not schedule notification sending")


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
        url = plugin.url(privacy=True)  # type: ignore[no-untyped-call]  # apprise has no types here
        return str(url).split("?", 1)[0]
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
