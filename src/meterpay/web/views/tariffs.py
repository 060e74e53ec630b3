"""Tariffs in the console: list, detail (versions, price summary, history), JSON editor with
validation by field path, price-change scheduling, import/export, rating preview, and the
tariffs of an account."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.customers.models import Account
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.tariffs import selectors, services
from meterpay.apps.tariffs.models import AccountTariff, Tariff, TariffRevision, Utility
from meterpay.core.roles import Permission
from meterpay.core.tariffs import (
    AccountTerms,
    ReadingsError,
    TariffError,
    parse_interval_csv,
    parse_tariff,
)
from meterpay.core.tariffs import Tariff as EngineTariff
from meterpay.web.views.base import deny, is_htmx, page, staff_view

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
NEW_TARIFF_TEMPLATE: dict[str, Any] = {
    "format": "meterpay-tariff/1",
    "id": "new-tariff",
    "name": "New tariff",
    "currency": "CNY",
    "commodity": "electricity",
    "versions": [
        {
            "effective_from": "2026-01-01T00:00:00",
            "energy": {
                "periods": [
                    {"name": "flat", "price": "0.6508"},
                    {"name": "peak", "price": "1.0846"},
                    {"name": "valley", "price": "0.2603"},
                ],
                "schedule": [
                    {
                        "months": "1-12",
                        "windows": [
                            {"start": "08:00", "end": "11:00", "period": "peak"},
                            {"start": "18:00", "end": "23:00", "period": "peak"},
                            {"start": "23:00", "end": "07:00", "period": "valley"},
                        ],
                    }
                ],
            },
        }
    ],
}
PERIOD_COLOURS = {
    "sharp": "#b42318",
    "critical": "#b42318",
    "peak": "#f79009",
    "flat": "#0b6e4f",
    "shoulder": "#0b6e4f",
    "valley": "#2e90fa",
    "off_peak": "#2e90fa",
    "deep_valley": "#1849a9",
}


# --------------------------------------------------------------------------- forms


def _json_field(label: Any, rows: int = 24) -> forms.CharField:
    return forms.CharField(
        label=label,
        widget=forms.Textarea(attrs={"rows": rows, "spellcheck": "false", "class": "code"}),
    )


class DocumentForm(forms.Form):
    document = _json_field(gettext_lazy("Tariff document (JSON)"))
    note = forms.CharField(label=gettext_lazy("Note"), max_length=300, required=False)

    def clean_document(self) -> Any:
        return _decode_json(self.cleaned_data["document"])


class ScheduleForm(forms.Form):
    effective_from = forms.DateTimeField(
        label=gettext_lazy("Effective from (local time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    version = _json_field(gettext_lazy("New prices: the version's components (JSON)"), rows=18)
    note = forms.CharField(label=gettext_lazy("Note"), max_length=300, required=False)

    def clean_version(self) -> Any:
        return _decode_json(self.cleaned_data["version"])


class ImportForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("JSON file"), required=False)
    text = _json_field(gettext_lazy("or paste JSON"), rows=10)
    note = forms.CharField(label=gettext_lazy("Note"), max_length=300, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                raise ValidationError(_("The file is larger than 2 MB."))
            data["text"] = upload.read().decode("utf-8", errors="replace")
        if not (data.get("text") or "").strip():
            raise ValidationError(_("Choose a file or paste a tariff."))
        return data


class PreviewForm(forms.Form):
    profile = forms.ChoiceField(label=gettext_lazy("Sample load profile"), required=False)
    month = forms.CharField(
        label=gettext_lazy("Month"), widget=forms.DateInput(attrs={"type": "month"})
    )
    step = forms.TypedChoiceField(
        label=gettext_lazy("Interval"),
        choices=[(60, gettext_lazy("hourly")), (15, gettext_lazy("15 minutes"))],
        coerce=int,
        initial=60,
    )
    readings = forms.FileField(
        label=gettext_lazy("or a readings CSV (timestamp,kwh[,kvarh,kw])"), required=False
    )
    account = forms.TypedChoiceField(
        label=gettext_lazy("Account terms"), coerce=int, required=False, empty_value=None
    )
    capacity_kva = forms.DecimalField(
        label=gettext_lazy("Capacity (kVA)"), required=False, min_value=0, max_digits=12
    )
    contract_demand_kw = forms.DecimalField(
        label=gettext_lazy("Contract demand (kW)"), required=False, min_value=0, max_digits=12
    )
    tier_threshold_scale = forms.DecimalField(
        label=gettext_lazy("Tier threshold scale"), required=False, min_value=0, max_digits=8
    )
    compare_revision = forms.TypedChoiceField(
        label=gettext_lazy("Re-rate: compare with revision"),
        coerce=int,
        required=False,
        empty_value=None,
    )
    # The editor's unsaved draft: rated instead of the stored document, compared with it.
    document = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, tariff: Tariff, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        versions = tariff.document.get("versions", [])
        # Only ask for the terms the tariff refers to.
        self.show_demand_terms = any("basic" in v or "demand" in v for v in versions)
        self.show_tier_terms = any(
            "tiers" in (v.get("energy") or {}) or "tiers" in (v.get("water") or {})
            for v in versions
        )
        self.fields["profile"].choices = [
            (key, _(label))
            for key, (label, _shape, utility) in selectors.SAMPLE_PROFILES.items()
            if utility == tariff.utility
        ]
        accounts = (
            AccountTariff.objects.filter(tariff=tariff)
            .select_related("account__customer")
            .order_by("account__number")
        )
        seen: dict[int, str] = {}
        for item in accounts[:300]:
            seen.setdefault(item.account_id, f"{item.account.number} {item.account.customer.name}")
        self.fields["account"].choices = [("", _("sample terms (below)")), *seen.items()]
        self.fields["compare_revision"].choices = [("", "—")] + [
            (number, f"r{number}")
            for number in tariff.revisions.order_by("-number").values_list("number", flat=True)[1:]
        ]

    def clean_month(self) -> tuple[int, int]:
        try:
            moment = datetime.strptime(self.cleaned_data["month"], "%Y-%m")
        except ValueError:
            raise ValidationError(_("Give a month as YYYY-MM.")) from None
        if not 1900 <= moment.year <= 2200:
            raise ValidationError(_("Give a month as YYYY-MM."))
        return moment.year, moment.month


def _decode_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValidationError(
            _("Not valid JSON: %(problem)s (line %(line)d, column %(column)d).")
            % {"problem": error.msg, "line": error.lineno, "column": error.colno}
        ) from None


def _path_errors(error: ValidationError) -> list[tuple[str, str]]:
    """``(field path, problem)`` pairs, as the editor shows them."""
    if hasattr(error, "error_dict"):
        return [(path, " ".join(problems)) for path, problems in error.message_dict.items()]
    return [("", message) for message in error.messages]


def _form_errors(form: forms.Form) -> list[tuple[str, str]]:
    labels = {name: str(field.label) for name, field in form.fields.items()}
    return [(labels.get(name, ""), " ".join(problems)) for name, problems in form.errors.items()]


def _engine(tariff: Tariff) -> EngineTariff:
    return selectors.engine_tariff(tariff)


# --------------------------------------------------------------------------- pages


@staff_view()
def tariff_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    show_archived = request.GET.get("archived") == "1"
    utility = request.GET.get("utility", "")
    tariffs = (
        org_objects(user, Tariff)
        .annotate(account_count=Count("assignments__account", distinct=True))
        .order_by("archived", "utility", "name", "id")
    )
    if not show_archived:
        tariffs = tariffs.filter(archived=False)
    if utility in Utility.values:
        tariffs = tariffs.filter(utility=utility)
    now = services.local_now(user.organisation)
    rows = []
    tariff_page = page(request, tariffs)
    for tariff in tariff_page:
        starts = [datetime.fromisoformat(v["effective_from"]) for v in tariff.document["versions"]]
        current = max((s for s in starts if s <= now), default=None)
        upcoming = min((s for s in starts if s > now), default=None)
        rows.append({"tariff": tariff, "current": current, "upcoming": upcoming})
    return render(
        request,
        "web/tariffs/list.html",
        {
            "section": "tariffs",
            "rows": rows,
            "tariffs": tariff_page,
            "utility": utility,
            "utilities": Utility.choices,
            "show_archived": show_archived,
        },
    )


@staff_view(Permission.MANAGE_TARIFFS)
def tariff_create(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    initial = {"document": services.document_text(NEW_TARIFF_TEMPLATE)}
    form = DocumentForm(request.POST or None, initial=initial)
    errors: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        try:
            tariff = services.tariff_create(
                actor=user,
                organisation=user.organisation,
                document=form.cleaned_data["document"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            errors = _path_errors(exc)
        else:
            messages.success(request, _("Tariff %(name)s created.") % {"name": tariff.name})
            return redirect("console:tariff_detail", tariff.pk)
    return render(
        request,
        "web/tariffs/editor.html",
        {"section": "tariffs", "form": form, "errors": errors, "tariff": None},
    )


@staff_view()
def tariff_detail(request: HttpRequest, tariff_id: int) -> HttpResponse:
    user: Any = request.user
    tariff = access_object(user, Tariff, tariff_id)
    if request.method == "POST":
        if not user.can(Permission.MANAGE_TARIFFS):
            deny()
        action = request.POST.get("action")
        if action in ("archive", "unarchive"):
            services.tariff_set_archived(actor=user, tariff=tariff, archived=action == "archive")
            messages.success(request, _("Saved."))
        return redirect("console:tariff_detail", tariff.pk)
    engine = _engine(tariff)
    now = services.local_now(user.organisation)
    versions = selectors.version_rows(engine, now)
    revisions = tariff.revisions.select_related("created_by").order_by("-number")
    latest_warnings = next((r.warnings for r in revisions if r.warnings), [])
    assignments = (
        AccountTariff.objects.filter(tariff=tariff)
        .select_related("account__customer")
        .order_by("account__number", "-effective_from")
    )
    tou = selectors.tou_day(engine, now.date())
    return render(
        request,
        "web/tariffs/detail.html",
        {
            "section": "tariffs",
            "tariff": tariff,
            "engine": engine,
            "versions": versions,
            "revisions": revisions,
            "latest_warnings": latest_warnings,
            "assignments": assignments[:25],
            "assignment_count": assignments.count(),
            "tou_chart": _tou_chart(tou),
            "preview_form": PreviewForm(
                tariff=tariff, initial=_preview_initial(tariff, engine, now)
            ),
        },
    )


def _tou_chart(tou: dict[str, Any] | None) -> dict[str, Any] | None:
    if tou is None:
        return None
    return {
        "day": tou["day"],
        "day_type": tou["day_type"],
        "labels": [hour["hour"] for hour in tou["hours"]],
        "periods": [hour["period"] for hour in tou["hours"]],
        "prices": [hour["price"] for hour in tou["hours"]],
        "colours": [PERIOD_COLOURS.get(hour["period"], "#667085") for hour in tou["hours"]],
        "legend": [
            {"period": period, "price": price, "colour": PERIOD_COLOURS.get(period, "#667085")}
            for period, price in dict(
                (hour["period"], hour["price"]) for hour in tou["hours"]
            ).items()
        ],
    }


@staff_view(Permission.MANAGE_TARIFFS)
def tariff_edit(request: HttpRequest, tariff_id: int) -> HttpResponse:
    user: Any = request.user
    tariff = access_object(user, Tariff, tariff_id)
    form = DocumentForm(
        request.POST or None, initial={"document": services.document_text(tariff.document)}
    )
    errors: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.tariff_update_document(
                actor=user,
                tariff=tariff,
                document=form.cleaned_data["document"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            errors = _path_errors(exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("console:tariff_detail", tariff.pk)
    engine = _engine(tariff)
    now = services.local_now(user.organisation)
    return render(
        request,
        "web/tariffs/editor.html",
        {
            "section": "tariffs",
            "form": form,
            "errors": errors,
            "tariff": tariff,
            "preview_form": PreviewForm(
                tariff=tariff, initial=_preview_initial(tariff, engine, now)
            ),
        },
    )


@staff_view(Permission.MANAGE_TARIFFS)
def tariff_schedule(request: HttpRequest, tariff_id: int) -> HttpResponse:
    user: Any = request.user
    tariff = access_object(user, Tariff, tariff_id)
    now = services.local_now(user.organisation)
    latest = dict(tariff.document["versions"][-1])
    latest.pop("effective_from", None)
    next_month = (now.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    form = ScheduleForm(
        request.POST or None,
        initial={"effective_from": next_month, "version": services.document_text(latest)},
    )
    errors: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        try:
            services.tariff_version_schedule(
                actor=user,
                tariff=tariff,
                effective_from=form.cleaned_data["effective_from"],
                version=form.cleaned_data["version"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            errors = _path_errors(exc)
        else:
            messages.success(request, _("Price change scheduled."))
            return redirect("console:tariff_detail", tariff.pk)
    return render(
        request,
        "web/tariffs/schedule.html",
        {"section": "tariffs", "tariff": tariff, "form": form, "errors": errors, "now": now},
    )


@staff_view(Permission.MANAGE_TARIFFS)
def tariff_import(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = ImportForm(request.POST or None, request.FILES or None)
    errors: list[tuple[str, str]] = []
    if request.method == "POST" and form.is_valid():
        try:
            tariff, loaded = services.tariff_import(
                actor=user,
                organisation=user.organisation,
                text=form.cleaned_data["text"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            errors = _path_errors(exc)
        else:
            messages.success(
                request,
                _("Imported %(name)s from a %(source)s.")
                % {
                    "name": tariff.name,
                    "source": _("URDB rate")
                    if loaded.source_format == "urdb"
                    else _("meterpay document"),
                },
            )
            for warning in loaded.warnings:
                messages.warning(request, _("Not imported: %(what)s") % {"what": warning})
            return redirect("console:tariff_detail", tariff.pk)
    return render(
        request,
        "web/tariffs/import.html",
        {"section": "tariffs", "form": form, "errors": errors},
    )


@staff_view()
def tariff_export(request: HttpRequest, tariff_id: int) -> HttpResponse:
    user: Any = request.user
    tariff = access_object(user, Tariff, tariff_id)
    response = HttpResponse(
        services.tariff_export(tariff=tariff), content_type="application/json; charset=utf-8"
    )
    slug = tariff.document.get("id") or f"tariff-{tariff.pk}"
    response["Content-Disposition"] = f'attachment; filename="{slug}.json"'
    return response


# --------------------------------------------------------------------------- preview


def _preview_initial(tariff: Tariff, engine: EngineTariff, now: datetime) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "month": now.strftime("%Y-%m"),
        "profile": "water" if tariff.utility == Utility.WATER else "shop",
        "step": 60,
    }
    if any(v.basic is not None for v in engine.versions):
        initial.update(profile="office", capacity_kva="400", contract_demand_kw="100", step=15)
    return initial


def _preview_terms(form: PreviewForm, tariff: Tariff, user: Any) -> AccountTerms:
    data = form.cleaned_data
    if data.get("account"):
        account = access_object(user, Account, data["account"])
        assignment = (
            AccountTariff.objects.filter(account=account, tariff=tariff)
            .order_by("-effective_from")
            .first()
        )
        return selectors.account_terms(account, assignment)
    return AccountTerms(
        tier_threshold_scale=data.get("tier_threshold_scale") or Decimal(1),
        capacity_kva=data.get("capacity_kva"),
        contract_demand_kw=data.get("contract_demand_kw"),
        room_area_m2=Decimal(30),
    )


@staff_view()
def tariff_preview(request: HttpRequest, tariff_id: int) -> HttpResponse:
    """Rate a sample month (or uploaded readings) with the tariff, or with the editor's draft."""
    user: Any = request.user
    tariff = access_object(user, Tariff, tariff_id)
    engine = _engine(tariff)
    now = services.local_now(user.organisation)
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = PreviewForm(
        data, request.FILES or None, tariff=tariff, initial=_preview_initial(tariff, engine, now)
    )
    errors: list[tuple[str, str]] = []
    preview = None
    if data is not None and form.is_valid():
        try:
            preview = _run_preview(form, tariff, engine, user)
        except ValidationError as exc:
            errors = _path_errors(exc)
    elif data is not None:
        errors = _form_errors(form)
    context = {
        "section": "tariffs",
        "tariff": tariff,
        "form": form,
        "errors": errors,
        "preview": preview,
        "chart": _daily_chart(preview),
    }
    if is_htmx(request):
        return render(request, "web/tariffs/_preview.html", context)
    return render(request, "web/tariffs/preview.html", context)


def _run_preview(form: PreviewForm, tariff: Tariff, engine: EngineTariff, user: Any) -> Any:
    data = form.cleaned_data
    rated, original, compared_with = engine, None, ""
    if data.get("document"):
        try:
            rated = parse_tariff(_decode_json(data["document"]))
        except TariffError as error:
            raise ValidationError({error.path or "document": [error.problem]}) from None
        original, compared_with = engine, _("the saved tariff")
    elif data.get("compare_revision"):
        revision = TariffRevision.objects.get(tariff=tariff, number=data["compare_revision"])
        original, compared_with = parse_tariff(revision.document), f"r{revision.number}"
    upload = data.get("readings")
    if upload is not None:
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError({"readings": [_("The file is larger than 2 MB.")]})
        try:
            intervals = parse_interval_csv(upload.read().decode("utf-8-sig", errors="replace"))
        except ReadingsError as error:
            raise ValidationError({f"readings row {error.row}": [error.problem]}) from None
    else:
        year, month = data["month"]
        profile = data.get("profile") or ("water" if tariff.utility == "water" else "shop")
        intervals = selectors.sample_intervals(
            profile, year=year, month=month, step_minutes=data["step"]
        )
    try:
        return selectors.rate_preview(
            tariff=rated,
            intervals=intervals,
            account=_preview_terms(form, tariff, user),
            original=original,
            compared_with=compared_with,
        )
    except (ValueError, ArithmeticError) as error:  # RatingError names the interval
        raise ValidationError({"rating": [str(error)]}) from None


def _daily_chart(preview: Any) -> dict[str, Any] | None:
    if preview is None:
        return None
    return {
        "labels": [day[5:] for day, _cost in preview.daily_costs],
        "values": [str(cost) for _day, cost in preview.daily_costs],
        "currency": preview.bill.currency,
    }


# --------------------------------------------------------------------------- account tariffs


class AssignForm(forms.Form):
    tariff = forms.TypedChoiceField(label=gettext_lazy("Tariff"), coerce=int)
    effective_from = forms.DateTimeField(
        label=gettext_lazy("Effective from"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        required=False,
        help_text=gettext_lazy("Empty: now."),
    )
    tier_threshold_scale = forms.DecimalField(
        label=gettext_lazy("Tier threshold scale"),
        required=False,
        min_value=Decimal("0.0001"),
        max_digits=8,
        decimal_places=4,
        help_text=gettext_lazy("e.g. 1.5 for a household of five or more; empty: 1."),
    )
    tier_thresholds = forms.CharField(
        label=gettext_lazy("Tier thresholds (override)"),
        required=False,
        help_text=gettext_lazy("Comma-separated, e.g. 2760, 4800; empty: the tariff's."),
    )
    capacity_kva = forms.DecimalField(
        label=gettext_lazy("Capacity (kVA)"), required=False, max_digits=10, decimal_places=2
    )
    contract_demand_kw = forms.DecimalField(
        label=gettext_lazy("Contract demand (kW)"),
        required=False,
        max_digits=10,
        decimal_places=2,
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tariff"].choices = [
            (t.pk, f"{t.name} ({t.get_utility_display()})")
            for t in org_objects(user, Tariff).filter(archived=False)
        ]

    def clean_tier_thresholds(self) -> list[str]:
        text = self.cleaned_data["tier_thresholds"]
        text = text.replace("\uff0c", ",")  # a Chinese full-width comma
        return [part.strip() for part in text.split(",") if part.strip()]


@staff_view()
def account_tariffs(request: HttpRequest, account_id: int) -> HttpResponse:
    user: Any = request.user
    account = access_object(user, Account.objects.select_related("customer"), account_id)
    form = AssignForm(request.POST or None, user=user)
    errors: list[tuple[str, str]] = []
    if request.method == "POST":
        if not user.can(Permission.MANAGE_TARIFFS):
            deny()
        if form.is_valid():
            data = form.cleaned_data
            tariff = access_object(user, Tariff, data["tariff"])
            try:
                services.account_tariff_assign(
                    actor=user,
                    account=account,
                    tariff=tariff,
                    effective_from=data["effective_from"],
                    tier_threshold_scale=data["tier_threshold_scale"],
                    tier_thresholds=data["tier_thresholds"],
                    capacity_kva=data["capacity_kva"],
                    contract_demand_kw=data["contract_demand_kw"],
                )
            except ValidationError as exc:
                errors = _path_errors(exc)
            else:
                messages.success(request, _("Tariff assigned."))
                return redirect("console:account_detail", account.pk)
    now = timezone.now()
    assignments = list(selectors.account_assignments(account))
    in_force = selectors.current_assignments(assignments, now)
    return render(
        request,
        "web/tariffs/account.html",
        {
            "section": "accounts",
            "account": account,
            "assignments": assignments,
            "in_force": in_force,
            "form": form,
            "errors": errors,
            "now_utc": now,
        },
    )
