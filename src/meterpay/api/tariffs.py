"""Tariffs: list, read, create or import (meterpay document or URDB rate), edit the document,
schedule a price change, rate intervals, export, and assign a tariff to an account.

Prices, quantities and amounts are decimal strings. Times in tariff documents and intervals are
the organisation's local wall-clock time; a time with a UTC offset is converted to it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Body, Field, Router, Schema, Status
from ninja.pagination import paginate

from meterpay.api.pagination import LimitOffset
from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.access import access_object, org_objects, require
from meterpay.apps.tariffs import selectors, services
from meterpay.apps.tariffs.models import AccountTariff, Tariff
from meterpay.core.roles import Permission
from meterpay.core.tariffs import AccountTerms, Interval, rate

router = Router(tags=["tariffs"])
MAX_INTERVALS = 50_000  # a year of 15-minute data fits


class RevisionOut(Schema):
    number: int
    kind: str
    note: str
    warnings: list[str]
    created_by: str = Field(..., alias="created_by_label")
    created_at: datetime


class TariffOut(Schema):
    id: int
    name: str
    utility: str
    description: str
    archived: bool
    currency: str
    version_starts: list[str]  # effective_from of every version (local time)
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_currency(obj: Tariff) -> str:
        return str(obj.document.get("currency", ""))

    @staticmethod
    def resolve_version_starts(obj: Tariff) -> list[str]:
        return [str(v.get("effective_from")) for v in obj.document.get("versions", [])]


class TariffDetailOut(TariffOut):
    document: dict[str, Any]
    revisions: list[RevisionOut]

    @staticmethod
    def resolve_revisions(obj: Tariff) -> list[Any]:
        return list(obj.revisions.order_by("-number"))


class TariffImportOut(Schema):
    tariff: TariffDetailOut
    source_format: str  # "meterpay" or "urdb"
    warnings: list[str]  # URDB fields that carry a value but were not imported


class VersionIn(Schema):
    effective_from: datetime
    version: dict[str, Any]  # the components of a version (energy, basic, water, …)
    note: str = Field("", max_length=300)


class IntervalIn(Schema):
    start: datetime
    end: datetime
    quantity: Decimal  # kWh (electricity) or m³ (water)
    kvarh: Decimal | None = None
    kw: Decimal | None = None
    period: str | None = None  # a meter-reported TOU register


class TermsIn(Schema):
    tier_threshold_scale: Decimal | None = None
    tier_thresholds: list[Decimal] | None = None
    capacity_kva: Decimal | None = None
    contract_demand_kw: Decimal | None = None
    room_area_m2: Decimal | None = None


class RateIn(Schema):
    intervals: list[IntervalIn] = Field(..., max_length=MAX_INTERVALS)
    account_id: int | None = None  # rate with this account's terms
    terms: TermsIn | None = None  # or with these (they override the account's)


class LineOut(Schema):
    month: str
    component: str
    label: str
    quantity: str
    unit: str
    unit_price: str
    proration: str
    amount: str
    version_from: str | None


class MonthOut(Schema):
    month: str
    energy: str
    demand: str
    fixed: str
    minimum: str
    adjustments: str
    total: str


class RateOut(Schema):
    currency: str
    total: str
    months: list[MonthOut]
    lines: list[LineOut]


class AssignIn(Schema):
    tariff_id: int
    effective_from: datetime | None = None  # default: now
    tier_threshold_scale: Decimal | None = None
    tier_thresholds: list[Decimal] = []
    capacity_kva: Decimal | None = None
    contract_demand_kw: Decimal | None = None


class AccountTariffOut(Schema):
    id: int
    account_id: int
    tariff: TariffOut
    utility: str
    effective_from: datetime
    tier_threshold_scale: str
    tier_thresholds: list[str]
    capacity_kva: str | None
    contract_demand_kw: str | None

    @staticmethod
    def resolve_tier_threshold_scale(obj: AccountTariff) -> str:
        return str(obj.tier_threshold_scale)

    @staticmethod
    def resolve_capacity_kva(obj: AccountTariff) -> str | None:
        return None if obj.capacity_kva is None else str(obj.capacity_kva)

    @staticmethod
    def resolve_contract_demand_kw(obj: AccountTariff) -> str | None:
        return None if obj.contract_demand_kw is None else str(obj.contract_demand_kw)


def _body_text(request: HttpRequest) -> str:
    # Read the raw body: URDB rates hold JSON numbers, which must become Decimal, not float.
    return request.body.decode("utf-8", errors="replace")


@router.get("/tariffs", response=list[TariffOut])
@paginate(LimitOffset)
def tariff_list(
    request: HttpRequest, utility: str | None = None, archived: bool | None = None
) -> Any:
    tariffs = org_objects(request.user, Tariff)
    if utility:
        tariffs = tariffs.filter(utility=utility)
    if archived is not None:
        tariffs = tariffs.filter(archived=archived)
    return tariffs


@router.get("/tariffs/{tariff_id}", response=TariffDetailOut)
def tariff_detail(request: HttpRequest, tariff_id: int) -> Any:
    return access_object(request.user, Tariff, tariff_id)


@router.post("/tariffs", response={201: TariffImportOut})
def tariff_create(request: HttpRequest, payload: Body[dict[str, Any]]) -> Any:
    """Create a tariff from a meterpay tariff document or a URDB rate (detected from the body).

    URDB fields that carry a value but are not imported come back as ``warnings`` and stay
    with the tariff's first revision."""
    require(request.user, Permission.MANAGE_TARIFFS)
    tariff, loaded = services.tariff_import(
        actor=request.user, organisation=request.user.organisation, text=_body_text(request)
    )
    return Status(
        201,
        {"tariff": tariff, "source_format": loaded.source_format, "warnings": loaded.warnings},
    )


@router.put("/tariffs/{tariff_id}/document", response=TariffDetailOut)
def tariff_document_update(
    request: HttpRequest, tariff_id: int, payload: Body[dict[str, Any]], note: str = ""
) -> Any:
    """Replace the tariff document (effective at once); the previous one stays a revision.
    Problems come back as ``errors`` keyed by the field path, e.g. ``versions[0].energy``."""
    require(request.user, Permission.MANAGE_TARIFFS)
    tariff = access_object(request.user, Tariff, tariff_id)
    return services.tariff_update_document(
        actor=request.user, tariff=tariff, document=payload, note=note[:300]
    )


@router.post("/tariffs/{tariff_id}/versions", response={201: TariffDetailOut})
def tariff_version_create(request: HttpRequest, tariff_id: int, payload: VersionIn) -> Any:
    """Schedule a price change: a new version that applies from ``effective_from`` (not past)."""
    require(request.user, Permission.MANAGE_TARIFFS)
    tariff = access_object(request.user, Tariff, tariff_id)
    return Status(
        201,
        services.tariff_version_schedule(
            actor=request.user,
            tariff=tariff,
            effective_from=payload.effective_from,
            version=payload.version,
            note=payload.note,
        ),
    )


def _terms(request: HttpRequest, tariff: Tariff, payload: RateIn) -> AccountTerms:
    terms = AccountTerms()
    if payload.account_id is not None:
        account = access_object(request.user, Account, payload.account_id)
        assignment = (
            AccountTariff.objects.filter(account=account, tariff=tariff)
            .order_by("-effective_from")
            .first()
        )
        terms = selectors.account_terms(account, assignment)
    given = payload.terms
    if given is None:
        return terms
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("tier_threshold_scale", given.tier_threshold_scale),
            ("capacity_kva", given.capacity_kva),
            ("contract_demand_kw", given.contract_demand_kw),
            ("room_area_m2", given.room_area_m2),
        )
        if value is not None
    }
    if given.tier_thresholds is not None:
        changes["tier_thresholds"] = tuple(given.tier_thresholds)
    return AccountTerms(**{**_terms_dict(terms), **changes})


def _terms_dict(terms: AccountTerms) -> dict[str, Any]:
    return {name: getattr(terms, name) for name in AccountTerms.__dataclass_fields__}


@router.post("/tariffs/{tariff_id}/rate", response=RateOut)
def tariff_rate(request: HttpRequest, tariff_id: int, payload: RateIn) -> Any:
    """Rate intervals with the tariff (nothing is stored): bill lines and month totals."""
    tariff = access_object(request.user, Tariff, tariff_id)
    terms = _terms(request, tariff, payload)
    organisation = request.user.organisation

    def local(moment: datetime) -> datetime:
        return services.naive_local(moment, organisation)

    try:
        intervals = [
            Interval(
                start=local(item.start),
                end=local(item.end),
                quantity=item.quantity,
                kvarh=item.kvarh,
                kw=item.kw,
                period=item.period,
            )
            for item in payload.intervals
        ]
        bill = rate(tariff=selectors.engine_tariff(tariff), intervals=intervals, account=terms)
        months = bill.months()
    except (ValueError, OverflowError, ArithmeticError) as error:
        # RatingError (a ValueError) names the interval; dates past year 9999 overflow.
        raise ValidationError({"intervals": [str(error) or "cannot be rated"]}) from None
    return {
        "currency": bill.currency,
        "total": str(bill.total),
        "months": [
            {
                "month": m.month,
                "energy": str(m.energy),
                "demand": str(m.demand),
                "fixed": str(m.fixed),
                "minimum": str(m.minimum),
                "adjustments": str(m.adjustments),
                "total": str(m.total),
            }
            for m in months
        ],
        "lines": [line.to_dict() for line in bill.lines],
    }


@router.get("/tariffs/{tariff_id}/export", response=dict[str, Any])
def tariff_export(request: HttpRequest, tariff_id: int) -> Any:
    """The tariff document (``meterpay-tariff/1``) as a JSON file, ready to import elsewhere."""
    tariff = access_object(request.user, Tariff, tariff_id)
    response = HttpResponse(
        services.tariff_export(tariff=tariff), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="tariff-{tariff.pk}.json"'
    return response


@router.get("/accounts/{account_id}/tariffs", response=list[AccountTariffOut])
def account_tariff_list(request: HttpRequest, account_id: int) -> Any:
    """The account's tariff assignments, newest first per utility (earlier ones are history)."""
    account = access_object(request.user, Account, account_id)
    return list(selectors.account_assignments(account))


@router.put("/accounts/{account_id}/tariffs", response=AccountTariffOut)
def account_tariff_assign(request: HttpRequest, account_id: int, payload: AssignIn) -> Any:
    """Rate the account with a tariff for the tariff's utility from ``effective_from`` (now)."""
    require(request.user, Permission.MANAGE_TARIFFS)
    account = access_object(request.user, Account, account_id)
    tariff = access_object(request.user, Tariff, payload.tariff_id)
    try:
        effective_from = payload.effective_from or timezone.now()
        if timezone.is_naive(effective_from):
            effective_from = timezone.make_aware(effective_from)
    except (ValueError, OverflowError):
        raise ValidationError({"effective_from": ["is not a usable time"]}) from None
    return services.account_tariff_assign(
        actor=request.user,
        account=account,
        tariff=tariff,
        effective_from=effective_from,
        tier_threshold_scale=payload.tier_threshold_scale,
        tier_thresholds=payload.tier_thresholds,
        capacity_kva=payload.capacity_kva,
        contract_demand_kw=payload.contract_demand_kw,
    )
