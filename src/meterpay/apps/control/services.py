"""Remote control: request commands (the outbox), and the state machine the gateway drives.

::

    pending --claim--> sent --ack--> acknowledged --status read matches--> confirmed
       ^                 |                 |
       |   no ack / status read differs    |         (attempts left: back to pending,
       +-----------------+-----------------+          after an exponential backoff)
    pending --a contradicting request--> superseded
    sent/acknowledged --attempts used up--> failed (meter refused or did not act)
                                            timed_out (never answered; a later status
                                            read that matches still confirms it)

A command is never applied twice: the gateway claims it with one conditional UPDATE before
sending, a retry reads the meter first, and results for a finished command are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.control.models import MeterCommand, MeterSupplyState, Supply
from meterpay.apps.meters.models import Meter

MAX_ATTEMPTS = 4
BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_CAP = timedelta(minutes=10)
#: A command the gateway could not deliver for this long (gateway offline) times out.
PENDING_MAX_AGE = timedelta(hours=24)
#: PostgreSQL NOTIFY channel: the gateway LISTENs and sends a new command at once.
COMMANDS_CHANNEL = "meterpay_commands"

ELECTRICITY_KINDS = (MeterCommand.Kind.RELAY_TRIP, MeterCommand.Kind.RELAY_CLOSE)
WATER_KINDS = (MeterCommand.Kind.VALVE_OPEN, MeterCommand.Kind.VALVE_CLOSE)

type Actor = Any

#: Called as ``hook(command=..., actor=...)`` in the transaction that finishes a credit command
#: (confirmed, failed, timed out): the wallets app moves the money that goes with it.
CREDIT_FINISHED_HOOKS: list[Callable[..., None]] = []


def _command_snapshot(command: MeterCommand) -> dict[str, Any]:
    return {
        "command_id": str(command.command_id),
        "meter": command.meter_id,
        "kind": command.kind,
        "status": command.status,
        "attempts": command.attempts,
        "requested_by": command.requested_by,
        "reason": command.reason,
        "outcome": command.outcome,
    }


def _supply_for_update(meter: Meter) -> MeterSupplyState:
    state, _ = MeterSupplyState.objects.get_or_create(
        meter=meter, defaults={"organisation_id": meter.organisation_id}
    )
    return MeterSupplyState.objects.select_for_update().get(pk=state.pk)


def command_finish(
    command: MeterCommand, *, actor: Actor, status: str, at: datetime, outcome: str
) -> MeterCommand:
    """End a command with ``status`` and ``outcome``, audited (in the caller's transaction)."""
    before = _command_snapshot(command)
    command.status = status
    command.finished_at = at
    command.outcome = outcome[:300]
    command.save(update_fields=["status", "finished_at", "outcome"])
    audit_record(
        actor=actor,
        action=f"meter_command.{status}",
        obj=command,
        before=before,
        after=_command_snapshot(command),
    )
    if command.is_credit:
        for hook in CREDIT_FINISHED_HOOKS:
            hook(command=command, actor=actor)
    return command


def _notify_gateway(command: MeterCommand) -> None:
    """NOTIFY in the writing transaction: delivered at commit, dropped with a rollback."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [COMMANDS_CHANNEL, str(command.command_id)])


def command_requester_check(requested_by: str) -> None:
    if requested_by not in MeterCommand.Requester.values:
        raise ValidationError({"requested_by": f"unknown requester {requested_by!r}"})


def command_meter_check(meter: Meter) -> None:
    """A command goes to a meter still in place, behind a gateway."""
    if meter.removed_on is not None:
        raise ValidationError({"meter": "this meter was removed"})
    if meter.gateway_id is None:
        raise ValidationError({"meter": "this meter is not behind a gateway"})


def command_replay(
    meter: Meter, key: str | None, *, same: Callable[[MeterCommand], bool]
) -> MeterCommand | None:
    """The command first written under idempotency ``key``, if any; ``same`` tells whether it
    asked for what is asked again (else the key was reused for another command: an error)."""
    if key is None:
        return None
    existing = MeterCommand.objects.filter(
        organisation_id=meter.organisation_id, idempotency_key=key
    ).first()
    if existing is not None and not same(existing):
        raise ValidationError({"idempotency_key": "this key was used for another command"})
    return existing


def command_create(
    *,
    actor: Actor,
    meter: Meter,
    kind: str,
    requested_by: str,
    reason: str,
    key: str | None,
    at: datetime,
    amount_minor: int | None = None,
) -> tuple[MeterCommand, bool]:
    """Write a requested command, audit it and wake the gateway (in the caller's transaction).

    Returns ``(command, created)``: with ``created`` False, the row that was written
    concurrently under the same idempotency key (neither audited nor notified again).
    """
    try:
        with transaction.atomic():
            command = MeterCommand.objects.create(
                organisation_id=meter.organisation_id,
                meter=meter,
                kind=kind,
                amount_minor=amount_minor,
                requested_by=requested_by,
                requested_by_user=actor if isinstance(actor, models.Model) else None,
                reason=reason[:200],
                idempotency_key=key,
                next_attempt_at=at,
            )
    except IntegrityError:  # the same idempotency key, committed concurrently
        concurrent = MeterCommand.objects.get(
            organisation_id=meter.organisation_id, idempotency_key=key
        )
        return concurrent, False
    after = _command_snapshot(command)
    if amount_minor is not None:  # a credit command's amount
        after["amount_minor"] = amount_minor
    audit_record(actor=actor, action="meter_command.request", obj=command, after=after)
    _notify_gateway(command)  # the gateway sends it at commit
    return command, True


def backoff(attempts: int, base: timedelta = BACKOFF_BASE) -> timedelta:
    """Wait before attempt ``attempts + 1``: base, 2 x base, 4 x base ... up to the cap."""
    return min(base * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


@transaction.atomic
def meter_command_request(
    *,
    actor: Actor,
    meter: Meter,
    kind: str,
    reason: str = "",
    requested_by: str,
    idempotency_key: str | None = None,
) -> MeterCommand:
    """Ask for a relay/valve switch. Written in the caller's transaction; sent after commit.

    A pending command that asks for the opposite is superseded; one that asks for the same is
    returned instead of a second row. With an ``idempotency_key``, a replay returns the first.
    """
    command_requester_check(requested_by)
    if kind not in MeterCommand.Kind.values:
        raise ValidationError({"kind": f"unknown command {kind!r}"})
    allowed = WATER_KINDS if meter.kind == Meter.Kind.WATER else ELECTRICITY_KINDS
    if kind not in allowed:
        raise ValidationError({"kind": "water meters have a valve, electricity meters a relay"})
    command_meter_check(meter)
    if idempotency_key is not None:
        idempotency_key = idempotency_key.strip()[:100] or None
    existing = command_replay(
        meter,
        idempotency_key,
        same=lambda first: first.meter_id == meter.pk and first.kind == kind,
    )
    if existing is not None:
        return existing
    now = timezone.now()
    supply = _supply_for_update(meter)  # serialises requests for one meter
    same = MeterCommand.objects.filter(
        meter=meter, status=MeterCommand.Status.PENDING, kind=kind
    ).first()
    if same is not None and idempotency_key is None:
        audit_record(
            actor=actor,
            action="meter_command.request_joined",
            obj=same,
            after={"reason": reason[:200], "requested_by": requested_by},
        )
        return same
    command, created = command_create(
        actor=actor,
        meter=meter,
        kind=kind,
        requested_by=requested_by,
        reason=reason,
        key=idempotency_key,
        at=now,
    )
    if not created:
        return command
    contradicting = (
        MeterCommand.objects.filter(meter=meter, status=MeterCommand.Status.PENDING)
        .exclude(pk=command.pk)
        .exclude(kind__in=MeterCommand.CREDIT_KINDS)
    )
    for old in contradicting.select_for_update():
        old.superseded_by = command
        old.save(update_fields=["superseded_by"])
        command_finish(
            old,
            actor=actor,
            status=MeterCommand.Status.SUPERSEDED,
            at=now,
            outcome=f"superseded by {command.command_id} before it was sent",
        )
    supply.desired = command.target
    supply.desired_at = now
    supply.save(update_fields=["desired", "desired_at"])
    return command


@transaction.atomic
def meter_command_claim(
    *, command_id: UUID, worker: str, now: datetime | None = None
) -> MeterCommand | None:
    """Take a due pending command for sending, atomically; None if it is not (or no longer) ours."""
    now = now or timezone.now()
    taken = MeterCommand.objects.filter(
        command_id=command_id, status=MeterCommand.Status.PENDING, next_attempt_at__lte=now
    ).update(
        status=MeterCommand.Status.SENT,
        attempts=F("attempts") + 1,
        sent_at=now,
        claimed_by=worker[:64],
    )
    if taken != 1:
        return None
    return MeterCommand.objects.select_related("meter__gateway").get(command_id=command_id)


def _open_command(command_id: UUID) -> MeterCommand | None:
    command = MeterCommand.objects.select_for_update().filter(command_id=command_id).first()
    if command is None or command.is_final:
        return None  # unknown, or finished already: a repeated result changes nothing
    return command


@transaction.atomic
def meter_command_acknowledged(
    *, command_id: UUID, at: datetime, state: str | None = None, actor: Actor = "gateway"
) -> MeterCommand | None:
    """The meter answered the command; it is confirmed only by a status read.

    The acknowledgement may be recorded after a poll's status read already confirmed the
    command (the gateway sends queued commands before recording earlier answers): then only
    its time is kept.
    """
    command = MeterCommand.objects.select_for_update().filter(command_id=command_id).first()
    if (
        command is not None
        and command.status == MeterCommand.Status.CONFIRMED
        and command.acknowledged_at is None
    ):
        command.acknowledged_at = at
        command.save(update_fields=["acknowledged_at"])
        return None  # the outcome stands; the answer's time is noted
    if command is None or command.is_final:
        return None  # unknown, or finished already: a repeated result changes nothing
    if command.status != MeterCommand.Status.SENT:
        return command
    command.status = MeterCommand.Status.ACKNOWLEDGED
    command.acknowledged_at = at
    command.outcome = f"acknowledged{f', meter reports {state}' if state else ''}"
    command.save(update_fields=["status", "acknowledged_at", "outcome"])
    return command


@transaction.atomic
def meter_command_not_done(
    *,
    command_id: UUID,
    at: datetime,
    error: str,
    refused: bool = False,
    actor: Actor = "gateway",
    backoff_base: timedelta = BACKOFF_BASE,
    max_attempts: int = MAX_ATTEMPTS,
) -> MeterCommand | None:
    """Sending did not (provably) work: retry after a backoff, or give up.

    ``refused``: the meter answered with an error, so it will not act; that fails at once.
    """
    command = _open_command(command_id)
    if command is None or command.status == MeterCommand.Status.PENDING:
        return command
    if refused:
        return command_finish(
            command,
            actor=actor,
            status=MeterCommand.Status.FAILED,
            at=at,
            outcome=f"refused by the meter: {error}",
        )
    if command.attempts >= max_attempts:
        never_acknowledged = command.acknowledged_at is None
        status = MeterCommand.Status.TIMED_OUT if never_acknowledged else MeterCommand.Status.FAILED
        return command_finish(
            command,
            actor=actor,
            status=status,
            at=at,
            outcome=f"gave up after {command.attempts} attempts: {error}",
        )
    command.status = MeterCommand.Status.PENDING
    command.next_attempt_at = at + backoff(command.attempts, backoff_base)
    command.outcome = f"attempt {command.attempts}: {error}; retrying"[:300]
    command.save(update_fields=["status", "next_attempt_at", "outcome"])
    return command


@transaction.atomic
def supply_state_reported(
    *, meter: Meter, reported: str, at: datetime, actor: Actor = "gateway"
) -> MeterCommand | None:
    """Record the relay/valve state a meter reported; confirm the command it proves done.

    The meter's most recently sent command is confirmed when the state matches its target,
    including one that timed out but did act.
    Returns the confirmed command, if any.
    """
    if reported not in Supply.values:
        raise ValidationError({"reported": f"unknown supply state {reported!r}"})
    supply = _supply_for_update(meter)
    if supply.reported_at is None or at >= supply.reported_at:
        supply.reported = reported
        supply.reported_at = at
        supply.save(update_fields=["reported", "reported_at"])
    latest = (
        MeterCommand.objects.select_for_update()
        .filter(meter=meter, attempts__gt=0, sent_at__isnull=False)
        .exclude(status=MeterCommand.Status.SUPERSEDED)
        .exclude(kind__in=MeterCommand.CREDIT_KINDS)
        .order_by("-sent_at", "-id")
        .first()
    )
    if (
        latest is None
        or latest.target != reported
        or latest.attempts == 0
        or latest.sent_at is None
    ):
        return None
    if at < latest.sent_at:
        return None  # a read from before the command was sent proves nothing
    if (
        latest.status in MeterCommand.OPEN_STATUSES
        or latest.status == MeterCommand.Status.TIMED_OUT
    ):
        how = (
            "status read after a timeout"
            if latest.status == MeterCommand.Status.TIMED_OUT
            else "status read"
        )
        return command_finish(
            latest,
            actor=actor,
            status=MeterCommand.Status.CONFIRMED,
            at=at,
            outcome=f"confirmed by {how}: supply {reported}",
        )
    return None


@transaction.atomic
def meter_commands_expire(
    *, now: datetime | None = None, max_age: timedelta = PENDING_MAX_AGE, actor: Actor = "gateway"
) -> int:
    """Time out commands that could not be delivered for ``max_age`` (their gateway stayed away)."""
    now = now or timezone.now()
    stale = MeterCommand.objects.select_for_update().filter(
        status=MeterCommand.Status.PENDING, created_at__lt=now - max_age
    )
    count = 0
    for command in stale:
        command_finish(
            command,
            actor=actor,
            status=MeterCommand.Status.TIMED_OUT,
            at=now,
            outcome=f"not delivered within {max_age}",
        )
        count += 1
    return count


@transaction.atomic
def meter_commands_recover_in_flight(
    *, at: datetime | None = None, actor: Actor = "gateway"
) -> int:
    """After a gateway restart: commands left sent/acknowledged go back to pending.

    Their outcome is unknown, so the retry reads the meter's status before sending again.
    """
    at = at or timezone.now()
    return MeterCommand.objects.filter(
        status__in=(MeterCommand.Status.SENT, MeterCommand.Status.ACKNOWLEDGED)
    ).update(
        status=MeterCommand.Status.PENDING,
        next_attempt_at=at,
        outcome="the gateway restarted while this was in flight; checking the meter first",
    )
