"""The energy-efficiency view of a meter, room, floor, building or site, from the roll-ups:
load curve, heat map, time-of-use composition, ranking of rooms, base loads, anomalies and
a peak-shaving suggestion priced by the engine with the room's own tariff.

Electricity only (kWh). The rules are pure (``meterpay.core.reports.efficiency``); what
they mean: docs/reports.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.reports.contexts import clock
from meterpay.apps.reports.models import MeterDay, MeterHour
from meterpay.apps.reports.selectors import Place
from meterpay.apps.sites.models import Room
from meterpay.apps.tariffs.selectors import TariffBook, default_tariffs, engine_tariff
from meterpay.core import tariffs
from meterpay.core.money import from_minor, to_minor
from meterpay.core.reports.efficiency import (
    HISTORY_DAYS,
    RECENT_DAYS,
    ZERO_DAYS,
    Anomaly,
    DayUsage,
    HourUsage,
    engine_intervals,
    night_base_jump,
    night_base_kw,
    peak_share,
    peak_share_jump,
    shift_to_valley,
    split_history,
    weekend_base_kw,
    zero_runs,
)
from meterpay.core.reports.rollup import from_units
from meterpay.core.reports.tou import TOU_SLOTS, TouClassifier

#: Share of the peak and sharp kWh a suggestion moves to valley hours (percent).
DEFAULT_SHIFT_PERCENT = Decimal(20)
#: Rooms a site, building or floor view prices a suggestion for (the largest peak users).
SUGGESTED_ROOMS = 3
_PERCENT = Decimal("0.1")
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class RoomRank:
    """A room's (or a meter's without a room) kWh in the span and what it says."""

    key: str
    place: Place
    meters: tuple[int, ...]
    account_id: int | None
    kwh: Decimal
    kwh_per_m2: Decimal | None
    peak_share: Decimal | None
    sharp_share: Decimal | None
    night_base_kw: Decimal | None
    weekend_base_kw: Decimal | None


@dataclass(frozen=True, slots=True)
class RoomAnomaly:
    key: str
    place: Place
    meter_id: int | None
    anomaly: Anomaly


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Moving ``percent`` % of a room's peak and sharp kWh to valley hours, rated before and
    after with its own tariff by the engine (money in minor units)."""

    key: str
    place: Place
    tariff: str
    percent: Decimal
    moved_kwh: Decimal
    before_minor: int
    after_minor: int
    saved_minor: int
    currency: str
    text: str


@dataclass(frozen=True, slots=True)
class EfficiencyView:
    """``load_curve``: each local hour's start (an instant) and kWh (None: no data);
    ``heat_map``: per local day the 24 hours' kWh; ``composition``: kWh per period."""

    organisation_id: int
    start: date
    end: date
    meters: tuple[int, ...]
    kwh: Decimal
    composition: dict[str, Decimal]
    peak_share: Decimal | None
    sharp_share: Decimal | None
    night_base_kw: Decimal | None
    weekend_base_kw: Decimal | None
    load_curve: tuple[tuple[datetime, Decimal | None], ...]
    heat_map: tuple[tuple[date, tuple[Decimal | None, ...]], ...]
    ranking: tuple[RoomRank, ...]
    anomalies: tuple[RoomAnomaly, ...]
    suggestions: tuple[Suggestion, ...]


def _share(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return (part * 100 / whole).quantize(_PERCENT, rounding=ROUND_HALF_UP)


def _scope_meters(
    organisation_id: int,
    meter_id: int | None,
    room_id: int | None,
    floor_id: int | None,
    building_id: int | None,
    site_id: int | None,
) -> list[tuple[int, int | None, int | None]]:
    meters = Meter.objects.filter(organisation_id=organisation_id).exclude(kind=Meter.Kind.WATER)
    if meter_id is not None:
        meters = meters.filter(pk=meter_id)
    if room_id is not None:
        meters = meters.filter(room_id=room_id)
    if floor_id is not None:
        meters = meters.filter(room__floor_id=floor_id)
    if building_id is not None:
        meters = meters.filter(room__floor__building_id=building_id)
    if site_id is not None:
        meters = meters.filter(room__floor__building__site_id=site_id)
    return list(meters.order_by("pk").values_list("pk", "room_id", "account_id"))


def _places(room_ids: set[int]) -> dict[int, Place]:
    return {
        pk: Place(pk, number, area, floor_id, floor, level, building_id, building, site_id, site)
        for pk, number, area, floor_id, floor, level, building_id, building, site_id, site in (
            Room.objects.filter(pk__in=room_ids).values_list(
                "pk",
                "number",
                "area_m2",
                "floor_id",
                "floor__name",
                "floor__level",
                "floor__building_id",
                "floor__building__name",
                "floor__building__site_id",
                "floor__building__site__name",
            )
        )
    }


def efficiency_view(
    *,
    organisation_id: int,
    start: date,
    end: date,
    meter_id: int | None = None,
    room_id: int | None = None,
    floor_id: int | None = None,
    building_id: int | None = None,
    site_id: int | None = None,
    shift_percent: Decimal = DEFAULT_SHIFT_PERCENT,
    today: date | None = None,
) -> EfficiencyView:
    """The efficiency view of the electricity meters in scope over local days
    ``[start, end)``; anomalies look at the days before ``min(end, today)``."""
    if end <= start:
        raise ValueError("the span ends before it starts")
    organisation = Organisation.objects.only("timezone", "currency").get(pk=organisation_id)
    local = clock(organisation.timezone)
    today = today or timezone.localdate()
    found = _scope_meters(organisation_id, meter_id, room_id, floor_id, building_id, site_id)
    ids = [pk for pk, _room, _account in found]
    room_of = {pk: room for pk, room, _account in found}
    key_of = {pk: f"room:{room}" if room is not None else f"meter:{pk}" for pk, room, _ in found}
    meters_of: dict[str, list[int]] = {}
    for pk, key in key_of.items():
        meters_of.setdefault(key, []).append(pk)
    account_of = {pk: account for pk, _room, account in found}
    places = _places({room for room in room_of.values() if room is not None})
    since, until = local.day_start(start), local.day_start(end)

    # load curve and heat map: one GROUP BY over the hours of the span
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # hundreds of thousands of rows summed in one pass: compiling the plan costs more
            connection.cursor().execute("SET LOCAL jit = off")
        hours = dict(
            MeterHour.objects.filter(meter_id__in=ids, hour__gte=since, hour__lt=until)
            .values_list("hour")
            .annotate(Sum("quantity"))
            .order_by()
        )
    load_curve: list[tuple[datetime, Decimal | None]] = []
    heat: dict[date, list[Decimal | None]] = {}
    moment = since
    while moment < until:
        units = hours.get(moment)
        total = None if units is None else from_units(int(units))
        load_curve.append((moment, total))
        at = local.bucket(moment + _HOUR)
        heat.setdefault(at.day, [None] * 24)[at.local_hour] = total
        moment += _HOUR

    # days: the span's (the composition) and the history the anomalies compare with
    until_day = min(end, today)
    history_from = min(start, until_day - timedelta(days=RECENT_DAYS + HISTORY_DAYS))
    days: dict[str, dict[date, list[int]]] = {}
    meter_days: dict[int, dict[date, int]] = {}
    periods = [0] * len(TOU_SLOTS)  # sharp, peak, flat, valley, other
    total_units = 0
    for pk, day, quantity, sharp, peak, night, flat, valley, other in MeterDay.objects.filter(
        meter_id__in=ids, day__gte=history_from, day__lt=max(end, until_day)
    ).values_list(
        "meter_id", "day", "quantity", "sharp", "peak", "night", "flat", "valley", "other"
    ):
        row = days.setdefault(key_of[pk], {}).setdefault(day, [0, 0, 0, 0])
        row[0] += quantity
        row[1] += sharp
        row[2] += peak
        row[3] += night
        meter_days.setdefault(pk, {})
        meter_days[pk][day] = meter_days[pk].get(day, 0) + quantity
        if start <= day < end:
            total_units += quantity
            for index, value in enumerate((sharp, peak, flat, valley, other)):
                periods[index] += value
    composition = {name: from_units(units) for name, units in zip(TOU_SLOTS, periods, strict=True)}
    composition["untimed"] = from_units(total_units - sum(periods))
    kwh = from_units(total_units)

    def usage(rows: dict[date, list[int]], first: date, last: date) -> list[DayUsage]:
        return [
            DayUsage(day, q, n, s + p)
            for day, (q, s, p, n) in sorted(rows.items())
            if first <= day < last
        ]

    room_days = {key: usage(days.get(key, {}), date.min, date.max) for key in meters_of}
    ranking = []
    all_days: dict[date, list[int]] = {}
    for key in sorted(meters_of):
        rows = days.get(key, {})
        for day, values in rows.items():
            if start <= day < end:
                target = all_days.setdefault(day, [0, 0, 0, 0])
                for index, number in enumerate(values):
                    target[index] += number
        span = [d for d in room_days[key] if start <= d.day < end]
        room_kwh = from_units(sum(d.quantity for d in span))
        room_sharp = from_units(sum(v[1] for d, v in rows.items() if start <= d < end))
        meters = tuple(meters_of[key])
        place = places.get(room_of[meters[0]] or 0, Place())
        account_id = next((account_of[pk] for pk in meters if account_of[pk] is not None), None)
        area = place.area_m2
        ranking.append(
            RoomRank(
                key=key,
                place=place,
                meters=meters,
                account_id=account_id,
                kwh=room_kwh,
                kwh_per_m2=(room_kwh / area).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                if area > 0
                else None,
                peak_share=peak_share(span),
                sharp_share=_share(room_sharp, room_kwh),
                night_base_kw=night_base_kw(span),
                weekend_base_kw=weekend_base_kw(span),
            )
        )
    ranking.sort(key=lambda r: (-r.kwh, r.key))
    scope_days = usage(all_days, start, end)

    anomalies = _anomalies(
        found, meters_of, places, room_of, room_days, meter_days, start, until_day
    )
    single = room_id is not None or meter_id is not None
    suggestions = _suggestions(organisation, local, ranking, since, until, shift_percent, single)
    return EfficiencyView(
        organisation_id=organisation_id,
        start=start,
        end=end,
        meters=tuple(ids),
        kwh=kwh,
        composition=composition,
        peak_share=_share(composition["peak"] + composition["sharp"], kwh),
        sharp_share=_share(composition["sharp"], kwh),
        night_base_kw=night_base_kw(scope_days),
        weekend_base_kw=weekend_base_kw(scope_days),
        load_curve=tuple(load_curve),
        heat_map=tuple((day, tuple(values)) for day, values in sorted(heat.items())),
        ranking=tuple(ranking),
        anomalies=tuple(anomalies),
        suggestions=tuple(suggestions),
    )


def _anomalies(
    found: Sequence[tuple[int, int | None, int | None]],
    meters_of: dict[str, list[int]],
    places: dict[int, Place],
    room_of: dict[int, int | None],
    room_days: dict[str, list[DayUsage]],
    meter_days: dict[int, dict[date, int]],
    start: date,
    until: date,
) -> list[RoomAnomaly]:
    """Each room against its own history; meters of open accounts that used nothing."""
    anomalies: list[RoomAnomaly] = []
    key_of = {pk: key for key, pks in meters_of.items() for pk in pks}
    for key in sorted(meters_of):
        place = places.get(room_of[meters_of[key][0]] or 0, Place())
        history, recent = split_history(room_days[key], until=until)
        for found_one in (night_base_jump(history, recent), peak_share_jump(history, recent)):
            if found_one is not None:
                anomalies.append(RoomAnomaly(key, place, None, found_one))
    open_accounts = set(
        Account.objects.filter(
            pk__in={a for _m, _r, a in found if a is not None}, status=Account.Status.OPEN
        ).values_list("pk", flat=True)
    )
    span_days = (until - start).days
    for pk, room, account_id in found:
        if account_id not in open_accounts or until <= start:
            continue
        quantities = meter_days.get(pk, {})
        used = sum(1 for day, q in quantities.items() if q and start <= day < until)
        if span_days - used < ZERO_DAYS:
            continue  # too few idle days for a run
        for run in zero_runs(quantities, first=start, last=until - timedelta(days=1)):
            anomalies.append(RoomAnomaly(key_of[pk], places.get(room or 0, Place()), pk, run))
    return anomalies


def _suggestions(
    organisation: Organisation,
    local: Any,
    ranking: Sequence[RoomRank],
    since: datetime,
    until: datetime,
    percent: Decimal,
    single: bool,
) -> list[Suggestion]:
    """Peak shaving for one room, or for the rooms using the most in peak and sharp hours."""
    candidates = [r for r in ranking if r.kwh > 0 and (r.peak_share or 0) > 0]
    candidates.sort(key=lambda r: -(r.kwh * (r.peak_share or 0)))
    accounts = {
        a.pk: a
        for a in Account.objects.filter(pk__in={r.account_id for r in candidates if r.account_id})
    }
    book = TariffBook(accounts.values())
    defaults = default_tariffs(organisation.pk)
    chosen = candidates[: 1 if single else SUGGESTED_ROOMS]
    hours = _room_hours(local, chosen, since, until)
    classifiers: dict[tuple[int, frozenset[date]], TouClassifier] = {}
    found = []
    for room in chosen:
        account = accounts.get(room.account_id or 0)
        in_force: tuple[tariffs.Tariff, tariffs.AccountTerms] | None
        if account is not None:
            in_force = book.in_force(account, "electricity", until - timedelta(microseconds=1))
        elif "electricity" in defaults:
            in_force = engine_tariff(defaults["electricity"].tariff), tariffs.AccountTerms()
        else:
            in_force = None
        if in_force is None:
            continue
        key = (id(in_force[0]), in_force[1].holidays)
        if key not in classifiers:
            classifiers[key] = TouClassifier(in_force[0], in_force[1].holidays)
        suggestion = _suggestion(room, hours.get(room.key, []), in_force, classifiers[key], percent)
        if suggestion is not None:
            found.append(suggestion)
    return found


def _room_hours(
    local: Any, rooms: Sequence[RoomRank], since: datetime, until: datetime
) -> dict[str, list[HourUsage]]:
    """The rooms' hourly kWh by period (1/10000), local hours, in one query."""
    room_of = {pk: room.key for room in rooms for pk in room.meters}
    sums: dict[tuple[str, datetime], list[int]] = {}
    for meter_id, hour, *values in MeterHour.objects.filter(
        meter_id__in=list(room_of), hour__gte=since, hour__lt=until
    ).values_list("meter_id", "hour", "quantity", *TOU_SLOTS):
        target = sums.setdefault((room_of[meter_id], hour), [0] * len(values))
        for index, value in enumerate(values):
            target[index] += value
    found: dict[str, list[HourUsage]] = {}
    for (key, hour), (quantity, *by_period) in sorted(sums.items()):
        periods = {n: v for n, v in zip(TOU_SLOTS, by_period, strict=True) if v}
        untimed = quantity - sum(by_period)
        if untimed:
            periods["untimed"] = untimed
        found.setdefault(key, []).append(HourUsage(local.local(hour), periods))
    return found


def _suggestion(
    room: RoomRank,
    hours: Sequence[HourUsage],
    in_force: tuple[tariffs.Tariff, tariffs.AccountTerms],
    classifier: TouClassifier,
    percent: Decimal,
) -> Suggestion | None:
    tariff, terms = in_force
    shifted = shift_to_valley(
        hours,
        fraction=percent / 100,
        is_valley=lambda start: classifier.period(start) == "valley",
    )
    if shifted.moved <= 0:
        return None
    names = frozenset(p.name for v in tariff.versions if v.energy for p in v.energy.periods)
    first = tariff.versions[0].effective_from
    try:
        before = tariffs.rate(
            tariff=tariff,
            intervals=engine_intervals(hours, periods=names, since=first),
            account=terms,
        )
        after = tariffs.rate(
            tariff=tariff,
            intervals=engine_intervals(shifted.hours, periods=names, since=first),
            account=terms,
        )
    except (tariffs.RatingError, tariffs.TariffError):
        return None
    before_minor = to_minor(before.total, tariff.currency)
    after_minor = to_minor(after.total, tariff.currency)
    saved = before_minor - after_minor
    text = _(
        "Moving %(percent)s%% of the peak and sharp kWh (%(kwh)s kWh) to valley hours would "
        "have cost %(saved)s %(currency)s less over this period under the tariff %(tariff)s."
    ) % {
        "percent": format(percent.normalize(), "f"),
        "kwh": from_units(shifted.moved).quantize(Decimal("0.01")),
        "saved": from_minor(saved, tariff.currency),
        "currency": tariff.currency,
        "tariff": tariff.name,
    }
    return Suggestion(
        key=room.key,
        place=room.place,
        tariff=tariff.name,
        percent=percent,
        moved_kwh=from_units(shifted.moved),
        before_minor=before_minor,
        after_minor=after_minor,
        saved_minor=saved,
        currency=tariff.currency,
        text=text,
    )
