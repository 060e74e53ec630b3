from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from meterpay.apps.users.services import api_token_authenticate


class BearerToken(HttpBearer):
    """``Authorization: Bearer mp_…`` with a token created in the console or by the CLI."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_authenticate(token)
        if user is None:
            return None
        request.user = user
        return user


class StaffSession(SessionAuth):
    """The console's session (with CSRF for unsafe methods)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user is not None and user.is_authenticated else None
