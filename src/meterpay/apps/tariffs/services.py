"""Writes of stored tariffs: create, edit, schedule a price change, import, assign to accounts.

Every function validates the document with the pure engine (``parse_tariff``), keeps the
whole document after the change as a new :class:`TariffRevision` and records the audit event
in the same transaction. Validation errors name the document's field path, e.g.
``{"versions[1].energy.periods[2].price": ["must be a decimal string"]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from meterpay.apps.audit.services import audit_record, snapshot
from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.models import Organisation
from meterpay.apps.tariffs.models import (
    AccountTariff,
    DefaultTariff,
    Tariff,
    TariffRevision,
    Utility,
)
from meterpay.core.tariffs import (
    LoadedTariff,
    TariffError,
    load_tariff_text,
    parse_tariff,
    tariff_to_dict,
    tariff_to_json,
)
from meterpay.core.tariffs import Tariff as EngineTariff

DOCUMENT_FIELD = "document"  # the error key for problems of the document as a whole
NOTE_LENGTH = 300


class TariffValidationError(ValidationError):
    """A tariff write refused; ``message_dict`` maps field paths to problems."""


def _invalid(error: TariffError, *, rename: tuple[str, str] | None = None) -> TariffValidationError:
    path = error.path or DOCUMENT_FIELD
    if rename is not None and path.startswith(rename[0]):
        path = rename[1] + path[len(rename[0]) :]
    return TariffValidationError({path: [error.problem]})


def validate_document(document: object) -> EngineTariff:
    """The engine's tariff for ``document``, or :class:`TariffValidationError` naming the path."""
    try:
        return parse_tariff(document)
    except TariffError as error:
        raise _invalid(error) from None


def local_now(organisation: Organisation) -> datetime:
    """The organisation's wall-clock time (tariff documents use local time without offset)."""
    return timezone.now().astimezone(ZoneInfo(organisation.timezone)).replace(tzinfo=None)


def _actor_user(actor: object) -> Any:
    return actor if isinstance(actor, models.Model) else None


def _actor_label(actor: object) -> str:
    return (getattr(actor, "username", None) or str(actor))[:150]


def _revise(
    *,
    actor: object,
    tariff: Tariff,
    kind: str,
    note: str,
    warnings: Sequence[str] = (),
) -> TariffRevision:
    latest = tariff.revisions.aggregate(n=models.Max("number"))["n"] or 0
    return TariffRevision.objects.create(
        organisation_id=tariff.organisation_id,
        tariff=tariff,
        number=latest + 1,
        kind=kind,
        document=tariff.document,
        note=note.strip()[:NOTE_LENGTH],
        warnings=list(warnings),
        created_by=_actor_user(actor),
        created_by_label=_actor_label(actor),
    )


def _copy_fields(tariff: Tariff, engine_tariff: EngineTariff) -> None:
    tariff.document = tariff_to_dict(engine_tariff)
    tariff.name = engine_tariff.name[:200]
    tariff.utility = engine_tariff.commodity
    tariff.description = engine_tariff.description


def _tariff_snapshot(tariff: Tariff) -> dict[str, Any]:
    data = snapshot(tariff)
    data.pop("document", None)  # the revision holds the document; the audit names the revision
    return data


@transaction.atomic
def tariff_create(
    *,
    actor: object,
    organisation: Organisation,
    document: object,
    note: str = "",
    kind: str = TariffRevision.Kind.CREATED,
    warnings: Sequence[str] = (),
) -> Tariff:
    engine_tariff = validate_document(document)
    tariff = Tariff(organisation=organisation)
    _copy_fields(tariff, engine_tariff)
    tariff.save()
    revision = _revise(actor=actor, tariff=tariff, kind=kind, note=note, warnings=warnings)
    audit_record(
        actor=actor,
        action="tariff.create",
        obj=tariff,
        after={**_tariff_snapshot(tariff), "revision": revision.number, "warnings": list(warnings)},
    )
    return tariff


def _locked(tariff: Tariff) -> Tariff:
    return Tariff.objects.select_for_update().get(pk=tariff.pk)


@transaction.atomic
def tariff_update_document(
    *, actor: object, tariff: Tariff, document: object, note: str = ""
) -> Tariff:
    """Replace the document (prices corrected or changed at once); the old one stays a revision."""
    tariff = _locked(tariff)
    engine_tariff = validate_document(document)
    if engine_tariff.commodity != tariff.utility:
        raise TariffValidationError(
            {"commodity": [f"must stay {tariff.utility}: create a new tariff for another utility"]}
        )
    normalised = tariff_to_dict(engine_tariff)
    if normalised == tariff.document:
        return tariff
    before = _tariff_snapshot(tariff)
    _copy_fields(tariff, engine_tariff)
    tariff.save()
    revision = _revise(actor=actor, tariff=tariff, kind=TariffRevision.Kind.EDITED, note=note)
    audit_record(
        actor=actor,
        action="tariff.update",
        obj=tariff,
        before=before,
        after={**_tariff_snapshot(tariff), "revision": revision.number},
    )
    return tariff


def naive_local(moment: datetime, organisation: Organisation) -> datetime:
    """``moment`` as the organisation's wall-clock time without offset (naive stays as is)."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(ZoneInfo(organisation.timezone)).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise TariffValidationError({"effective_from": ["is not a usable time"]}) from None


@transaction.atomic
def tariff_version_schedule(
    *,
    actor: object,
    tariff: Tariff,
    effective_from: datetime,
    version: Mapping[str, Any],
    note: str = "",
) -> Tariff:
    """Add a price version that applies from ``effective_from`` (now or later, local time).

    Intervals that start at or after it are rated with the new prices; earlier data keeps the
    prices it was rated with. A past date is refused: correcting history is a document edit.
    """
    tariff = _locked(tariff)
    organisation = tariff.organisation
    start = naive_local(effective_from, organisation).replace(second=0, microsecond=0)
    if start < local_now(organisation).replace(second=0, microsecond=0):
        raise TariffValidationError(
            {"effective_from": ["must be now or later; to correct past prices, edit the document"]}
        )
    if not isinstance(version, Mapping):
        raise TariffValidationError({"version": ["must be an object"]})
    versions = list(tariff.document.get("versions", []))
    if any(datetime.fromisoformat(v["effective_from"]) == start for v in versions):
        raise TariffValidationError({"effective_from": ["a version already starts then"]})
    new_version = {**version, "effective_from": start.isoformat()}
    index = sum(1 for v in versions if datetime.fromisoformat(v["effective_from"]) < start)
    versions.insert(index, new_version)
    try:
        engine_tariff = parse_tariff({**tariff.document, "versions": versions})
    except TariffError as error:
        raise _invalid(error, rename=(f"versions[{index}]", "version")) from None
    before = _tariff_snapshot(tariff)
    _copy_fields(tariff, engine_tariff)
    tariff.save()
    revision = _revise(
        actor=actor,
        tariff=tariff,
        kind=TariffRevision.Kind.VERSION_SCHEDULED,
        note=note or f"price change from {start.isoformat(sep=' ', timespec='minutes')}",
    )
    audit_record(
        actor=actor,
        action="tariff.schedule_version",
        obj=tariff,
        before=before,
        after={
            **_tariff_snapshot(tariff),
            "revision": revision.number,
            "effective_from": start.isoformat(),
        },
    )
    return tariff


def _whole_day_windows_as_defaults(document: dict[str, Any]) -> dict[str, Any]:
    """URDB imports can hold a 00:00-24:00 window (a day of one period), which the document
    format refuses (start equals end); the same rule without windows and with that
    ``default_period`` rates identically."""
    for version in document.get("versions", []):
        for component in ("energy", "demand"):
            for rule in (version.get(component) or {}).get("schedule", []):
                windows = rule.get("windows", [])
                if len(windows) == 1 and (windows[0]["start"], windows[0]["end"]) == (
                    "00:00",
                    "24:00",
                ):
                    rule["windows"] = []
                    rule["default_period"] = windows[0]["period"]
    return document


def tariff_load(text: str) -> LoadedTariff:
    """Parse JSON text (meterpay document or URDB rate, auto-detected) without storing it."""
    try:
        return load_tariff_text(text)
    except TariffError as error:
        raise _invalid(error) from None


@transaction.atomic
def tariff_import(
    *, actor: object, organisation: Organisation, text: str, note: str = ""
) -> tuple[Tariff, LoadedTariff]:
    """Create a tariff from JSON text; URDB warnings are kept with the revision and returned."""
    loaded = tariff_load(text)
    source = "URDB rate" if loaded.source_format == "urdb" else "meterpay document"
    tariff = tariff_create(
        actor=actor,
        organisation=organisation,
        document=_whole_day_windows_as_defaults(tariff_to_dict(loaded.tariff)),
        note=note or f"imported from a {source}",
        kind=TariffRevision.Kind.IMPORTED,
        warnings=loaded.warnings,
    )
    return tariff, loaded


def tariff_export(*, tariff: Tariff) -> str:
    """The stored document as JSON text (``meterpay-tariff/1``), ready to import elsewhere."""
    return tariff_to_json(validate_document(tariff.document))


@transaction.atomic
def tariff_set_archived(*, actor: object, tariff: Tariff, archived: bool) -> Tariff:
    """Archived tariffs cannot be assigned any more; existing assignments keep rating."""
    tariff = _locked(tariff)
    if tariff.archived == archived:
        return tariff
    before = _tariff_snapshot(tariff)
    tariff.archived = archived
    tariff.save(update_fields=["archived", "updated_at"])
    audit_record(
        actor=actor,
        action="tariff.archive" if archived else "tariff.unarchive",
        obj=tariff,
        before=before,
        after=_tariff_snapshot(tariff),
    )
    return tariff


def _decimal_or_none(value: object, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise TariffValidationError({field: ["must be a number"]}) from None
    if not number.is_finite() or number <= 0:
        raise TariffValidationError({field: ["must be a positive number"]})
    return number


def _check_terms_fit(
    engine_tariff: EngineTariff,
    *,
    thresholds: Sequence[Decimal],
    capacity_kva: Decimal | None,
    contract_demand_kw: Decimal | None,
) -> None:
    for version in engine_tariff.versions:
        tiers = (version.energy.tiers if version.energy else None) or (
            version.water.tiers if version.water else None
        )
        if thresholds and tiers is not None and len(thresholds) != len(tiers.steps) - 1:
            raise TariffValidationError(
                {"tier_thresholds": [f"the tariff has {len(tiers.steps) - 1} tier thresholds"]}
            )
        basic = version.basic
        if basic is None:
            continue
        if basic.method == "capacity" and capacity_kva is None:
            raise TariffValidationError(
                {"capacity_kva": ["the tariff charges by capacity: give the account's kVA"]}
            )
        if (
            basic.overrun_threshold is not None or basic.minimum_fraction is not None
        ) and contract_demand_kw is None:
            raise TariffValidationError(
                {"contract_demand_kw": ["the tariff's demand charge needs the contract demand"]}
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentTerms:
    """The per-account terms of an assignment, as given (strings or decimals)."""

    tier_threshold_scale: Decimal | str | None = None
    tier_thresholds: Sequence[Decimal | str] = ()
    capacity_kva: Decimal | str | None = None
    contract_demand_kw: Decimal | str | None = None


def _assignable(tariff: Tariff, account: Account) -> None:
    if tariff.organisation_id != account.organisation_id:
        raise TariffValidationError({"tariff": ["tariff belongs to another organisation"]})
    if tariff.archived:
        raise TariffValidationError({"tariff": ["an archived tariff cannot be assigned"]})
    if account.status == Account.Status.CLOSED:
        raise TariffValidationError({"account": ["the account is closed"]})


def _apply_terms(
    assignment: AccountTariff, terms: AssignmentTerms, engine_tariff: EngineTariff
) -> None:
    """Validate ``terms`` against the tariff and set them on ``assignment``."""
    scale = _decimal_or_none(terms.tier_threshold_scale, "tier_threshold_scale") or Decimal(1)
    thresholds = [_decimal_or_none(t, "tier_thresholds") for t in terms.tier_thresholds]
    clean_thresholds = [t for t in thresholds if t is not None]
    if any(b <= a for a, b in pairwise(clean_thresholds)):
        raise TariffValidationError({"tier_thresholds": ["must increase"]})
    capacity = _decimal_or_none(terms.capacity_kva, "capacity_kva")
    contract = _decimal_or_none(terms.contract_demand_kw, "contract_demand_kw")
    _check_terms_fit(
        engine_tariff,
        thresholds=clean_thresholds,
        capacity_kva=capacity,
        contract_demand_kw=contract,
    )
    assignment.tier_threshold_scale = scale
    assignment.tier_thresholds = [str(t) for t in clean_thresholds]
    assignment.capacity_kva = capacity
    assignment.contract_demand_kw = contract


@transaction.atomic
def account_tariff_assign(
    *,
    actor: object,
    account: Account,
    tariff: Tariff,
    effective_from: datetime | None = None,
    tier_threshold_scale: Decimal | str | None = None,
    tier_thresholds: Sequence[Decimal | str] = (),
    capacity_kva: Decimal | str | None = None,
    contract_demand_kw: Decimal | str | None = None,
) -> AccountTariff:
    """Rate ``account`` with ``tariff`` for the tariff's utility from ``effective_from`` (now).

    An earlier assignment of the same utility stays in the history and applies until then;
    assigning again at the same moment replaces that assignment's tariff and terms.
    """
    if tariff.organisation_id != account.organisation_id:
        raise TariffValidationError({"tariff": ["tariff belongs to another organisation"]})
    tariff = Tariff.objects.get(pk=tariff.pk)  # the caller's copy may be stale (archived since)
    _assignable(tariff, account)
    start = (effective_from or timezone.now()).replace(microsecond=0)
    assignment = (
        AccountTariff.objects.select_for_update()
        .filter(account=account, utility=tariff.utility, effective_from=start)
        .first()
    )
    before = snapshot(assignment) if assignment is not None else None
    if assignment is None:
        assignment = AccountTariff(
            organisation_id=account.organisation_id,
            account=account,
            utility=tariff.utility,
            effective_from=start,
        )
    assignment.tariff = tariff
    _apply_terms(
        assignment,
        AssignmentTerms(
            tier_threshold_scale=tier_threshold_scale,
            tier_thresholds=tier_thresholds,
            capacity_kva=capacity_kva,
            contract_demand_kw=contract_demand_kw,
        ),
        validate_document(tariff.document),
    )
    assignment.created_by_label = _actor_label(actor)
    assignment.full_clean()
    assignment.save()
    assignment.refresh_from_db()  # decimals as stored (scale and places of the columns)
    audit_record(
        actor=actor,
        action="account.tariff_assign",
        obj=assignment,
        before=before,
        after=snapshot(assignment),
    )
    return assignment


@transaction.atomic
def account_tariffs_assign_new(
    *,
    actor: object,
    tariff: Tariff,
    assignments: Sequence[tuple[Account, datetime, AssignmentTerms]],
) -> list[AccountTariff]:
    """Many first-time assignments of one tariff at once (onboarding a site, the demo).

    The same rules as :func:`account_tariff_assign`, the tariff validated once and the rows
    written together; each still gets its audit event. Refuses an (account, utility, time)
    that already has an assignment: changing one goes through :func:`account_tariff_assign`.
    """
    tariff = Tariff.objects.get(pk=tariff.pk)
    engine_tariff = validate_document(tariff.document)
    rows = []
    for account, effective_from, terms in assignments:
        _assignable(tariff, account)
        row = AccountTariff(
            organisation_id=account.organisation_id,
            account=account,
            tariff=tariff,
            utility=tariff.utility,
            effective_from=effective_from.replace(microsecond=0),
            created_by_label=_actor_label(actor),
        )
        _apply_terms(row, terms, engine_tariff)
        rows.append(row)
    taken = AccountTariff.objects.filter(
        account_id__in=[row.account_id for row in rows], utility=tariff.utility
    ).values_list("account_id", "effective_from")
    if {(row.account_id, row.effective_from) for row in rows} & set(taken):
        raise TariffValidationError({"effective_from": ["an account already has a tariff then"]})
    created = AccountTariff.objects.bulk_create(rows)
    for row in AccountTariff.objects.filter(pk__in=[row.pk for row in created]):
        audit_record(actor=actor, action="account.tariff_assign", obj=row, after=snapshot(row))
    return created


def document_text(document: object) -> str:
    """A document as the editor shows it (indented, non-ASCII kept)."""
    return json.dumps(document, ensure_ascii=False, indent=2)


@transaction.atomic
def default_tariff_set(
    *, actor: object, organisation: Organisation, utility: str, tariff: Tariff | None
) -> DefaultTariff | None:
    """Rate the organisation's accounts that have no tariff assigned for ``utility`` with
    ``tariff`` (None: such accounts are not rated)."""
    if utility not in Utility.values:
        raise TariffValidationError({"utility": f"unknown utility {utility!r}"})
    current = (
        DefaultTariff.objects.select_for_update()
        .filter(organisation=organisation, utility=utility)
        .first()
    )
    before = None if current is None else {"tariff": current.tariff_id}
    if tariff is None:
        if current is not None:
            current.delete()
            audit_record(
                actor=actor, action="tariff.default_clear", obj=current, before=before, after=None
            )
        return None
    tariff = Tariff.objects.get(pk=tariff.pk)  # as stored (archived or not)
    if tariff.organisation_id != organisation.pk:
        raise TariffValidationError({"tariff": "a tariff of another organisation"})
    if tariff.utility != utility:
        raise TariffValidationError({"tariff": f"this is not a {utility} tariff"})
    if tariff.archived:
        raise TariffValidationError({"tariff": "an archived tariff cannot be the default"})
    row, _ = DefaultTariff.objects.update_or_create(
        organisation=organisation, utility=utility, defaults={"tariff": tariff}
    )
    audit_record(
        actor=actor,
        action="tariff.default_set",
        obj=row,
        before=before,
        after={"tariff": tariff.pk},
    )
    return row


@transaction.atomic
def default_tariffs_create(
    *,
    actor: object,
    organisation: Organisation,
    electricity: object | None = None,
    water: object | None = None,
) -> list[DefaultTariff]:
    """Store these tariff documents and make them the organisation's default tariffs."""
    rows = []
    for utility, document in ((Utility.ELECTRICITY, electricity), (Utility.WATER, water)):
        if document is None:
            continue
        tariff = tariff_create(
            actor=actor, organisation=organisation, document=document, note="default tariff"
        )
        row = default_tariff_set(
            actor=actor, organisation=organisation, utility=utility, tariff=tariff
        )
        assert row is not None
        rows.append(row)
    return rows
