"""Property-based API testing from the OpenAPI document (schemathesis): whatever a client sends
within or around the schema, the API never answers 500 and its responses match the schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from meterpay.wsgi import application
from tests.factories import build_org

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection() -> Any:
    """Requests go straight to the WSGI app, not through Django's test client, so stop
    Django from closing the test's database connection after each one (as the client does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db: Any) -> str:
    return str(build_org("fuzz", 800).raw_token)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(case: Any, token: str) -> None:
    # Business rules (an existing floor, a 12-digit DL/T 645 address) are stricter than the
    # schema, so a schema-valid request may be refused with 400: that check stays off.
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
