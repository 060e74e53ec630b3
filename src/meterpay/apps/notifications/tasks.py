"""Background jobs of the notifications app (Huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from meterpay.apps.notifications.sending import notifications_send


@db_task()
def notifications_send_task() -> int:
    return notifications_send()


@db_periodic_task(crontab(minute="*"))
def notifications_retry() -> int:
    return notifications_send()
