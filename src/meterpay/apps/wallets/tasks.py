"""Background jobs of the wallets app (Huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from meterpay.apps.wallets.notify import notifications_send


@db_task()
def notifications_send_task() -> int:
    return notifications_send()


@db_periodic_task(crontab(minute="*"))
def notifications_retry() -> int:
    return notifications_send()


@db_task()
def meters_deduct_task(meter_ids: list[int]) -> int:
    """Readings just stored for these meters: rate and deduct them now, not at the next sweep."""
    from meterpay.apps.wallets.deduction import meters_deduct

    return meters_deduct(meter_ids=meter_ids)


@db_periodic_task(crontab(minute="*"))
def deductions_run_periodic() -> int:
    from meterpay.apps.wallets.deduction import deductions_run

    return deductions_run()


@db_periodic_task(crontab(minute="*/5"))
def wallets_sweep_periodic() -> int:
    from meterpay.apps.wallets.supply import wallets_sweep

    return wallets_sweep()
