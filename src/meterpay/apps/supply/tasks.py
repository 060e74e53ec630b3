"""Background jobs of the supply app (Huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task


@db_periodic_task(crontab(minute="*/5"))
def wallets_sweep_periodic() -> int:
    from meterpay.apps.supply.services import wallets_sweep

    return wallets_sweep()
