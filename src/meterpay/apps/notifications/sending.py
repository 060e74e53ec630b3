"""Sending the outbox: each notification through its channel (e-mail, Apprise, a signed
webhook), with its result recorded; failures are retried up to ``MAX_ATTEMPTS``."""

from __future__ import annotations

import json
import logging
import urllib.request
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from meterpay.apps.notifications.models import (
    Notification,
    NotificationChannel,
)
from meterpay.core.payments import forwarding

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


def fill_target(template: str, *, phone: str, email: str) -> str:
    """A channel target with the recipient's ``{phone}`` and ``{email}`` filled in."""
    return template.replace("{phone}", phone).replace("{email}", email)


def _deliver(notification: Notification) -> str:
    account = notification.account
    customer = account.customer if account is not None else None
    return deliver(
        notification,
        phone=customer.phone if customer else "",
        email=customer.email if customer else "",
    )


def deliver(notification: Notification, *, phone: str, email: str) -> str:
    """Send one notification through its channel to this recipient; the result, or raise."""
    channel = notification.channel
    account = notification.account
    if channel is None or channel.kind == NotificationChannel.Kind.EMAIL:
        address = (
            fill_target(channel.target, phone=phone, email=email)
            if channel and channel.target
            else ""
        )
        address = address or email
        if not address:
            raise RuntimeError("no channel and no e-mail address for the customer")
        send_mail(notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL, [address])
        return f"e-mail to {address}"
    if channel.kind == NotificationChannel.Kind.APPRISE:
        import apprise

        sender = apprise.Apprise()
        if not sender.add(fill_target(channel.target, phone=phone, email=email)):
            raise RuntimeError("Apprise does not understand this URL")
        if not sender.notify(title=notification.subject, body=notification.body):
            raise RuntimeError("Apprise reported a failure")
        return f"apprise {channel.name}"
    body = json.dumps(
        {
            "id": notification.pk,
            "kind": notification.kind,
            "level": notification.level,
            "account": account.number if account is not None else None,
            "subject": notification.subject,
            "body": notification.body,
        },
        ensure_ascii=False,
        sort_keys=True,
    ).encode()
    headers = {"Content-Type": "application/json"}
    if channel.secret:
        headers.update(
            forwarding.sign_request(secret=channel.secret.encode(), body=body, now=timezone.now())
        )
    url = fill_target(channel.target, phone=phone, email=email)
    if not url.startswith(("https://", "http://")):
        raise RuntimeError("a webhook target is an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - http(s) checked above
        url, data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked above
        return f"webhook HTTP {response.status}"


def notifications_send(*, limit: int = 200, now: datetime | None = None) -> int:
    """Send pending notifications; each records its result. Returns how many were sent."""
    sent = 0
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        with transaction.atomic():
            notification = (
                Notification.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("channel", "account__customer")
                .filter(pk=pk, status=Notification.Status.PENDING)
                .first()
            )
            if notification is None:
                continue
            notification.attempts += 1
            try:
                notification.result = _deliver(notification)[:300]
                notification.status = Notification.Status.SENT
                notification.sent_at = now or timezone.now()
                sent += 1
            except Exception as exc:  # any delivery failure is recorded, not raised
                notification.result = f"{type(exc).__name__}: {exc}"[:300]
                if notification.attempts >= MAX_ATTEMPTS:
                    notification.status = Notification.Status.FAILED
            notification.save(update_fields=["attempts", "result", "status", "sent_at"])
    return sent
