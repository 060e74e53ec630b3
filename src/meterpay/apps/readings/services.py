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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Model, OuterRef, Q, Subquery
from django.utils import timezone

from meterpay.apps.audit.services import audit_record
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.readings.models import GatewayLink, Interval, MeterLink, RegisterRead
from meterpay.core import intervals as rules

# The rules themselves live in meterpay.core.intervals (pure, shared with the batch path).
FOUR_PLACES = rules.FOUR_PLACES
ROLLOVER_ZONE = rules.ROLLOVER_ZONE
RESOLUTION_ALLOWANCE = rules.RESOLUTION_ALLOWANCE
GAP_FACTOR = rules.GAP_FACTOR
#: What a register shows after its maximum: 999999.99 + 0.01. Per model where it differs.
REGISTER_MODULUS_BY_MODEL: dict[str, Decimal] = {
    "DDSY1352": Decimal(1_000_000),
    "DTSY1352": Decimal(1_000_000),
}
DEFAULT_REGISTER_MODULUS = Decimal(1_000_000)
#: Physical ceiling of a meter, before its CT ratio: kW for electricity, m³/h for water.
MAX_DEMAND_BY_KIND: dict[str, Decimal] = {
    Meter.Kind.ELECTRICITY_1P: Decimal(25),  # 100 A x 230 V with headroom
    Meter.Kind.ELECTRICITY_3P: Decimal(80),  # 3 x 100 A x 230 V with headroom
    Meter.Kind.WATER: Decimal(5),  # DN15/DN20 overload flow
}
#: How often meters are expected to report (the gateway's default poll intervals).
EXPECTED_INTERVAL_BY_KIND: dict[str, timedelta] = {
    Meter.Kind.ELECTRICITY_1P: timedelta(minutes=15),
    Meter.Kind.ELECTRICITY_3P: timedelta(minutes=15),
    Meter.Kind.WATER: timedelta(hours=1),
}
#: Missed polls in a row after which a meter counts as offline.
OFFLINE_AFTER_MISSED_POLLS = 3

type Actor = Any


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    read: RegisterRead
    created: bool  # False: this (meter, read_at) was stored before; nothing changed
    interval: Interval | None


def register_modulus(meter: Meter) -> Decimal:
    return REGISTER_MODULUS_BY_MODEL.get(meter.model.upper(), DEFAULT_REGISTER_MODULUS)


def max_demand(meter: Meter, link: MeterLink | None) -> Decimal:
    if link is not None and link.max_demand is not None:
        return link.max_demand
    return MAX_DEMAND_BY_KIND.get(meter.kind, MAX_DEMAND_BY_KIND[Meter.Kind.ELECTRICITY_3P])


def _latest_good_read_before(meter: Meter, moment: datetime) -> RegisterRead | None:
    """The newest earlier read fit as a baseline: a first read, or one whose interval was booked."""
    return (
        RegisterRead.objects.filter(meter=meter, read_at__lt=moment)
        .filter(Q(interval__isnull=True) | Q(interval__booked=True))
        .order_by("-read_at")
        .first()
    )


def meter_rules(
    meter: Meter, link: MeterLink | None, expected: timedelta | None = None
) -> rules.MeterRules:
    """The interval rules' view of one meter (its register size, ceiling, CT ratio)."""
    return rules.MeterRules(
        modulus=register_modulus(meter),
        max_demand=max_demand(meter, link),
        expected=expected or EXPECTED_INTERVAL_BY_KIND.get(meter.kind, timedelta(minutes=15)),
        multiplier=meter.multiplier,
    )


def _point(read: RegisterRead) -> rules.Point:
    return rules.Point(read.read_at, read.total, read.pk)


def _interval_row(meter: Meter, derived: rules.Derived, start_id: int, end_id: int) -> Interval:
    return Interval(
        organisation_id=meter.organisation_id,
        meter_id=meter.pk,
        start_read_id=start_id,
        end_read_id=end_id,
        start_at=derived.start.read_at,
        end_at=derived.end.read_at,
        register_delta=derived.register_delta,
        multiplier=derived.multiplier,
        consumption=derived.consumption,
        status=derived.status.value,
        booked=derived.booked,
        note=derived.note,
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
    good = _latest_good_read_before(meter, read.read_at)
    derived = rules.interval_between(
        meter_rules(meter, link, expected),
        None if previous is None else _point(previous),
        None if good is None else _point(good),
        _point(read),
    )
    if derived is None:
        return None  # the meter's first read is its baseline
    start_id = derived.start.key
    assert isinstance(start_id, int)
    interval = _interval_row(meter, derived, start_id, read.pk)
    interval.save(force_insert=True)
    return interval


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


# --- batch ingestion (the gateway) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadInput:
    """One register read for :func:`register_reads_record_batch`."""

    meter_id: int
    read_at: datetime
    total: Decimal
    sharp: Decimal | None = None
    peak: Decimal | None = None
    flat: Decimal | None = None
    valley: Decimal | None = None
    source: str = RegisterRead.Source.POLL
    expected_interval: timedelta | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    stored: int  # new register reads
    duplicates: int  # (meter, read_at) already stored, or repeated in the batch
    intervals: int
    booked: int
    refused: tuple[tuple[ReadInput, str], ...]  # and why (the single path's ValidationError)


_REGISTERS = ("total", "sharp", "peak", "flat", "valley")


def _refusal(read: ReadInput, meter: Meter | None, now: datetime) -> str | None:
    """The single path's validation, as a message (``None``: the read is acceptable)."""
    if meter is None:
        return f"unknown meter {read.meter_id}"
    if read.source not in RegisterRead.Source.values:
        return f"unknown source {read.source!r}"
    if timezone.is_naive(read.read_at):
        return "read_at needs a time zone"
    if read.read_at > now + timedelta(minutes=10):
        return "read_at lies in the future"
    if meter.removed_on is not None and timezone.localdate(read.read_at) > meter.removed_on:
        return f"meter {meter.address} was removed on {meter.removed_on}"
    for name in _REGISTERS:
        try:
            _decimal_or_none(getattr(read, name), name)
        except ValidationError as exc:
            return "; ".join(exc.messages)
    return None


def _links_for_update(meters: dict[int, Meter]) -> dict[int, MeterLink]:
    """Lock the meters' links (creating missing ones), in meter order: no deadlocks."""
    ids = sorted(meters)
    missing = set(ids) - set(
        MeterLink.objects.filter(meter_id__in=ids).values_list("meter_id", flat=True)
    )
    if missing:
        MeterLink.objects.bulk_create(
            [
                MeterLink(meter_id=m, organisation_id=meters[m].organisation_id)
                for m in sorted(missing)
            ],
            ignore_conflicts=True,
        )
    locked = MeterLink.objects.select_for_update().filter(meter_id__in=ids).order_by("meter_id")
    return {link.meter_id: link for link in locked}


def _histories(meter_ids: list[int]) -> dict[int, rules.MeterHistory]:
    """Each meter's newest read and newest good read: one query for ids, one for values."""
    reads = RegisterRead.objects.filter(meter=OuterRef("pk")).order_by("-read_at").values("pk")[:1]
    good = (
        RegisterRead.objects.filter(meter=OuterRef("pk"))
        .filter(Q(interval__isnull=True) | Q(interval__booked=True))
        .order_by("-read_at")
        .values("pk")[:1]
    )
    rows = list(
        Meter.objects.filter(pk__in=meter_ids)
        .annotate(newest_id=Subquery(reads), good_id=Subquery(good))
        .values_list("pk", "newest_id", "good_id")
    )
    wanted = {i for _, newest, good_id in rows for i in (newest, good_id) if i is not None}
    points = {
        pk: rules.Point(read_at, total, pk)
        for pk, read_at, total in RegisterRead.objects.filter(pk__in=wanted).values_list(
            "pk", "read_at", "total"
        )
    }
    return {
        meter_id: rules.MeterHistory(
            None if newest is None else points[newest], None if good_id is None else points[good_id]
        )
        for meter_id, newest, good_id in rows
    }


def _stored_moments(meter_ids: list[int], moments: set[datetime]) -> set[tuple[int, datetime]]:
    if not moments:
        return set()
    found = RegisterRead.objects.filter(meter_id__in=meter_ids, read_at__in=moments)
    return set(found.values_list("meter_id", "read_at"))


_READ_COLUMNS = (
    "organisation_id", "meter_id", "read_at", "source", *_REGISTERS, "received_at",
)  # fmt: skip


def _insert_reads(rows: list[SimpleNamespace]) -> dict[tuple[int, datetime], int]:
    """Insert new reads; their ids by (meter, moment).

    The caller has locked the meters' links and left out the moments already stored, so no
    row conflicts. PostgreSQL: ids drawn from the sequence in one query, then COPY. Elsewhere:
    one prepared INSERT ... ON CONFLICT DO NOTHING, then the ids in one query.
    """
    if not rows:
        return {}
    if connection.vendor == "postgresql":
        table = RegisterRead._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, len(rows)],
            )
            new_ids = [pk for (pk,) in cursor.fetchall()]
        for row, pk in zip(rows, new_ids, strict=True):
            row.id = pk
        _pg_copy(table, ("id", *_READ_COLUMNS), rows)
        return {(row.meter_id, row.read_at): row.id for row in rows}
    _executemany_insert(RegisterRead, _READ_COLUMNS, rows, conflict=True)
    ids: dict[tuple[int, datetime], int] = {}
    found = RegisterRead.objects.filter(
        meter_id__in={r.meter_id for r in rows}, read_at__in={r.read_at for r in rows}
    ).values_list("pk", "meter_id", "read_at")
    for pk, meter_id, read_at in found:
        ids[(meter_id, read_at)] = pk
    return ids


def _pg_copy(table: str, columns: Sequence[str], rows: Sequence[SimpleNamespace]) -> None:
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
        with raw.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([getattr(row, c) for c in columns])


_INTERVAL_COLUMNS = (
    "organisation_id", "meter_id", "start_read_id", "end_read_id", "start_at", "end_at",
    "register_delta", "multiplier", "consumption", "status", "booked", "note",
)  # fmt: skip


def _executemany_insert(
    model: type[Model], names: Sequence[str], rows: Sequence[Any], *, conflict: bool = False
) -> None:
    """One prepared INSERT for many rows (values prepared as the ORM would)."""
    fields = [model._meta.get_field(name.removesuffix("_id")) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)  # type: ignore[union-attr]
    marks = ", ".join(["%s"] * len(fields))
    tail = " ON CONFLICT DO NOTHING" if conflict else ""
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks}){tail}"  # noqa: S608
    prepared = [
        [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]  # type: ignore[union-attr]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _save_links(links: Sequence[MeterLink]) -> None:
    """Write the link fields the batch changed, for all links in one statement (PostgreSQL) or
    one prepared UPDATE (elsewhere)."""
    fields = [MeterLink._meta.get_field(name) for name in _LINK_FIELDS]
    quote = connection.ops.quote_name
    table = quote(MeterLink._meta.db_table)
    if connection.vendor == "postgresql":
        types = {
            "online": "boolean", "missed_polls": "integer", "last_error": "varchar",
            "last_seen_at": "timestamptz", "offline_since": "timestamptz",
            "last_read_at": "timestamptz", "last_total": "numeric",
        }  # fmt: skip
        arrays = ", ".join(f"%s::{types[name]}[]" for name in _LINK_FIELDS)
        names = ", ".join(_LINK_FIELDS)
        assignments = ", ".join(f"{quote(name)} = u.{name}" for name in _LINK_FIELDS)
        sql = (
            f"UPDATE {table} SET {assignments} FROM unnest(%s::bigint[], {arrays})"  # noqa: S608
            f" AS u(link_id, {names}) WHERE {table}.id = u.link_id"
        )
        params = [[link.pk for link in links]]
        params += [[getattr(link, name) for link in links] for name in _LINK_FIELDS]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s"  # noqa: S608
    prepared = [
        [f.get_db_prep_save(getattr(link, f.attname), connection) for f in fields]  # type: ignore[union-attr]
        + [link.pk]
        for link in links
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _insert_intervals(rows: list[SimpleNamespace]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        _pg_copy(Interval._meta.db_table, _INTERVAL_COLUMNS, rows)
    else:
        _executemany_insert(Interval, _INTERVAL_COLUMNS, rows)


_LINK_FIELDS = ["online", "missed_polls", "last_error", "last_seen_at", "offline_since",
                "last_read_at", "last_total"]  # fmt: skip


@transaction.atomic
def register_reads_record_batch(
    *, reads: Sequence[ReadInput], actor: Actor = "gateway"
) -> BatchOutcome:
    """Store many register reads in one transaction and derive the intervals they close.

    The same rules as :func:`register_read_record` (``meterpay.core.intervals``), read by
    read in the given order: the intervals are exactly those that recording the reads one by
    one would give. A read the single path would refuse is skipped and reported in
    ``refused``; the others are stored. Polled and pushed reads are their own record; manual
    reads are also audited; meters coming back online are audited, as in the single path.
    """
    if not reads:
        return BatchOutcome(0, 0, 0, 0, ())
    meters = Meter.objects.only(
        "pk", "organisation_id", "kind", "model", "multiplier", "removed_on", "address"
    ).in_bulk({r.meter_id for r in reads})
    now = timezone.now()
    refused: list[tuple[ReadInput, str]] = []
    accepted: list[ReadInput] = []
    for read in reads:
        reason = _refusal(read, meters.get(read.meter_id), now)
        if reason is None:
            accepted.append(read)
        else:
            refused.append((read, reason))
    if not accepted:
        return BatchOutcome(0, 0, 0, 0, tuple(refused))
    meters = {m: meters[m] for m in {r.meter_id for r in accepted}}
    links = _links_for_update(meters)  # serialises with every other writer of these meters
    meter_ids = sorted(meters)
    stored = _stored_moments(meter_ids, {r.read_at for r in accepted})
    fresh: list[ReadInput] = []
    for read in accepted:
        moment = (read.meter_id, read.read_at)
        if moment not in stored:
            stored.add(moment)
            fresh.append(read)
    duplicates = len(accepted) - len(fresh)
    received_at = timezone.now()
    rows = [  # plain rows, not model instances: this path is about throughput
        SimpleNamespace(
            organisation_id=meters[r.meter_id].organisation_id,
            meter_id=r.meter_id,
            read_at=r.read_at,
            source=r.source,
            received_at=received_at,
            **{name: _decimal_or_none(getattr(r, name), name) for name in _REGISTERS},
        )
        for r in fresh
    ]
    # Derive first, from the meters' histories before this batch; new reads get their ids after
    # the insert (their key here is their position in the batch).
    histories = _histories(sorted({r.meter_id for r in fresh}))
    derived_all: list[tuple[Meter, rules.Derived]] = []
    for index, (row, read) in enumerate(zip(rows, fresh, strict=True)):
        meter, link = meters[read.meter_id], links[read.meter_id]
        history = histories.get(read.meter_id, rules.MeterHistory())
        point = rules.Point(row.read_at, row.total, ("new", index))
        histories[read.meter_id], derived = rules.derive(
            meter_rules(meter, link, read.expected_interval), history, point
        )
        if derived is not None:
            derived_all.append((meter, derived))
        _mark_seen(link, actor=actor, at=read.read_at)
        if link.last_read_at is None or read.read_at > link.last_read_at:
            link.last_read_at = read.read_at
            link.last_total = row.total
        if read.source == RegisterRead.Source.MANUAL:
            audit_record(
                actor=actor,
                action="meter.read_manual",
                obj=meter,
                after={"read_at": read.read_at.isoformat(), "total": str(row.total)},
            )
    ids = _insert_reads(rows)
    new_ids = [ids[(r.meter_id, r.read_at)] for r in rows]

    def resolve(point: rules.Point) -> int:
        key = point.key
        if isinstance(key, tuple):
            return new_ids[key[1]]
        assert isinstance(key, int)
        return key

    intervals = [
        SimpleNamespace(
            organisation_id=meter.organisation_id,
            meter_id=meter.pk,
            start_read_id=resolve(derived.start),
            end_read_id=resolve(derived.end),
            start_at=derived.start.read_at,
            end_at=derived.end.read_at,
            register_delta=derived.register_delta,
            multiplier=derived.multiplier,
            consumption=derived.consumption,
            status=derived.status.value,
            booked=derived.booked,
            note=derived.note,
        )
        for meter, derived in derived_all
    ]
    _insert_intervals(intervals)
    touched = [links[m] for m in sorted({r.meter_id for r in fresh})]
    if touched:
        _save_links(touched)
    booked = sum(1 for i in intervals if i.booked)
    return BatchOutcome(len(fresh), duplicates, len(intervals), booked, tuple(refused))
