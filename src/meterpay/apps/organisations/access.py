"""Access checked in one place: every console view and API handler fetches objects through here.

An object of another organisation is indistinguishable from a missing one (404), so a user
cannot even learn that it exists.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from meterpay.core.roles import Permission


def require(user: Any, permission: Permission) -> None:
    """Raise PermissionDenied unless the user's role grants ``permission``."""
    if not getattr(user, "is_authenticated", False) or not user.can(permission):
        raise PermissionDenied


def org_objects[M: models.Model](user: Any, model: type[M]) -> models.QuerySet[M]:
    """All objects of ``model`` that belong to the user's organisation (none for outsiders)."""
    org_id = getattr(user, "organisation_id", None)
    if org_id is None or not user.can(Permission.VIEW):
        return model._default_manager.none()
    return model._default_manager.filter(organisation_id=org_id)


def access_object[M: models.Model](user: Any, source: type[M] | models.QuerySet[M], pk: Any) -> M:
    """The object with ``pk`` if it belongs to the user's organisation, else 404.

    ``source`` is a model or a queryset (for select_related); either is narrowed to the
    user's organisation here.
    """
    if isinstance(source, models.QuerySet):
        model = source.model
        org_id = getattr(user, "organisation_id", None)
        allowed = org_id is not None and user.can(Permission.VIEW)
        qs = source.filter(organisation_id=org_id) if allowed else source.none()
    else:
        model = source
        qs = org_objects(user, model)
    try:
        return qs.get(pk=pk)
    except (model.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404(f"no {model._meta.verbose_name} {pk}") from None
