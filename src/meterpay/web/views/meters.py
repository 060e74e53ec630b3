from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from meterpay.apps.control import credit as control_credit
from meterpay.apps.control import selectors as control_selectors
from meterpay.apps.control import services as control_services
from meterpay.apps.control.models import BalanceDiscrepancy, MeterCommand
from meterpay.apps.meters import services
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.organisations.access import access_object, org_objects, require
from meterpay.apps.readings import selectors as reading_selectors
from meterpay.core.roles import Permission
from meterpay.web.forms import GatewayForm, MeterForm, MeterReplaceForm
from meterpay.web.views.base import (
    deny,
    page,
    querystring_without_page,
    redirect_next,
    staff_view,
)


@staff_view()
def meter_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    meters = org_objects(user, Meter).select_related(
        "gateway", "room__floor__building", "account__customer", "link"
    )
    kind = request.GET.get("kind", "")
    installed = request.GET.get("installed", "yes")
    q = request.GET.get("q", "").strip()
    if kind:
        meters = meters.filter(kind=kind)
    if installed == "yes":
        meters = meters.filter(removed_on__isnull=True)
    elif installed == "no":
        meters = meters.filter(removed_on__isnull=False)
    if q:
        meters = meters.filter(
            Q(address__icontains=q) | Q(serial_number__icontains=q) | Q(room__number__icontains=q)
        )
    return render(
        request,
        "web/meters/list.html",
        {
            "section": "meters",
            "meters": page(request, meters),
            "kind": kind,
            "installed": installed,
            "q": q,
            "kinds": Meter.Kind.choices,
            "query": querystring_without_page(request),
        },
    )


@staff_view(Permission.MANAGE_METERS)
def meter_create(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = MeterForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            meter = services.meter_create(
                actor=user, organisation=user.organisation, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Meter %(address)s added.") % {"address": meter.address})
            return redirect("console:meter_detail", meter.pk)
    return render(
        request, "web/form_page.html", {"section": "meters", "form": form, "title": _("Add meter")}
    )


@staff_view()
def meter_detail(request: HttpRequest, meter_id: int) -> HttpResponse:
    user: Any = request.user
    meter = access_object(
        user,
        Meter.objects.select_related(
            "gateway", "room__floor__building__site", "account__customer", "replaced_by"
        ),
        meter_id,
    )
    form = MeterReplaceForm(request.POST or None)
    if request.method == "POST":
        if not user.can(Permission.MANAGE_METERS):
            deny()
        if form.is_valid():
            try:
                new = services.meter_replace(actor=user, old=meter, **form.cleaned_data)
            except ValidationError as exc:
                messages.error(request, "; ".join(exc.messages))
            else:
                messages.success(
                    request,
                    _("Meter replaced; the account carries on with %(address)s.")
                    % {"address": new.address},
                )
                return redirect("console:meter_detail", new.pk)
    replaces = getattr(meter, "replaces", None) if hasattr(meter, "replaces") else None
    return render(
        request,
        "web/meters/detail.html",
        {
            "section": "meters",
            "meter": meter,
            "replace_form": form,
            "replaces": replaces,
            "meter_balance": control_selectors.meter_balance(meter),
            "discrepancies": control_selectors.discrepancies(meters=[meter], open_only=False)[:10],
            **_connectivity_context(meter),
        },
    )


@staff_view()
def balance_discrepancies(request: HttpRequest) -> HttpResponse:
    """Meter balances the platform's records do not explain; finance clears them."""
    user: Any = request.user
    if request.method == "POST":
        if not user.can(Permission.RECORD_PAYMENTS):
            deny()
        flag = access_object(user, BalanceDiscrepancy, request.POST.get("discrepancy"))
        try:
            control_credit.discrepancy_clear(
                actor=user, discrepancy=flag, note=request.POST.get("note", "")
            )
            messages.success(request, _("Discrepancy cleared."))
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        return redirect_next(request, "console:balance_discrepancies")
    show_all = request.GET.get("show") == "all"
    flags = control_selectors.discrepancies(
        base=org_objects(user, BalanceDiscrepancy), open_only=not show_all
    )
    return render(
        request,
        "web/meters/discrepancies.html",
        {
            "section": "meters",
            "flags": page(request, flags, 50),
            "show_all": show_all,
        },
    )


def _connectivity_context(meter: Meter) -> dict[str, Any]:
    """Link state, reading history (for the chart), supply state and the command log."""
    since = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=47)
    series = reading_selectors.consumption_by_bucket(meter, since=since)
    unit = "m³" if meter.kind == Meter.Kind.WATER else "kWh"
    return {
        "link": reading_selectors.meter_link(meter),
        "supply": control_selectors.supply_state(meter),
        "reads": reading_selectors.register_reads(meter, limit=10),
        "flagged": reading_selectors.flagged_intervals(meter, limit=10),
        "commands": control_selectors.command_log(meter, limit=20),
        "command_kinds": _command_kinds(meter),
        "chart": {
            "labels": [timezone.localtime(at).strftime("%m-%d %H:%M") for at, _ in series],
            "values": [str(value) for _, value in series],
            "unit": unit,
        },
    }


def _command_kinds(meter: Meter) -> list[tuple[str, str, bool]]:
    """(kind, label, dangerous) of the buttons this meter offers."""
    if meter.kind == Meter.Kind.WATER:
        return [("valve_close", _("Close valve"), True), ("valve_open", _("Open valve"), False)]
    return [("relay_trip", _("Trip relay"), True), ("relay_close", _("Close relay"), False)]


@staff_view()
def meter_commands(request: HttpRequest, meter_id: int) -> HttpResponse:
    """GET: the meter's full command log. POST: send a relay/valve command (with confirmation)."""
    user: Any = request.user
    meter = access_object(user, Meter.objects.select_related("gateway"), meter_id)
    if request.method == "POST":
        require(user, Permission.MANAGE_METERS)
        try:
            command = control_services.meter_command_request(
                actor=user,
                meter=meter,
                kind=request.POST.get("kind", ""),
                reason=request.POST.get("reason", "").strip(),
                requested_by=MeterCommand.Requester.OPERATOR,
            )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(
                request,
                _("%(command)s queued; the gateway sends it and confirms it with a status read.")
                % {"command": command.get_kind_display()},
            )
        return redirect("console:meter_detail", meter.pk)
    return render(
        request,
        "web/meters/commands.html",
        {
            "section": "meters",
            "meter": meter,
            "commands": page(request, control_selectors.command_log(meter, limit=None)),
        },
    )


@staff_view()
def gateway_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    gateways = (
        org_objects(user, Gateway)
        .select_related("site", "link")
        .annotate(meter_count=Count("meters", filter=Q(meters__removed_on__isnull=True)))
        .order_by("identifier")
        .order_by("identifier")
    )
    return render(
        request,
        "web/meters/gateways.html",
        {"section": "gateways", "gateways": page(request, gateways)},
    )


@staff_view(Permission.MANAGE_METERS)
def gateway_create(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    form = GatewayForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            gateway = services.gateway_create(actor=user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Gateway %(id)s added.") % {"id": gateway.identifier})
            return redirect("console:gateway_detail", gateway.pk)
    return render(
        request,
        "web/form_page.html",
        {"section": "gateways", "form": form, "title": _("Add gateway")},
    )


@staff_view()
def gateway_detail(request: HttpRequest, gateway_id: int) -> HttpResponse:
    user: Any = request.user
    gateway = access_object(user, Gateway.objects.select_related("site", "link"), gateway_id)
    meters = gateway.meters.filter(removed_on__isnull=True).select_related(
        "room__floor__building", "account", "link"
    )
    return render(
        request,
        "web/meters/gateway_detail.html",
        {"section": "gateways", "gateway": gateway, "meters": meters},
    )
