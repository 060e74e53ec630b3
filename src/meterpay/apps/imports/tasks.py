"""Background jobs of the imports app."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from meterpay.apps.imports.models import ImportBatch

KEEP_UPLOADED_FILES = timedelta(days=30)


def import_files_purge(*, now: object = None) -> int:
    """Drop the stored file of imports older than 30 days (the row, its errors and audit stay)."""
    cutoff = (now or timezone.now()) - KEEP_UPLOADED_FILES  # type: ignore[operator]
    return (
        ImportBatch.objects.filter(created_at__lt=cutoff).exclude(content=b"").update(content=b"")
    )


@db_periodic_task(crontab(hour="3", minute="17"))
def import_files_purge_daily() -> int:
    return import_files_purge()
