from __future__ import annotations

from typing import Any

import pytest

from tests.factories import build_org


@pytest.fixture
def org(db: Any) -> Any:
    return build_org("alpha", 100)
