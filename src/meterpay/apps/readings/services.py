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
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import psycopg
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


def _modulus(model: str) -> Decimal:
    return REGISTER_MODULUS_BY_MODEL.get(model.upper(), DEFAULT_REGISTER_MODULUS)


def _ceiling(kind: str, override: Decimal | None) -> Decimal:
    if override is not None:
        return override
    return MAX_DEMAND_BY_KIND.get(kind, MAX_DEMAND_BY_KIND[Meter.Kind.ELECTRICITY_3P])


def register_modulus(meter: Meter) -> Decimal:
    return _modulus(meter.model)


def max_demand(meter: Meter, link: MeterLink | None) -> Decimal:
    return _ceiling(meter.kind, None if link is None else link.max_demand)


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
    override = None if link is None else link.max_demand
    return _rules(meter.model, meter.kind, meter.multiplier, override, expected)


@lru_cache(maxsize=4096)  # few distinct meter set-ups; a batch asks once per reading
def _rules(
    model: str,
    kind: str,
    multiplier: int,
    max_demand_override: Decimal | None,
    expected: timedelta | None,
) -> rules.MeterRules:
    return rules.MeterRules(
        modulus=_modulus(model),
        max_demand=_ceiling(kind, max_demand_override),
        expected=expected or EXPECTED_INTERVAL_BY_KIND.get(kind, timedelta(minutes=15)),
        multiplier=multiplier,
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
    """The meter's link, locked (created first, with the history its reads give, if missing)."""
    if not MeterLink.objects.filter(meter=meter).exists():
        link = MeterLink(meter=meter, organisation_id=meter.organisation_id)
        _set_history(link, _histories([meter.pk]).get(meter.pk, _NO_HISTORY))
        MeterLink.objects.bulk_create([link], ignore_conflicts=True)
    return MeterLink.objects.select_for_update().get(meter=meter)


def _mark_seen(link: MeterLink | _MeterState, *, actor: Actor, at: datetime) -> bool:
    """The meter answered at ``at``: online, no missed polls (coming back is audited).

    Whether its online state, missed polls or last error changed (a batch writes those back
    only then).
    """
    changed = link.online is not True or bool(link.missed_polls) or bool(link.last_error)
    if link.online is False:
        offline_since = link.offline_since
        link.offline_since = None
        audit_record(
            actor=actor,
            action="meter.online",
            obj=Meter.objects.get(pk=link.meter_id),
            before={"offline_since": offline_since.isoformat() if offline_since else None},
            after={"online_at": at.isoformat()},
        )
    if changed:
        link.online = True
        link.missed_polls = 0
        link.last_error = ""
    if link.last_seen_at is None or at > link.last_seen_at:
        link.last_seen_at = at
    return changed


def _decimal_or_none(value: Decimal | None, name: str) -> Decimal | None:
    if value is None:
        return None
    if type(value) is not Decimal:
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
    # The link's copy of the history, for the batch path: the same fold the batch path makes.
    history, _ = rules.derive(meter_rules(meter, link, expected), _history_of(link), _point(read))
    _set_history(link, history)
    _mark_seen(link, actor=actor, at=read_at)
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


class ReadInput(NamedTuple):
    """One register read for :func:`register_reads_record_batch` (a tuple: the gateway makes
    thousands a second)."""

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
    #: Meters of an account with new booked intervals: what deduction has to look at.
    deductible_meters: tuple[int, ...] = ()


_REGISTERS = ("total", "sharp", "peak", "flat", "valley")


_NO_HISTORY = rules.MeterHistory()


class _MeterState:
    """One meter of a batch: what the checks and rules need, its (locked) link, its history.

    A plain class with slots: a batch makes one for each of up to thousands of meters.
    """

    __slots__ = (
        "account_id",
        "address",
        "good_read_at",
        "good_read_id",
        "good_total",
        "history",
        "interval_rules",
        "kind",
        "last_error",
        "last_read_at",
        "last_read_id",
        "last_seen_at",
        "last_total",
        "link_id",
        "max_demand",
        "meter_id",
        "missed_polls",
        "model",
        "multiplier",
        "offline_since",
        "online",
        "organisation_id",
        "removed_on",
        "rules_expected",
        "status_changed",
    )  # fmt: skip

    # the meter (_METER_COLUMNS)
    meter_id: int
    organisation_id: int
    kind: str
    model: str
    multiplier: int
    removed_on: date | None
    address: str | None  # PostgreSQL loads it only for a removed meter (its refusals say it)
    account_id: int | None
    # the link (_LINK_STATE), set by _load_link
    link_id: int
    online: bool | None
    last_seen_at: datetime | None
    offline_since: datetime | None
    missed_polls: int
    last_error: str
    last_read_id: int | None
    last_read_at: datetime | None
    last_total: Decimal | None
    good_read_id: int | None
    good_read_at: datetime | None
    good_total: Decimal | None
    max_demand: Decimal | None
    history: rules.MeterHistory
    #: The rules for the expected interval of the batch's reads (asked once per meter).
    interval_rules: rules.MeterRules | None
    rules_expected: timedelta | None
    #: Whether the batch changed the link's online state, missed polls or last error.
    status_changed: bool

    def __init__(
        self,
        meter_id: int,
        organisation_id: int,
        kind: str,
        model: str,
        multiplier: int,
        removed_on: date | None,
        address: str | None,
        account_id: int | None,
    ) -> None:
        self.meter_id, self.organisation_id, self.kind, self.model = (
            meter_id, organisation_id, kind, model
        )  # fmt: skip
        self.multiplier, self.removed_on, self.address, self.account_id = (
            multiplier, removed_on, address, account_id
        )  # fmt: skip
        self.history = _NO_HISTORY
        self.interval_rules = self.rules_expected = None
        self.status_changed = False


_METER_COLUMNS = ("pk", "organisation_id", "kind", "model", "multiplier", "removed_on", "address",
                  "account_id")  # fmt: skip
#: The link columns a batch loads, in _MeterState order (the history columns in the middle).
_LINK_STATE = ("online", "last_seen_at", "offline_since", "missed_polls", "last_error",
               "last_read_id", "last_read_at", "last_total", "good_read_id", "good_read_at",
               "good_total", "max_demand")  # fmt: skip
#: What every batch writes back: when the meter was seen and its history.
_LINK_SEEN = ("last_seen_at", "last_read_id", "last_read_at", "last_total", "good_read_id",
              "good_read_at", "good_total")  # fmt: skip
#: What a batch writes back too when a meter came back or had missed polls.
_LINK_STATUS = ("online", "missed_polls", "last_error", "offline_since")
_PG_TYPES = {
    "online": "boolean", "missed_polls": "integer", "last_error": "varchar",
    "offline_since": "timestamptz", "last_read_id": "bigint",
    "last_read_at": "timestamptz", "last_total": "numeric", "good_read_id": "bigint",
    "good_read_at": "timestamptz", "good_total": "numeric",
}  # fmt: skip


def _history_of(link: MeterLink | _MeterState) -> rules.MeterHistory:
    """The interval rules' view of a meter's past, from its link."""
    newest = (
        None
        if link.last_read_id is None or link.last_read_at is None or link.last_total is None
        else rules.Point(link.last_read_at, link.last_total, link.last_read_id)
    )
    if newest is not None and link.good_read_id == newest.key:
        return rules.MeterHistory(newest, newest)
    if link.good_read_id is None or link.good_read_at is None or link.good_total is None:
        return rules.MeterHistory(newest, None)
    return rules.MeterHistory(
        newest, rules.Point(link.good_read_at, link.good_total, link.good_read_id)
    )


def _set_history(link: MeterLink | _MeterState, history: rules.MeterHistory) -> None:
    """Keep a history on the link (its points' keys are read ids)."""
    newest, good = history.newest, history.good
    if newest is not None:
        assert isinstance(newest.key, int)
        link.last_read_at, link.last_total, link.last_read_id = newest
    if good is not None:
        assert isinstance(good.key, int)
        link.good_read_at, link.good_total, link.good_read_id = good


_SOURCES = frozenset(RegisterRead.Source.values)
type _Registers = tuple[Decimal, Decimal | None, Decimal | None, Decimal | None, Decimal | None]


def _checked(read: ReadInput, meter: _MeterState | None, latest: datetime) -> _Registers | str:
    """The single path's validation: the registers as stored, or why the read is refused."""
    if meter is None:
        return f"unknown meter {read.meter_id}"
    if read.source not in _SOURCES:
        return f"unknown source {read.source!r}"
    if read.read_at.utcoffset() is None:
        return "read_at needs a time zone"
    if read.read_at > latest:
        return "read_at lies in the future"
    if meter.removed_on is not None and timezone.localdate(read.read_at) > meter.removed_on:
        return f"meter {meter.address} was removed on {meter.removed_on}"
    try:
        total = _decimal_or_none(read.total, "total")
        if total is None:
            return "total must be a non-negative number, got None"
        if read.sharp is None and read.peak is None and read.flat is None and read.valley is None:
            return (total, None, None, None, None)  # most meters: one register
        return (
            total,
            _decimal_or_none(read.sharp, "sharp"),
            _decimal_or_none(read.peak, "peak"),
            _decimal_or_none(read.flat, "flat"),
            _decimal_or_none(read.valley, "valley"),
        )
    except ValidationError as exc:
        return "; ".join(exc.messages)


def _int_array(values: Sequence[int]) -> str:
    """An integer array as one PostgreSQL literal: far cheaper to send than a list adapted
    value by value."""
    return "{" + ",".join(map(str, values)) + "}"


def _array_literal(values: Sequence[object]) -> str:
    """Any values (None, bool, numbers, datetimes, text) as one PostgreSQL array literal, for
    a ``%s::type[]`` parameter: NULL for None, text quoted; booleans, numbers and ISO times
    hold no character an array literal would need quoted."""
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
        elif value is True or value is False:
            elements.append("t" if value else "f")
        elif isinstance(value, str):
            elements.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, datetime):
            elements.append(value.isoformat())
        else:
            elements.append(str(value))
    return "{" + ",".join(elements) + "}"


def _pg_rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows in PostgreSQL's binary format, loaded by psycopg's own C loaders (Django's
    connection asks for text and loads every time stamp in Python): on the batch path's
    thousand-row queries that is a millisecond a query."""
    with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as binary:
        binary.execute(sql, params, binary=True)
        return binary.fetchall()


def _pg_execute(sql: str, params: Sequence[Any]) -> None:
    """A statement with its parameters sent apart from it (bound by the server): Django's
    connection binds on the client, quoting every character of a thousand-value array literal
    into the statement."""
    with connection.cursor() as cursor, psycopg.Cursor(cursor.cursor.connection) as bound:
        bound.execute(sql, params)


_PG_METER_COLUMNS = "m.id, m.organisation_id, m.kind, m.model, m.multiplier, m.removed_on," \
    " CASE WHEN m.removed_on IS NOT NULL THEN m.address END, m.account_id"  # fmt: skip
_PG_LINK_STATE = (
    "l.online", "NULL::timestamptz", "l.offline_since", "l.missed_polls", "l.last_error",
    "l.last_read_id", "l.last_read_at", "l.last_total", "l.good_read_id",
    "CASE WHEN l.good_read_id <> l.last_read_id THEN l.good_read_at END",
    "CASE WHEN l.good_read_id <> l.last_read_id THEN l.good_total END", "l.max_demand",
)  # fmt: skip  # in _LINK_STATE order


def _meters_of(meter_ids: set[int]) -> dict[int, _MeterState]:
    if connection.vendor == "postgresql":
        table = Meter._meta.db_table
        sql = f"SELECT {_PG_METER_COLUMNS} FROM {table} m WHERE m.id = ANY(%s::bigint[])"  # noqa: S608
        rows = _pg_rows(sql, [_int_array(sorted(meter_ids))])
    else:
        rows = list(Meter.objects.filter(pk__in=meter_ids).values_list(*_METER_COLUMNS))
    return {row[0]: _MeterState(*row) for row in rows}


def _load_link(state: _MeterState, values: Sequence[Any]) -> None:
    """The link's columns (_LINK_STATE, after its id) and the history they hold."""
    (
        state.link_id, state.online, state.last_seen_at, state.offline_since,
        state.missed_polls, state.last_error, state.last_read_id, state.last_read_at,
        state.last_total, state.good_read_id, state.good_read_at, state.good_total,
        state.max_demand,
    ) = values  # fmt: skip  # at once: thousands of rows
    state.history = _history_of(state)


def _meters_locked(meter_ids: set[int]) -> dict[int, _MeterState]:
    """The batch's meters, with their links locked in meter order (every writer of a meter's
    reads takes this lock, as in the single path) and loaded with the meters' history.

    PostgreSQL: one statement for meters and links. A meter without a link yet (its first
    contact) gets one, with the history its reads give; those are locked after the others,
    out of meter order: two writers creating links for the same meters at once could
    deadlock, which PostgreSQL breaks by failing one of them. An unknown meter is left out.
    """
    if connection.vendor != "postgresql":
        states = _meters_of(meter_ids)
        _links_create(states, set(states))
        for meter_id, *values in _orm_locked(sorted(states)):
            _load_link(states[meter_id], values)
        return states
    # FOR UPDATE returns each link as the writer before us committed it. Fewer values to
    # load: last_seen_at is worked out when the links are written, a good read that is the
    # newest comes once, offline_since is NULL for a meter online.
    sql = (
        f"SELECT {_PG_METER_COLUMNS}, l.id, {', '.join(_PG_LINK_STATE)}"  # noqa: S608
        f" FROM {MeterLink._meta.db_table} l JOIN {Meter._meta.db_table} m ON m.id = l.meter_id"
        " WHERE l.meter_id = ANY(%s::bigint[]) ORDER BY l.meter_id FOR UPDATE OF l"
    )
    width = len(_METER_COLUMNS)
    states: dict[int, _MeterState] = {}
    rows = _pg_rows(sql, [_int_array(sorted(meter_ids))])
    if len(rows) < len(meter_ids):
        missing = _meters_of(meter_ids - {row[0] for row in rows})
        if missing:
            _links_create(missing, set(missing))
            rows += _pg_rows(sql, [_int_array(sorted(missing))])
    for row in rows:
        state = states[row[0]] = _MeterState(*row[:width])
        _load_link(state, row[width:])
    return states


def _orm_locked(ids: list[int]) -> list[tuple[Any, ...]]:
    locked = MeterLink.objects.select_for_update().filter(meter_id__in=ids).order_by("meter_id")
    return list(locked.values_list("meter_id", "pk", *_LINK_STATE))


def _links_create(states: dict[int, _MeterState], meter_ids: set[int]) -> None:
    """Links for meters that have none, with the histories their reads give."""
    missing = meter_ids - set(
        MeterLink.objects.filter(meter_id__in=meter_ids).values_list("meter_id", flat=True)
    )
    if not missing:
        return
    histories = _histories(sorted(missing))
    links = []
    for meter_id in sorted(missing):
        link = MeterLink(meter_id=meter_id, organisation_id=states[meter_id].organisation_id)
        _set_history(link, histories.get(meter_id, rules.MeterHistory()))
        links.append(link)
    MeterLink.objects.bulk_create(links, ignore_conflicts=True)


def _histories(meter_ids: list[int]) -> dict[int, rules.MeterHistory]:
    """Each meter's newest read and newest good read, as its reads say (one query for the ids,
    one for the values): for links that did not exist, and to check the links' copies."""
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


def _stored_moments(moments: set[tuple[int, datetime]]) -> set[tuple[int, datetime]]:
    """Which of these (meter, read_at) are stored already."""
    if not moments:
        return set()
    if connection.vendor == "postgresql":
        pairs = sorted(moments)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT r.meter_id, r.read_at FROM {RegisterRead._meta.db_table} r"  # noqa: S608
                " JOIN unnest(%s::bigint[], %s::timestamptz[]) AS c(meter_id, read_at)"
                " ON r.meter_id = c.meter_id AND r.read_at = c.read_at",
                [[m for m, _ in pairs], [at for _, at in pairs]],
            )
            return {(m, at) for m, at in cursor.fetchall()}
    found = RegisterRead.objects.filter(
        meter_id__in={m for m, _ in moments}, read_at__in={at for _, at in moments}
    ).values_list("meter_id", "read_at")
    return set(found) & moments


_READ_COLUMNS = (
    "organisation_id", "meter_id", "read_at", "source", *_REGISTERS, "received_at",
)  # fmt: skip
_READ_TYPES = ("int8", "int8", "timestamptz", "text", *["numeric"] * 5, "timestamptz")


def _insert_reads(rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert new reads (tuples in ``_READ_COLUMNS`` order); their ids, in order.

    The caller has locked the meters' links and left out the moments already stored, so no
    row conflicts. PostgreSQL: ids drawn from the sequence in one query, then COPY. Elsewhere:
    one prepared INSERT ... ON CONFLICT DO NOTHING, then the ids in one query.
    """
    if not rows:
        return []
    if connection.vendor == "postgresql":
        table = RegisterRead._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, len(rows)],
            )
            new_ids = [pk for (pk,) in cursor.fetchall()]
        _pg_copy(
            table,
            ("id", *_READ_COLUMNS),
            ("int8", *_READ_TYPES),
            [(pk, *row) for pk, row in zip(new_ids, rows, strict=True)],
        )
        return new_ids
    _executemany_insert(RegisterRead, _READ_COLUMNS, rows, conflict=True)
    found = RegisterRead.objects.filter(
        meter_id__in={r[1] for r in rows}, read_at__in={r[2] for r in rows}
    ).values_list("meter_id", "read_at", "pk")
    ids = {(meter_id, read_at): pk for meter_id, read_at, pk in found}
    return [ids[(r[1], r[2])] for r in rows]


def _pg_copy(
    table: str, columns: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Binary COPY: no text formatting or parsing of every value on either side."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY is not in the DB-API
        with raw.copy(f"COPY {quote(table)} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(list(types))
            write = copy.write_row
            for row in rows:
                write(row)


_INTERVAL_COLUMNS = (
    "organisation_id", "meter_id", "start_read_id", "end_read_id", "start_at", "end_at",
    "register_delta", "multiplier", "consumption", "status", "booked", "note",
)  # fmt: skip
_INTERVAL_TYPES = ("int8", "int8", "int8", "int8", "timestamptz", "timestamptz", "numeric",
                   "int4", "numeric", "text", "bool", "text")  # fmt: skip


def _executemany_insert(
    model: type[Model],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: bool = False,
) -> None:
    """One prepared INSERT for many rows (values prepared as the ORM would)."""
    fields = [model._meta.get_field(name.removesuffix("_id")) for name in names]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)  # type: ignore[union-attr]
    marks = ", ".join(["%s"] * len(fields))
    tail = " ON CONFLICT DO NOTHING" if conflict else ""
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks}){tail}"  # noqa: S608
    prepared = [
        [f.get_db_prep_save(value, connection) for f, value in zip(fields, row, strict=True)]  # type: ignore[union-attr]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, prepared)


def _save_links(states: Sequence[_MeterState]) -> None:
    """Write back what the batch changed: when each meter was seen and its history, and for the
    meters that came back or had missed polls their online state too. PostgreSQL: one
    statement for all links; elsewhere one prepared UPDATE."""
    names = list(_LINK_SEEN)
    if any(state.status_changed for state in states):
        names += _LINK_STATUS
    quote = connection.ops.quote_name
    table = quote(MeterLink._meta.db_table)
    if connection.vendor != "postgresql":
        fields = [MeterLink._meta.get_field(name) for name in names]
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)  # type: ignore[union-attr]
        sql = f"UPDATE {table} SET {assignments} WHERE id = %s"  # noqa: S608
        prepared = [
            [f.get_db_prep_save(getattr(state, f.attname), connection) for f in fields]  # type: ignore[union-attr]
            + [state.link_id]
            for state in states
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, prepared)
        return
    # Less to format and send: the newest read was seen last (a batch's reads are never later
    # than its newest), and the good read is most often the newest one (sent as NULLs then).
    sent = [name for name in names if name != "last_seen_at"]
    newest_is_good = [s.good_read_id == s.last_read_id for s in states]
    arrays = ", ".join(f"%s::{_PG_TYPES[name]}[]" for name in sent)
    assignments = [
        f"{quote(name)} = u.{name}"
        for name in sent
        if not name.startswith("good_read_at") and name != "good_total"
    ]
    assignments += [
        "last_seen_at = GREATEST(l.last_seen_at, u.last_read_at)",
        "good_read_at = CASE WHEN u.good_read_id = u.last_read_id THEN u.last_read_at"
        " ELSE u.good_read_at END",
        "good_total = CASE WHEN u.good_read_id = u.last_read_id THEN u.last_total"
        " ELSE u.good_total END",
    ]
    sql = (
        f"UPDATE {table} l SET {', '.join(assignments)}"  # noqa: S608
        f" FROM unnest(%s::bigint[], {arrays}) AS u(link_id, {', '.join(sent)})"
        " WHERE l.id = u.link_id"
    )
    params: list[Any] = [_int_array([state.link_id for state in states])]
    for name in sent:
        values = [getattr(s, name) for s in states]
        if name in ("good_read_at", "good_total"):
            values = [None if same else v for v, same in zip(values, newest_is_good, strict=True)]
        kind = _PG_TYPES[name]
        if kind == "bigint" and None not in values:
            params.append(_int_array(values))
        elif kind == "timestamptz" and None not in values:
            params.append("{" + ",".join([v.isoformat() for v in values]) + "}")
        else:
            params.append(_array_literal(values))
    _pg_execute(sql, params)


def _insert_intervals(rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        _pg_copy(Interval._meta.db_table, _INTERVAL_COLUMNS, _INTERVAL_TYPES, rows)
    else:
        _executemany_insert(Interval, _INTERVAL_COLUMNS, rows)


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

    A constant number of statements per batch, whatever the number of meters: the meters,
    their links (locked, with each meter's history; created if missing), the moments that may
    be stored already, the reads, the intervals, the links.
    """
    if not reads:
        return BatchOutcome(0, 0, 0, 0, ())
    if connection.vendor == "postgresql":
        # Do not wait for the WAL flush at commit: a crash may lose the last moments of reads,
        # which the meters' cumulative registers make good at the next read; any transaction
        # that builds on these reads (a deduction) commits synchronously and so flushes them.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
    states = _meters_locked({r.meter_id for r in reads})  # serialises with the meters' writers
    latest = timezone.now() + timedelta(minutes=10)
    refused: list[tuple[ReadInput, str]] = []
    accepted: list[tuple[ReadInput, _Registers]] = []
    for read in reads:
        checked = _checked(read, states.get(read.meter_id), latest)
        if isinstance(checked, str):
            refused.append((read, checked))
        else:
            accepted.append((read, checked))
    if not accepted:
        return BatchOutcome(0, 0, 0, 0, tuple(refused))
    # Only a moment no later than the meter's newest stored read can be stored already.
    maybe_stored: set[tuple[int, datetime]] = set()
    for read, _ in accepted:
        newest = states[read.meter_id].history.newest
        if newest is not None and read.read_at <= newest.read_at:
            maybe_stored.add((read.meter_id, read.read_at))
    seen = _stored_moments(maybe_stored)
    received_at = timezone.now()
    rows: list[tuple[Any, ...]] = []  # plain tuples in _READ_COLUMNS order: this path is hot
    derived_all: list[tuple[_MeterState, rules.Derived]] = []
    manual: list[tuple[int, datetime, Decimal]] = []
    derive, point, manual_source = rules.derive, rules.Point, RegisterRead.Source.MANUAL.value
    for read, values in accepted:
        meter_id, at = read.meter_id, read.read_at
        if (meter_id, at) in seen:
            continue
        seen.add((meter_id, at))
        state = states[meter_id]
        total = values[0]
        # New reads get their ids after the insert; until then their key is their position.
        key = -1 - len(rows)
        rows.append((state.organisation_id, meter_id, at, read.source, *values, received_at))
        if state.interval_rules is None or read.expected_interval != state.rules_expected:
            state.rules_expected = read.expected_interval
            state.interval_rules = _rules(
                state.model, state.kind, state.multiplier, state.max_demand, state.rules_expected
            )
        state.history, derived = derive(state.interval_rules, state.history, point(at, total, key))
        if derived is not None:
            derived_all.append((state, derived))
        if _mark_seen(state, actor=actor, at=at):
            state.status_changed = True
        if read.source == manual_source:
            manual.append((meter_id, at, total))
    duplicates = len(accepted) - len(rows)
    new_ids = _insert_reads(rows)

    def resolve(key: object) -> int:
        assert isinstance(key, int)
        return new_ids[-1 - key] if key < 0 else key

    intervals = [
        (
            state.organisation_id,
            state.meter_id,
            resolve(derived.start.key),
            resolve(derived.end.key),
            derived.start.read_at,
            derived.end.read_at,
            derived.register_delta,
            derived.multiplier,
            derived.consumption,
            derived.status.value,
            derived.booked,
            derived.note,
        )
        for state, derived in derived_all
    ]
    _insert_intervals(intervals)
    touched = [states[m] for m in sorted({row[1] for row in rows})]
    for state in touched:
        newest, good = state.history
        assert newest is not None and good is not None  # a meter with reads has both
        state.last_read_at, state.last_total = newest.read_at, newest.total
        state.last_read_id = resolve(newest.key)
        state.good_read_at, state.good_total = good.read_at, good.total
        state.good_read_id = resolve(good.key)
    _save_links(touched)
    for meter_id, read_at, total in manual:
        audit_record(
            actor=actor,
            action="meter.read_manual",
            obj=Meter.objects.get(pk=meter_id),
            after={"read_at": read_at.isoformat(), "total": str(total)},
        )
    deductible = {
        state.meter_id
        for state, derived in derived_all
        if derived.booked and state.account_id is not None
    }
    return BatchOutcome(
        len(rows),
        duplicates,
        len(intervals),
        sum(1 for _, derived in derived_all if derived.booked),
        tuple(refused),
        tuple(sorted(deductible)),
    )
