from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.factories import build_org

pytestmark = pytest.mark.django_db


def test_token_create_prints_the_token_alone_on_the_last_line_and_it_works(client: Any) -> None:
    org = build_org("cli", 60)
    out = io.StringIO()
    call_command("token", "create", "--user", "cli-viewer", stdout=out, stderr=io.StringIO())
    token = out.getvalue().strip().splitlines()[-1]
    assert token.startswith("mp_") and " " not in token
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["username"] == "cli-viewer"
    listing = io.StringIO()
    call_command("token", "list", "--user", "cli-viewer", stdout=listing)
    assert token[:10] in listing.getvalue()
    call_command("token", "revoke", "--user", "cli-viewer", token[:10], stdout=io.StringIO())
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert org.org.slug == "cli"


def test_token_for_unknown_user_is_an_error() -> None:
    with pytest.raises(CommandError, match="no user"):
        call_command("token", "create", "--user", "nobody")
