"""Shared fixtures, and the switch that runs only database tests on PostgreSQL.

``METERPAY_DB_TESTS_ONLY=1`` (set by ``make test`` for its PostgreSQL pass) keeps the tests
that touch the database and drops the rest, which already ran on SQLite.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DB_TESTS_ONLY = os.environ.get("METERPAY_DB_TESTS_ONLY") == "1"
DB_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server", "client", "admin_client"}


def server_reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (under CI=true) when a real server the test needs is not there."""
    if server_reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true needs it)")
    pytest.skip(message)


def _uses_database(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(item.get_closest_marker("django_db")) or bool(fixtures & DB_FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not DB_TESTS_ONLY:
        return
    keep, drop = [], []
    for item in items:
        (keep if _uses_database(item) and not item.get_closest_marker("e2e") else drop).append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)


def pytest_configure(config: pytest.Config) -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres") and not server_reachable("127.0.0.1", 5432):
        message = "PostgreSQL is not reachable at 127.0.0.1:5432"
        if IN_CI:
            raise pytest.UsageError(f"{message} (CI=true needs it)")
        config.issue_config_time_warning(
            pytest.PytestWarning(f"{message}: database tests are skipped"), 2
        )
        config._meterpay_skip_db = message  # type: ignore[attr-defined]


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = getattr(item.config, "_meterpay_skip_db", None)
    if reason and _uses_database(item):
        pytest.skip(reason)


@pytest.fixture
def make_org(db: Any) -> Any:
    """Build a small organisation (see tests.factories.build_org)."""
    from tests.factories import build_org

    return build_org


@pytest.fixture
def org(db: Any) -> Any:
    """An organisation with 100 of everything (a test module may define its own ``org``)."""
    from tests.factories import build_org

    return build_org("alpha", 100)
