"""Background jobs: the periodic purge, and the Redis path of the job queue against real Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from meterpay.apps.imports.models import ImportBatch
from meterpay.apps.imports.tasks import import_files_purge, import_files_purge_daily
from tests.conftest import require_server
from tests.factories import build_org


@pytest.mark.django_db
def test_old_import_files_are_purged_but_the_batch_stays() -> None:
    org = build_org("jobs", 400)
    old = ImportBatch.objects.create(
        organisation=org.org,
        kind="rooms",
        filename="old.csv",
        content=b"a,b",
        uploaded_by=org.users["owner"],
    )
    ImportBatch.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert import_files_purge() == 1
    old.refresh_from_db()
    assert bytes(old.content) == b"" and old.filename == "old.csv"
    assert bytes(ImportBatch.objects.get(pk=org.batch.pk).content) == b"name\nX\n"  # recent: kept
    assert import_files_purge_daily.call_local() == 0


def _redis_huey() -> Any:
    from huey import RedisHuey

    return RedisHuey(f"meterpay-test-{uuid.uuid4().hex[:8]}", url="redis://127.0.0.1:6379/15")


def test_jobs_go_through_real_redis() -> None:
    require_server("Redis", "127.0.0.1", 6379)
    huey = _redis_huey()
    calls: list[int] = []

    @huey.task()
    def add(a: int, b: int) -> int:
        calls.append(a + b)
        return a + b

    try:
        result = add(2, 3)
        assert huey.pending_count() == 1  # the job is in Redis, not run yet
        task = huey.dequeue()
        assert task is not None
        huey.execute(task)
        assert calls == [5] and result.get() == 5
        assert huey.pending_count() == 0
    finally:
        huey.storage.flush_all()
