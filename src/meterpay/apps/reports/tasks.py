"""Background jobs of the reports app (Huey): the roll-ups kept up to date."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task


@db_task()
def rollups_advance_task() -> int:
    """Readings or deductions were just stored: roll them up now, not at the next minute.

    A run already rolling up makes this one skip: that run takes the rows, or the next does.
    """
    from meterpay.apps.reports.services import rollups_catch_up

    return rollups_catch_up(max_seconds=20).intervals


@db_periodic_task(crontab(minute="*"))
def rollups_advance_periodic() -> int:
    """Every minute: whatever was stored since the last run (and ids that were still missing)."""
    from meterpay.apps.reports.services import rollups_catch_up

    return rollups_catch_up(max_seconds=50).intervals
