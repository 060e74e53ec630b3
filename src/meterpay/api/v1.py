"""The REST API under /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Router
from ninja.pagination import paginate

from meterpay.api import billing, control, customers, meters, rooms, sites, tariffs, wallets
from meterpay.api.auth import BearerToken, StaffSession
from meterpay.api.pagination import LimitOffset
from meterpay.api.schemas import AuditEventOut, MeOut
from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.organisations.access import org_objects, require
from meterpay.core.roles import ROLE_PERMISSIONS, Permission, Role

ERROR_RESPONSES = {
    "400": "The request is well-formed but breaks a rule; `detail` says which, `errors` by field.",
    "401": "No valid token or session.",
    "403": "Your role does not allow this.",
    "404": "No such object in your organisation.",
    "409": "An idempotency key was reused with different content.",
    "422": "The request does not match the schema; `detail` lists the fields.",
}


class MeterpayAPI(NinjaAPI):
    """Documents the error answers every operation can give, once, instead of per operation."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        error = {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"detail": {}, "errors": {"type": "object"}},
                        "required": ["detail"],
                    }
                }
            }
        }
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, description in ERROR_RESPONSES.items():
                    responses.setdefault(status, {"description": description, **error})
        return schema


api = MeterpayAPI(
    title="meterpay API",
    version="1",
    description="Sites, customers, accounts, meters and gateways of your organisation. "
    "Authenticate with `Authorization: Bearer <token>` (create one in the console or with "
    "`meterpay token create --user USERNAME`).",
    auth=[BearerToken(), StaffSession()],
    urls_namespace="api-v1",
)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    detail = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


@api.exception_handler(PermissionDenied)
def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": "your role does not allow this"}, status=403)


@api.exception_handler(OverflowError)
def on_overflow(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    # An id or filter beyond the database's integer range names nothing that exists.
    return api.create_response(request, {"detail": "a number is out of range"}, status=422)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "not found"}, status=404)


me_router = Router(tags=["me"])


@me_router.get("/me", response=MeOut)
def me(request: HttpRequest) -> Any:
    user: Any = request.user
    return {
        "username": user.username,
        "organisation": user.organisation.name if user.organisation_id else None,
        "role": user.role,
        "permissions": sorted(p.value for p in ROLE_PERMISSIONS.get(Role(user.role), frozenset())),
    }


audit_router = Router(tags=["audit"])


@audit_router.get("/audit-events", response=list[AuditEventOut])
@paginate(LimitOffset)
def audit_list(request: HttpRequest) -> Any:
    require(request.user, Permission.VIEW_AUDIT)
    return [
        {
            "id": e.pk,
            "at": e.at,
            "actor": e.actor_label,
            "action": e.action,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "object_repr": e.object_repr,
            "before": e.before,
            "after": e.after,
        }
        for e in org_objects(request.user, AuditEvent)
    ]


api.add_router("", me_router)
api.add_router("", sites.router)
api.add_router("", rooms.router)
api.add_router("", customers.router)
api.add_router("", meters.router)
api.add_router("", control.router)
api.add_router("", tariffs.router)
api.add_router("", audit_router)
api.add_router("", wallets.router)
api.add_router("", wallets.notifications)
api.add_router("", billing.router)
