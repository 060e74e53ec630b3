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


@db_periodic_task(crontab(minute="20", hour="1"))
def bill_runs_scheduled_periodic() -> int:
    """Every night: the scheduled month-end runs that are due."""
    from meterpay.apps.billing.runs import bill_runs_scheduled

    return len(bill_runs_scheduled())


@db_periodic_task(crontab(minute="40", hour="9"))
def bills_overdue_periodic() -> int:
    """Every morning (not at night): overdue bills reminded; arrears cut by the supply rules."""
    from meterpay.apps.billing.bills import bills_overdue_run

    return bills_overdue_run()
