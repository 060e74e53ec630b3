"""Wake the gateway's command dispatcher as soon as a command is committed.

- PostgreSQL: :func:`meterpay.apps.control.services.meter_command_request` sends
  ``pg_notify('meterpay_commands', …)`` in the transaction that writes the command, so the
  notification arrives exactly when (and only if) it commits. :class:`CommandListener` holds a
  dedicated psycopg connection that LISTENs and wakes the dispatcher.
- SQLite (one machine, the demo): :class:`CommandPoll` asks for the newest command's id every
  ``every`` seconds (one row from the primary key index) and wakes the dispatcher when it grows.

Either way the process still reads the outbox every ``tick`` (the safety net).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from asgiref.sync import sync_to_async
from django.db import connections
from psycopg import sql

from meterpay.apps.control.models import MeterCommand
from meterpay.apps.control.services import COMMANDS_CHANNEL
from meterpay.gateway.process import CommandWakeups

log = logging.getLogger("meterpay.gateway")

#: ``--command-wakeup`` choices.
WAKEUP_CHOICES = ("auto", "listen", "poll", "off")


def _listen_params() -> dict[str, Any]:
    """The Django database's connection parameters, as psycopg takes them."""
    params = dict(connections["default"].get_connection_params())
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return params


class CommandListener:
    """LISTEN on a dedicated connection; reconnects after ``retry`` seconds if it is lost."""

    def __init__(self, *, channel: str = COMMANDS_CHANNEL, retry: float = 1.0) -> None:
        self.channel = channel
        self.retry = retry
        #: Set once the connection listens (tests wait for it before writing commands).
        self.listening = asyncio.Event()

    async def run(self, wake: Callable[[], None]) -> None:
        params = await sync_to_async(_listen_params, thread_sensitive=True)()
        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with connection:
                    await connection.execute(
                        sql.SQL("LISTEN {}").format(sql.Identifier(self.channel))
                    )
                    self.listening.set()
                    wake()  # commands written while nobody listened
                    async for _ in connection.notifies():
                        wake()
            except (psycopg.Error, OSError) as exc:
                log.warning("command listener: %s; reconnecting in %.0f s", exc, self.retry)
            finally:
                self.listening.clear()
            await asyncio.sleep(self.retry)


class CommandPoll:
    """A short poll of the newest command id (SQLite: no LISTEN/NOTIFY)."""

    def __init__(self, *, every: float = 0.2) -> None:
        if every <= 0:
            raise ValueError("the command poll interval must be positive")
        self.every = every
        self.listening = asyncio.Event()

    @staticmethod
    def _newest() -> int:
        newest = MeterCommand.objects.order_by("-pk").values_list("pk", flat=True).first()
        return int(newest or 0)

    async def run(self, wake: Callable[[], None]) -> None:
        newest = sync_to_async(self._newest, thread_sensitive=True)
        seen = await newest()
        self.listening.set()
        while True:
            await asyncio.sleep(self.every)
            try:
                latest = await newest()
            except Exception as exc:  # a busy or restarting database: the next poll retries
                log.debug("command poll: %s", exc)
                continue
            if latest > seen:
                seen = latest
                wake()


def command_wakeups(mode: str = "auto", *, poll_every: float = 0.2) -> CommandWakeups | None:
    """The wake-up source for ``mode``: auto = listen on PostgreSQL, poll elsewhere."""
    if mode not in WAKEUP_CHOICES:
        raise ValueError(f"unknown command wake-up {mode!r}; one of {', '.join(WAKEUP_CHOICES)}")
    if mode == "off":
        return None
    if mode == "auto":
        mode = "listen" if connections["default"].vendor == "postgresql" else "poll"
    if mode == "listen":
        if connections["default"].vendor != "postgresql":
            raise ValueError("--command-wakeup listen needs PostgreSQL")
        return CommandListener()
    return CommandPoll(every=poll_every)
