"""What the roll-ups need to know about meters: owner, account, utility, local clock, and the
tariff periods of the tariff in force (``tariffs.selectors.TariffBook``, the one rule)."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.sites.models import Holiday, Room
from meterpay.apps.tariffs.models import AccountTariff, DefaultTariff, TariffRevision
from meterpay.apps.tariffs.selectors import TariffBook, default_tariffs, engine_tariff
from meterpay.core.reports.rollup import ELECTRICITY, WATER, LocalClock, MeterContext
from meterpay.core.reports.tou import TouClassifier
from meterpay.core.tariffs import Tariff as EngineTariff

_CLOCKS: dict[str, LocalClock] = {}
_TICK = timedelta(microseconds=1)


def clock(zone: str) -> LocalClock:
    """The local clock of a time zone (kept: its caches serve every later roll-up)."""
    found = _CLOCKS.get(zone)
    if found is None:
        found = _CLOCKS[zone] = LocalClock(ZoneInfo(zone))
    return found


def organisation_clocks(organisation_ids: Collection[int]) -> dict[int, LocalClock]:
    return {
        pk: clock(zone)
        for pk, zone in Organisation.objects.filter(pk__in=set(organisation_ids)).values_list(
            "pk", "timezone"
        )
    }


def utility_of(kind: str) -> str:
    """``w`` for a water meter, ``e`` for electricity."""
    return WATER if kind == Meter.Kind.WATER else ELECTRICITY


class _Classifiers:
    """One classifier per tariff and holiday calendar (their caches are shared)."""

    def __init__(self) -> None:
        self._found: dict[tuple[int, frozenset[date]], TouClassifier] = {}
        self._keep: list[EngineTariff | None] = []

    def get(self, tariff: EngineTariff | None, holidays: frozenset[date]) -> TouClassifier:
        key = (id(tariff), holidays)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = TouClassifier(tariff, holidays)
            self._keep.append(tariff)  # ids stay unique while the classifiers live
        return found


#: How long contexts are kept at most, even when nothing they depend on seems to change.
CONTEXT_SECONDS = 300.0


@dataclass(slots=True)
class _Cache:
    """Contexts kept between roll-up runs: building them loads every account's tariff and
    terms, which costs more than rolling up a batch. Kept while the meter's own row and the
    fingerprint of what else they depend on stay the same (and for ``CONTEXT_SECONDS``)."""

    fingerprint: tuple[Any, ...] | None = None
    since: float = 0.0
    meters: dict[int, tuple[tuple[Any, ...], MeterContext]] = field(default_factory=dict)


_CACHE = _Cache()


def _fingerprint() -> tuple[Any, ...]:
    """Tariff documents (every change is a revision), assignments, default tariffs, holidays
    and accounts' rooms (whose sites' holidays count): a change to any changes this."""
    return (
        tuple(
            AccountTariff.objects.aggregate(
                n=Count("id"), top=Max("id"), tariffs=Sum("tariff_id"), last=Max("effective_from")
            ).values()
        ),
        TariffRevision.objects.aggregate(top=Max("id"))["top"],
        tuple(
            DefaultTariff.objects.aggregate(
                n=Count("id"), at=Max("set_at"), t=Sum("tariff_id")
            ).values()
        ),
        tuple(
            Holiday.objects.aggregate(
                n=Count("id"),
                top=Max("id"),
                first=Min("date"),
                last=Max("date"),
                sites=Sum("site_id"),
            ).values()
        ),
        tuple(
            Account.rooms.through.objects.aggregate(
                n=Count("id"), top=Max("id"), rooms=Sum("room_id")
            ).values()
        ),
    )


def meter_contexts(meter_ids: Collection[int], *, cached: bool = True) -> dict[int, MeterContext]:
    """The context of each meter (meters that do not exist are left out); ``cached`` reuses
    those of earlier calls while nothing they depend on has changed."""
    meters = list(
        Meter.objects.filter(pk__in=set(meter_ids)).values_list(
            "pk", "organisation_id", "account_id", "kind", "room_id"
        )
    )
    if not cached:
        return _build(meters)
    moment = time.monotonic()
    fingerprint = _fingerprint()
    if fingerprint != _CACHE.fingerprint or moment - _CACHE.since > CONTEXT_SECONDS:
        _CACHE.fingerprint, _CACHE.since = fingerprint, moment
        _CACHE.meters.clear()
    missing = [row for row in meters if _CACHE.meters.get(row[0], ((),))[0] != row]
    if missing:
        for row, (pk, context) in zip(missing, _build(missing).items(), strict=True):
            _CACHE.meters[pk] = (row, context)
    return {row[0]: _CACHE.meters[row[0]][1] for row in meters}


def _build(meters: Sequence[tuple[Any, ...]]) -> dict[int, MeterContext]:
    accounts = {
        a.pk: a for a in Account.objects.filter(pk__in={m[2] for m in meters if m[2] is not None})
    }
    book = TariffBook(accounts.values())
    clocks = organisation_clocks({m[1] for m in meters})
    classifiers = _Classifiers()
    defaults: dict[tuple[int, str], EngineTariff | None] = {}
    # a meter without an account: the holidays of its room's site
    sites = dict(
        Room.objects.filter(
            pk__in={m[4] for m in meters if m[2] is None and m[4] is not None}
        ).values_list("pk", "floor__building__site_id")
    )
    holidays: dict[int, set[date]] = {}
    for holiday_site, day in Holiday.objects.filter(site_id__in=set(sites.values())).values_list(
        "site_id", "date"
    ):
        holidays.setdefault(holiday_site, set()).add(day)
    now = timezone.now()
    found: dict[int, MeterContext] = {}
    for pk, organisation_id, account_id, kind, room_id in meters:
        site_id = sites.get(room_id, 0)
        utility = utility_of(kind)
        name = "water" if utility == WATER else "electricity"
        local = clocks[organisation_id]

        def context(
            tariff: EngineTariff | None,
            days_off: frozenset[date],
            *,
            organisation_id: int = organisation_id,
            account_id: int = account_id or 0,
            utility: str = utility,
            local: LocalClock = local,
        ) -> MeterContext:
            return MeterContext(
                organisation_id, account_id, utility, local, classifiers.get(tariff, days_off)
            )

        if account_id is None:
            key = (organisation_id, name)
            if key not in defaults:
                row = default_tariffs(organisation_id).get(name)
                defaults[key] = engine_tariff(row.tariff) if row is not None else None
            found[pk] = context(defaults[key], frozenset(holidays.get(site_id or 0, ())))
            continue
        account = accounts[account_id]
        moments = sorted(
            {row.effective_from for row in book.assignments.get((account_id, name), [])}
        )
        segments: list[MeterContext] = []
        for at in [moments[0] - _TICK if moments else now, *moments]:
            in_force = book.in_force(account, name, at)
            if in_force is None:
                segments.append(context(None, frozenset()))
            else:
                segments.append(context(in_force[0], in_force[1].holidays))
        first, *rest = segments
        if rest:
            later = tuple(zip(moments, rest, strict=True))
            first = MeterContext(
                first.organisation_id,
                first.account_id,
                first.utility,
                first.clock,
                first.classifier,
                later,
            )
        found[pk] = first
    return found
