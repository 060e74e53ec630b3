"""The one way to write the audit log. Every service that changes state calls ``audit_record``."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models

from meterpay.apps.audit.models import AuditEvent

Actor = Any  # a User, or a string such as "system" or "cli"


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The object's concrete fields as JSON-ready values (FKs as ids, decimals as strings)."""
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        value = getattr(obj, field.attname)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, bytes | memoryview):
            continue
        data[field.attname] = value
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            data[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return data


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    organisation_id: int | None = None,
) -> AuditEvent:
    user = actor if isinstance(actor, models.Model) else None
    label = getattr(actor, "username", None) or str(actor)
    org_id = (
        organisation_id if organisation_id is not None else getattr(obj, "organisation_id", None)
    )
    if org_id is None and user is not None:
        org_id = getattr(user, "organisation_id", None)
    return AuditEvent.objects.create(
        organisation_id=org_id,
        actor=user,
        actor_label=label[:150],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:255],
        before=before,
        after=after,
    )
