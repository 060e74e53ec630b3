"""Background jobs of the billing app (Huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task


@db_task()
def meters_deduct_task(meter_ids: list[int]) -> int:
    """Readings just stored for these meters: rate and deduct them now, not at the next sweep."""
    from meterpay.apps.billing.deductions import meters_deduct

    return meters_deduct(meter_ids=meter_ids)


@db_periodic_task(crontab(minute="*"))
def deductions_run_periodic() -> int:
    from meterpay.apps.billing.deductions import deductions_run

    return deductions_run()
