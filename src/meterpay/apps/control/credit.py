"""Credit on the meter: downloads and energy refunds, the mirrored meter balance, discrepancies.

A meter-side account's money lives on its prepaid meter. The wallets app asks for a
**credit download** (add money) or an **energy refund** (take it back); both are
``MeterCommand`` rows in the same outbox as relay commands, but

* they are never superseded (two downloads add up) and go one after another per meter;
* each carries a **purchase number**: the meter's purchase count + 1, fixed when the command is
  first sent. The meter applies a purchase only under the next number, so a repeated frame is
  harmless, and a lost acknowledgement is recognised by reading the count: count = number means
  applied, count = number - 1 means not applied;
* the gateway reads the purchase count and the last purchase record before and after sending
  (:func:`meter_credit_checked`); only that read confirms a command.

Every read of a meter's remaining money and purchase count is mirrored on its
:class:`MeterBalance` (:func:`meter_balances_reported`). For meters whose credit the platform
manages, three rules flag a :class:`BalanceDiscrepancy`, with ``TOLERANCE_MINOR`` for the
meter's own rounding:

1. the purchase count differs from the platform's confirmed count (no credit command in flight);
2. the remaining money rose by more than the tolerance while the purchase count stayed;
3. the remaining money is above the ceiling: the lowest amount the meter reported since it was
   managed, plus every download confirmed since (a refund resets it to what it left).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.control.models import BalanceDiscrepancy, MeterBalance, MeterCommand
from meterpay.apps.control.services import (
    command_create,
    command_finish,
    command_meter_check,
    command_replay,
    command_requester_check,
    meter_command_not_done,
)
from meterpay.apps.meters.models import Gateway, Meter, Protocol

type Actor = Any

#: 0.10 CNY: a report this much above what the rules allow is flagged; less is the meter's
#: rounding of its money register (it truncates to 0.01 CNY as it deducts).
TOLERANCE_MINOR = 10


def _balance_for_update(meter: Meter) -> MeterBalance:
    row, _ = MeterBalance.objects.get_or_create(
        meter=meter, defaults={"organisation_id": meter.organisation_id}
    )
    return MeterBalance.objects.select_for_update().get(pk=row.pk)


@transaction.atomic
def meter_credit_request(
    *,
    actor: Actor,
    meter: Meter,
    kind: str,
    amount_minor: int,
    requested_by: str,
    idempotency_key: str,
    reason: str = "",
) -> MeterCommand:
    """Ask for a credit download (``amount_minor`` added) or an energy refund (left on it).

    Written in the caller's transaction; a replay of ``idempotency_key`` returns the first.
    """
    if kind not in MeterCommand.CREDIT_KINDS:
        raise ValidationError({"kind": f"not a credit command: {kind!r}"})
    command_requester_check(requested_by)
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise ValidationError({"amount": "amounts are integer minor units"})
    if amount_minor <= 0 if kind == MeterCommand.Kind.CREDIT_DOWNLOAD else amount_minor < 0:
        raise ValidationError({"amount": "a download adds a positive amount"})
    if meter.kind == Meter.Kind.WATER or meter.protocol != Protocol.DLT645:
        raise ValidationError({"meter": "credit goes to DL/T 645 prepaid electricity meters"})
    command_meter_check(meter)
    if meter.gateway.kind == Gateway.Kind.MQTT:
        raise ValidationError({"meter": "credit is downloaded over DTU and serial server links"})
    key = idempotency_key.strip()[:100]
    if not key:
        raise ValidationError({"idempotency_key": "a credit command needs an idempotency key"})
    existing = command_replay(
        meter,
        key,
        same=lambda first: (
            (first.meter_id, first.kind, first.amount_minor) == (meter.pk, kind, amount_minor)
        ),
    )
    if existing is not None:
        return existing
    balance = _balance_for_update(meter)  # serialises credit requests of one meter
    # Audited, and sent by the gateway at commit like every other command.
    command, created = command_create(
        actor=actor,
        meter=meter,
        kind=kind,
        requested_by=requested_by,
        reason=reason,
        key=key,
        at=timezone.now(),
        amount_minor=amount_minor,
    )
    if created and not balance.managed:
        balance.managed = True
        balance.save(update_fields=["managed"])
    return command


def _in_flight(meter_ids: Iterable[int]) -> set[int]:
    """The meters with a credit command that may have reached them unconfirmed (one query)."""
    return set(
        MeterCommand.objects.filter(
            meter_id__in=list(meter_ids),
            kind__in=MeterCommand.CREDIT_KINDS,
            status__in=MeterCommand.OPEN_STATUSES,
            purchase_number__isnull=False,
        ).values_list("meter_id", flat=True)
    )


def _flag(balance: MeterBalance, kind: str, detail: str, at: datetime) -> None:
    if BalanceDiscrepancy.objects.filter(
        meter_id=balance.meter_id, kind=kind, cleared_at__isnull=True
    ).exists():
        return  # one open flag per rule and meter
    flag = BalanceDiscrepancy.objects.create(
        organisation_id=balance.organisation_id,
        meter_id=balance.meter_id,
        kind=kind,
        detail=detail[:300],
        detected_at=at,
    )
    audit_record(
        actor="gateway", action="balance_discrepancy.flag", obj=flag, after={"detail": detail}
    )


def _flag_count(balance: MeterBalance, count: int, at: datetime) -> None:
    """The meter's purchase count is not the one the platform confirmed."""
    _flag(
        balance,
        BalanceDiscrepancy.Kind.PURCHASE_COUNT,
        f"the meter reports purchase count {count}, "
        f"the platform confirmed {balance.confirmed_count}",
        at,
    )


def _compare(
    balance: MeterBalance, *, remaining: int | None, count: int | None, at: datetime
) -> None:
    """Apply the three rules (module doc) to a new report of a managed meter (one with no
    credit command in flight: then the count or money may be moving, and its check decides)."""
    if (
        count is not None
        and balance.confirmed_count is not None
        and count != balance.confirmed_count
    ):
        _flag_count(balance, count, at)
    if remaining is None:
        return
    rose = (
        balance.remaining_minor is not None
        and remaining > balance.remaining_minor + TOLERANCE_MINOR
        and count == balance.purchase_count
    )
    if rose:
        _flag(
            balance,
            BalanceDiscrepancy.Kind.UNEXPLAINED_RISE,
            f"remaining money rose from {balance.remaining_minor} to {remaining} (minor units) "
            f"without a purchase",
            at,
        )
    elif (
        balance.credited_minor is not None and remaining > balance.credited_minor + TOLERANCE_MINOR
    ):
        _flag(
            balance,
            BalanceDiscrepancy.Kind.ABOVE_CREDITED,
            f"remaining money {remaining} is above the {balance.credited_minor} "
            f"the platform downloaded (minor units)",
            at,
        )
    if balance.credited_minor is None or remaining < balance.credited_minor:
        balance.credited_minor = remaining


def _confirm_late(balance: MeterBalance, count: int, at: datetime) -> None:
    """A download that timed out (never answered) but whose purchase number the meter now
    reports did land: confirm it, so its money goes back on the meter's side of the ledger."""
    if balance.confirmed_count is None or count != balance.confirmed_count + 1:
        return
    late = (
        MeterCommand.objects.select_for_update()
        .filter(
            meter_id=balance.meter_id,
            kind=MeterCommand.Kind.CREDIT_DOWNLOAD,
            status=MeterCommand.Status.TIMED_OUT,
            purchase_number=count,
            sent_at__lte=at,
        )
        .order_by("-id")
        .first()
    )
    if late is None:
        return
    _confirm(late, balance, before=None, after=None, at=at, actor="gateway", how="a later read")


@dataclass(frozen=True, slots=True)
class BalanceReport:
    meter_id: int
    remaining_minor: int | None
    purchase_count: int | None
    at: datetime


def _mirror(
    balance: MeterBalance,
    report: BalanceReport,
    *,
    judge: Callable[[MeterBalance, BalanceReport], None] | None = None,
) -> bool:
    """Apply a report to the mirror (not saved); False for an older read than the one mirrored.

    ``judge`` is called first, while the balance still holds the previous figures.
    """
    if balance.reported_at is not None and report.at < balance.reported_at:
        return False  # an older read than the one mirrored proves nothing new
    if judge is not None:
        judge(balance, report)
    if report.remaining_minor is not None:
        balance.remaining_minor = report.remaining_minor
    if report.purchase_count is not None:
        balance.purchase_count = report.purchase_count
    balance.reported_at = report.at
    return True


@transaction.atomic
def meter_balances_reported(*, reports: Sequence[BalanceReport]) -> int:
    """Mirror what meters report (latest value and time); flag discrepancies. Rows changed."""
    if not reports:
        return 0
    ids = {r.meter_id for r in reports}
    rows = {
        b.meter_id: b for b in MeterBalance.objects.select_for_update().filter(meter_id__in=ids)
    }
    missing = ids - rows.keys()
    if missing:
        orgs = dict(Meter.objects.filter(pk__in=missing).values_list("pk", "organisation_id"))
        MeterBalance.objects.bulk_create(
            [MeterBalance(meter_id=m, organisation_id=orgs[m]) for m in missing if m in orgs],
            ignore_conflicts=True,
        )
        rows = {
            b.meter_id: b for b in MeterBalance.objects.select_for_update().filter(meter_id__in=ids)
        }
    changed: dict[int, MeterBalance] = {}
    # Late confirmations below only finish timed-out commands: this set stays right.
    in_flight = _in_flight(meter_id for meter_id, b in rows.items() if b.managed)

    def judge(balance: MeterBalance, report: BalanceReport) -> None:
        if balance.managed:
            if report.purchase_count is not None:
                _confirm_late(balance, report.purchase_count, report.at)
            if balance.meter_id not in in_flight:
                _compare(
                    balance,
                    remaining=report.remaining_minor,
                    count=report.purchase_count,
                    at=report.at,
                )

    for report in sorted(reports, key=lambda r: r.at):
        balance = rows.get(report.meter_id)
        if balance is None or not _mirror(balance, report, judge=judge):
            continue
        changed[balance.pk] = balance
    MeterBalance.objects.bulk_update(
        list(changed.values()),
        ["remaining_minor", "purchase_count", "reported_at", "credited_minor"],
    )
    return len(changed)


@transaction.atomic
def meter_credit_checked(
    *,
    command_id: UUID,
    at: datetime,
    sent: bool,
    purchase_count: int | None,
    remaining_minor: int | None = None,
    remaining_before_minor: int | None = None,
    remaining_after_minor: int | None = None,
    error: str = "",
    refused: bool = False,
    actor: Actor = "gateway",
) -> int | None:
    """The gateway read the meter's purchase state before (``sent`` False) or after sending.

    Returns the purchase number to send, or None when there is nothing to send (the command
    was confirmed, failed, or waits for a retry). ``purchase_count`` None: the read failed.
    """
    command = (
        MeterCommand.objects.select_for_update()
        .select_related("meter")
        .filter(command_id=command_id)
        .first()
    )
    if command is None or command.is_final or not command.is_credit:
        return None
    balance = _balance_for_update(command.meter)
    if purchase_count is None:
        meter_command_not_done(
            command_id=command_id, at=at, error=error or "the purchase count could not be read"
        )
        return None
    report = BalanceReport(
        meter_id=balance.meter_id,
        remaining_minor=remaining_minor,
        purchase_count=purchase_count,
        at=at,
    )
    if _mirror(balance, report):
        balance.save(update_fields=["remaining_minor", "purchase_count", "reported_at"])
    number = command.purchase_number
    if number is None:
        expected = balance.confirmed_count
        if expected is not None and purchase_count != expected:
            _flag_count(balance, purchase_count, at)
            command_finish(
                command,
                actor=actor,
                status=MeterCommand.Status.FAILED,
                at=at,
                outcome=f"not sent: the meter's purchase count is {purchase_count}, "
                f"the platform's {expected}",
            )
            return None
        command.purchase_number = purchase_count + 1
        command.save(update_fields=["purchase_number"])
        return command.purchase_number
    if purchase_count == number:
        _confirm(
            command,
            balance,
            before=remaining_before_minor,
            after=remaining_after_minor,
            at=at,
            actor=actor,
        )
        return None
    if purchase_count == number - 1:
        if not sent:
            return number  # a retry: the previous attempt did not reach the meter
        meter_command_not_done(
            command_id=command_id,
            at=at,
            error=error or f"the purchase count stayed at {purchase_count}",
            refused=refused,
        )
        return None
    command_finish(
        command,
        actor=actor,
        status=MeterCommand.Status.FAILED,
        at=at,
        outcome=f"the meter's purchase count is {purchase_count}, "
        f"expected {number - 1} or {number}",
    )
    return None


def _confirm(
    command: MeterCommand,
    balance: MeterBalance,
    *,
    before: int | None,
    after: int | None,
    at: datetime,
    actor: Actor,
    how: str = "the purchase count",
) -> None:
    assert command.purchase_number is not None and command.amount_minor is not None
    if command.kind == MeterCommand.Kind.CREDIT_DOWNLOAD:
        confirmed = command.amount_minor
        if balance.credited_minor is not None:
            balance.credited_minor += confirmed
        elif after is not None:
            balance.credited_minor = after
    else:
        if before is None or after is None:
            raise ValidationError({"record": "an energy refund is confirmed by its record"})
        confirmed = before - after
        balance.credited_minor = after
    balance.confirmed_count = command.purchase_number
    balance.save(update_fields=["confirmed_count", "credited_minor"])
    command.confirmed_amount_minor = confirmed
    command.save(update_fields=["confirmed_amount_minor"])
    moved = "added" if command.kind == MeterCommand.Kind.CREDIT_DOWNLOAD else "taken back"
    command_finish(
        command,
        actor=actor,
        status=MeterCommand.Status.CONFIRMED,
        at=at,
        outcome=f"confirmed by {how} {command.purchase_number}: {confirmed} (minor units) {moved}",
    )


@transaction.atomic
def discrepancy_clear(
    *, actor: Actor, discrepancy: BalanceDiscrepancy, note: str
) -> BalanceDiscrepancy:
    """An operator looked into a flag. Clearing accepts the meter's figures as the new baseline."""
    flag = BalanceDiscrepancy.objects.select_for_update().get(pk=discrepancy.pk)
    if flag.cleared_at is not None:
        return flag
    if not note.strip():
        raise ValidationError({"note": "say what was found"})
    balance = _balance_for_update(flag.meter)
    before = {"confirmed_count": balance.confirmed_count, "credited_minor": balance.credited_minor}
    if flag.kind == BalanceDiscrepancy.Kind.PURCHASE_COUNT and balance.purchase_count is not None:
        balance.confirmed_count = balance.purchase_count
    if balance.remaining_minor is not None and flag.kind != BalanceDiscrepancy.Kind.PURCHASE_COUNT:
        balance.credited_minor = max(balance.credited_minor or 0, balance.remaining_minor)
    balance.save(update_fields=["confirmed_count", "credited_minor"])
    flag.cleared_at = timezone.now()
    flag.cleared_by = actor if isinstance(actor, models.Model) else None
    flag.clear_note = note.strip()[:200]
    flag.save(update_fields=["cleared_at", "cleared_by", "clear_note"])
    audit_record(
        actor=actor,
        action="balance_discrepancy.clear",
        obj=flag,
        before=before,
        after={
            "note": flag.clear_note,
            "confirmed_count": balance.confirmed_count,
            "credited_minor": balance.credited_minor,
        },
    )
    return flag
