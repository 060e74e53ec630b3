from __future__ import annotations

import secrets

from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.users.models import ApiToken, User, hash_token
from meterpay.core.roles import STAFF_ROLES, Role

TOKEN_PREFIX = "mp_"


class UserError(ValidationError):
    pass


@transaction.atomic
def staff_user_create(
    *,
    actor: object,
    organisation: Organisation,
    username: str,
    password: str,
    role: Role | str,
    email: str = "",
    password_hash: str | None = None,
) -> User:
    """Create a staff user; ``password_hash`` (already hashed) skips the slow hashing."""
    if Role(role) not in STAFF_ROLES:
        raise UserError(f"{role} is not a staff role")
    if User.objects.filter(username=username).exists():
        raise UserError(f"user {username!r} exists already")
    user = User(username=username, email=email, organisation=organisation, role=Role(role))
    user.password = password_hash or make_password(password)
    user.save()
    audit_record(actor=actor, action="user.create", obj=user, after=_public(user))
    return user


@transaction.atomic
def tenant_user_create(
    *,
    actor: object,
    customer: object,
    username: str,
    password: str,
    email: str = "",
    password_hash: str | None = None,
) -> User:
    if User.objects.filter(username=username).exists():
        raise UserError(f"user {username!r} exists already")
    user = User(
        username=username,
        email=email,
        organisation_id=customer.organisation_id,  # type: ignore[attr-defined]  # a Customer
        role=Role.TENANT,
        customer=customer,
    )
    user.password = password_hash or make_password(password)
    user.save()
    audit_record(actor=actor, action="user.create", obj=user, after=_public(user))
    return user


def _check_not_last_owner(user: User) -> None:
    if user.role != Role.OWNER:
        return
    owners = User.objects.filter(
        organisation_id=user.organisation_id, role=Role.OWNER, is_active=True
    )
    if not owners.exclude(pk=user.pk).exists():
        raise UserError("an organisation keeps at least one active owner")


@transaction.atomic
def user_role_set(*, actor: object, user: User, role: Role | str) -> User:
    if Role(role) not in STAFF_ROLES or user.role == Role.TENANT:
        raise UserError("only staff users change between staff roles")
    if Role(role) != Role.OWNER:
        _check_not_last_owner(user)
    before = _public(user)
    user.role = Role(role)
    user.save(update_fields=["role"])
    audit_record(actor=actor, action="user.role_set", obj=user, before=before, after=_public(user))
    return user


@transaction.atomic
def user_active_set(*, actor: object, user: User, active: bool) -> User:
    """Deactivate (the user can no longer sign in or use tokens) or reactivate a user."""
    if not active:
        _check_not_last_owner(user)
    before = _public(user)
    user.is_active = active
    user.save(update_fields=["is_active"])
    action = "user.activate" if active else "user.deactivate"
    audit_record(actor=actor, action=action, obj=user, before=before, after=_public(user))
    return user


@transaction.atomic
def api_token_create(*, actor: object, user: User, name: str = "API token") -> tuple[ApiToken, str]:
    """Create a token; returns the model and the raw token, which is never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name[:100], prefix=raw[:10], key_hash=hash_token(raw)
    )
    audit_record(
        actor=actor,
        action="api_token.create",
        obj=token,
        after={"name": token.name, "prefix": token.prefix, "user": user.username},
        organisation_id=user.organisation_id,
    )
    return token, raw


@transaction.atomic
def api_token_revoke(*, actor: object, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="api_token.revoke",
            obj=token,
            after={"revoked_at": token.revoked_at.isoformat()},
            organisation_id=token.user.organisation_id,
        )
    return token


def api_token_authenticate(raw: str) -> User | None:
    """The active user a raw bearer token belongs to, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def _public(user: User) -> dict[str, object]:
    data = snapshot(user)
    data.pop("password", None)
    return data
