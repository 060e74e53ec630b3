"""Writes of the readings pipeline: register reads in, interval consumption and link state out.

Rules (``docs/readings.md`` tells the whole story):

- a reading is stored once per (meter, read_at); a repeat is a no-op
- an interval is derived only when a read is the meter's newest, against the latest *good*
  read of the *same* meter (a replacement meter starts from its own first read)
- rollover past the register maximum is booked; negative deltas and spikes above the meter's
  maximum demand are stored flagged, not booked; spans longer than the poll interval are
  booked as a flagged gap (spread evenly over the span by the selectors)
- consumption = register delta x the meter's CT ratio / multiplier
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.readings.models import GatewayLink, Interval, MeterLink, RegisterRead

FOUR_PLACES = Decimal("0.0001")
#: What a register shows after its maximum: 999999.99 + 0.01. Per model where it differs.
REGISTER_MODULUS_BY_MODEL: dict[str, Decimal] = {
    "DDSY1352": Decimal(1_000_000),
    "DTSY1352": Decimal(1_000_000),
}
DEFAULT_REGISTER_MODULUS = Decimal(1_000_000)
#: A rollover is only believed when the previous value was in the top tenth of the register.
ROLLOVER_ZONE = Decimal("0.9")
#: Physical ceiling of a meter, before its CT ratio: kW for electricity, m³/h for water.
MAX_DEMAND_BY_KIND: dict[str, Decimal] = {
    Meter.Kind.ELECTRICITY_1P: Decimal(25),  # 100 A x 230 V with headroom
    Meter.Kind.ELECTRICITY_3P: Decimal(80),  # 3 x 100 A x 230 V with headroom
    Meter.Kind.WATER: Decimal(5),  # DN15/DN20 overload flow
}
#: Registers are truncated to 0.01; a delta this small is never a spike.
RESOLUTION_ALLOWANCE = Decimal("0.02")
#: How often meters are expected to report (the gateway's default poll intervals).
EXPECTED_INTERVAL_BY_KIND: dict[str, timedelta] = {
    Meter.Kind.ELECTRICITY_1P: timedelta(minutes=15),
    Meter.Kind.ELECTRICITY_3P: timedelta(minutes=15),
    Meter.Kind.WATER: timedelta(hours=1),
}
#: A span longer than this many expected intervals means at least one read is missing.
GAP_FACTOR = Decimal("1.5")
#: Missed polls in a row after which a meter counts as offline.
OFFLINE_AFTER_MISSED_POLLS = 3

type Actor = Any


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    read: RegisterRead
    created: bool  # False: this (meter, read_at) was stored before; nothing changed
    interval: Interval | None


@dataclass(frozen=True, slots=True)
class _Verdict:
    status: str
    delta: Decimal
    note: str

    @property
    def booked(self) -> bool:
        return self.status in Interval.BOOKED_STATUSES


def register_modulus(meter: Meter) -> Decimal:
    return REGISTER_MODULUS_BY_MODEL.get(meter.model.upper(), DEFAULT_REGISTER_MODULUS)


def max_demand(meter: Meter, link: MeterLink | None) -> Decimal:
    if link is not None and link.max_demand is not None:
        return link.max_demand
    return MAX_DEMAND_BY_KIND.get(meter.kind, MAX_DEMAND_BY_KIND[Meter.Kind.ELECTRICITY_3P])


def _judge(
    meter: Meter, link: MeterLink, start: RegisterRead, end: RegisterRead, expected: timedelta
) -> _Verdict:
    span = end.read_at - start.read_at
    hours = Decimal(span.total_seconds()) / 3600
    limit = max_demand(meter, link) * hours + RESOLUTION_ALLOWANCE
    delta = end.total - start.total
    if delta < 0:
        modulus = register_modulus(meter)
        rolled = modulus - start.total + end.total
        if start.total >= modulus * ROLLOVER_ZONE and rolled <= limit:
            return _Verdict(Interval.Status.ROLLOVER, rolled, f"rolled over at {modulus}")
        return _Verdict(
            Interval.Status.NEGATIVE, delta, f"register fell from {start.total} to {end.total}"
        )
    if delta > limit:
        rate = (delta / hours).quantize(Decimal("0.01")) if hours else delta
        return _Verdict(Interval.Status.SPIKE, delta, f"{rate} per hour exceeds the maximum demand")
    if Decimal(span.total_seconds()) > Decimal(expected.total_seconds()) * GAP_FACTOR:
        return _Verdict(
            Interval.Status.GAP, delta, f"{span} without reads; spread evenly over the span"
        )
    return _Verdict(Interval.Status.OK, delta, "")


def _latest_good_read_before(meter: Meter, moment: datetime) -> RegisterRead | None:
    """The newest earlier read fit as a baseline: a first read, or one whose interval was booked."""
    return (
        RegisterRead.objects.filter(meter=meter, read_at__lt=moment)
        .filter(Q(interval__isnull=True) | Q(interval__booked=True))
        .order_by("-read_at")
        .first()
    )


def _derive_interval(
    meter: Meter, link: MeterLink, read: RegisterRead, expected: timedelta
) -> Interval | None:
    if RegisterRead.objects.filter(meter=meter, read_at__gt=read.read_at).exists():
        return None  # a late arrival: stored, but intervals are only derived forwards
    previous = (
        RegisterRead.objects.filter(meter=meter, read_at__lt=read.read_at)
        .order_by("-read_at")
        .first()
    )
    if previous is None:
        return None  # the meter's first read is its baseline
    baseline = _latest_good_read_before(meter, read.read_at) or previous
    start, verdict = baseline, _judge(meter, link, baseline, read, expected)
    if not verdict.booked and previous.pk != baseline.pk:
        # The previous read was flagged. If this read agrees with it, the jump was real
        # (a register reset, a glitch-free correction): carry on from the flagged read.
        retry = _judge(meter, link, previous, read, expected)
        if retry.booked:
            start, verdict = (
                previous,
                _Verdict(retry.status, retry.delta, "follows an accepted jump"),
            )
    consumption = (verdict.delta * meter.multiplier).quantize(FOUR_PLACES)
    return Interval.objects.create(
        organisation_id=meter.organisation_id,
        meter=meter,
        start_read=start,
        end_read=read,
        start_at=start.read_at,
        end_at=read.read_at,
        register_delta=verdict.delta.quantize(FOUR_PLACES),
        multiplier=meter.multiplier,
        consumption=consumption,
        status=verdict.status,
        booked=verdict.booked,
        note=verdict.note[:200],
    )


def _link_for_update(meter: Meter) -> MeterLink:
    link, _ = MeterLink.objects.get_or_create(
        meter=meter, defaults={"organisation_id": meter.organisation_id}
    )
    return MeterLink.objects.select_for_update().get(pk=link.pk)


def _mark_seen(link: MeterLink, *, actor: Actor, at: datetime) -> None:
    was_offline = link.online is False
    link.online = True
    link.missed_polls = 0
    link.last_error = ""
    if link.last_seen_at is None or at > link.last_seen_at:
        link.last_seen_at = at
    if was_offline:
        offline_since = link.offline_since
        link.offline_since = None
        audit_record(
            actor=actor,
            action="meter.online",
            obj=link.meter,
            before={"offline_since": offline_since.isoformat() if offline_since else None},
            after={"online_at": at.isoformat()},
        )


def _decimal_or_none(value: Decimal | None, name: str) -> Decimal | None:
    if value is None:
        return None
    value = Decimal(value)
    if not value.is_finite() or value < 0:
        raise ValidationError({name: f"{name} must be a non-negative number, got {value}"})
    return value.quantize(FOUR_PLACES)


@transaction.atomic
def register_read_record(
    *,
    meter: Meter,
    read_at: datetime,
    source: str,
    total: Decimal,
    sharp: Decimal | None = None,
    peak: Decimal | None = None,
    flat: Decimal | None = None,
    valley: Decimal | None = None,
    actor: Actor = "gateway",
    expected_interval: timedelta | None = None,
) -> ReadOutcome:
    """Store one register read (once per moment) and derive the interval it closes.

    Polled and pushed reads are their own record; manual reads are also audited.
    """
    if source not in RegisterRead.Source.values:
        raise ValidationError({"source": f"unknown source {source!r}"})
    if timezone.is_naive(read_at):
        raise ValidationError({"read_at": "read_at needs a time zone"})
    if read_at > timezone.now() + timedelta(minutes=10):
        raise ValidationError({"read_at": "read_at lies in the future"})
    if meter.removed_on is not None and timezone.localdate(read_at) > meter.removed_on:
        raise ValidationError(
            {"read_at": f"meter {meter.address} was removed on {meter.removed_on}"}
        )
    registers = {
        "total": _decimal_or_none(total, "total"),
        "sharp": _decimal_or_none(sharp, "sharp"),
        "peak": _decimal_or_none(peak, "peak"),
        "flat": _decimal_or_none(flat, "flat"),
        "valley": _decimal_or_none(valley, "valley"),
    }
    link = _link_for_update(meter)  # serialises reads of one meter
    read, created = RegisterRead.objects.get_or_create(
        meter=meter,
        read_at=read_at,
        defaults={"organisation_id": meter.organisation_id, "source": source, **registers},
    )
    if not created:
        return ReadOutcome(read, False, None)
    expected = expected_interval or EXPECTED_INTERVAL_BY_KIND.get(meter.kind, timedelta(minutes=15))
    interval = _derive_interval(meter, link, read, expected)
    _mark_seen(link, actor=actor, at=read_at)
    if link.last_read_at is None or read_at > link.last_read_at:
        link.last_read_at = read_at
        link.last_total = read.total
    link.save()
    if source == RegisterRead.Source.MANUAL:
        audit_record(
            actor=actor,
            action="meter.read_manual",
            obj=meter,
            after={"read_at": read_at.isoformat(), "total": str(read.total)},
        )
    return ReadOutcome(read, True, interval)


@transaction.atomic
def meter_link_seen(*, meter: Meter, at: datetime, actor: Actor = "gateway") -> MeterLink:
    """The meter answered (e.g. a status read for a command) without a register read."""
    link = _link_for_update(meter)
    _mark_seen(link, actor=actor, at=at)
    link.save()
    return link


@transaction.atomic
def meter_link_poll_failed(
    *,
    meter: Meter,
    at: datetime,
    error: str,
    actor: Actor = "gateway",
    offline_after: int = OFFLINE_AFTER_MISSED_POLLS,
) -> MeterLink:
    """Count a missed poll; ``offline_after`` in a row: offline since the last contact."""
    link = _link_for_update(meter)
    link.missed_polls += 1
    link.last_error = error[:200]
    if link.missed_polls >= offline_after and link.online is not False:
        link.online = False
        link.offline_since = link.last_seen_at or at
        audit_record(
            actor=actor,
            action="meter.offline",
            obj=meter,
            after={
                "offline_since": link.offline_since.isoformat(),
                "missed_polls": link.missed_polls,
                "error": link.last_error,
            },
        )
    link.save()
    return link


@transaction.atomic
def meter_link_set_max_demand(
    *, actor: Actor, meter: Meter, max_demand: Decimal | None
) -> MeterLink:
    if max_demand is not None and max_demand <= 0:
        raise ValidationError({"max_demand": "the maximum demand must be positive"})
    link = _link_for_update(meter)
    before = {"max_demand": None if link.max_demand is None else str(link.max_demand)}
    link.max_demand = max_demand
    link.save(update_fields=["max_demand"])
    audit_record(
        actor=actor,
        action="meter.max_demand",
        obj=meter,
        before=before,
        after={"max_demand": None if max_demand is None else str(max_demand)},
    )
    return link


@transaction.atomic
def gateway_link_connected(
    *, gateway: Gateway, at: datetime, attributes: dict[str, str], actor: Actor = "gateway"
) -> GatewayLink:
    link, _ = GatewayLink.objects.select_for_update().get_or_create(
        gateway=gateway, defaults={"organisation_id": gateway.organisation_id}
    )
    if not link.online:
        audit_record(
            actor=actor, action="gateway.online", obj=gateway, after={"attributes": attributes}
        )
        link.since = at
    link.online = True
    link.attributes = dict(attributes)
    link.save()
    Gateway.objects.filter(pk=gateway.pk).update(last_seen_at=at)
    return link


@transaction.atomic
def gateway_link_seen(*, gateway: Gateway, at: datetime) -> None:
    Gateway.objects.filter(pk=gateway.pk).update(last_seen_at=at)


@transaction.atomic
def gateway_link_disconnected(
    *, gateway: Gateway, at: datetime, reason: str, actor: Actor = "gateway"
) -> GatewayLink:
    link, _ = GatewayLink.objects.select_for_update().get_or_create(
        gateway=gateway, defaults={"organisation_id": gateway.organisation_id}
    )
    if link.online:
        audit_record(
            actor=actor, action="gateway.offline", obj=gateway, after={"reason": reason[:200]}
        )
        link.since = at
    link.online = False
    link.last_reason = reason[:200]
    link.save()
    return link
