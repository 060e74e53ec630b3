from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from meterpay.apps.audit.models import AuditEvent
from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.customers.selectors import room_status_counts, rooms_with_status
from meterpay.apps.meters.models import Gateway, Meter
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.sites import services
from meterpay.apps.sites.models import Building, Floor, Holiday, Room, Site
from meterpay.core.roles import Permission
from meterpay.web.forms import BuildingForm, FloorForm, RoomForm, SiteForm
from meterpay.web.views.base import staff_view


@staff_view()
def home(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    accounts = org_objects(user, Account)
    status_counts = {
        row["status"]: row["n"] for row in accounts.values("status").annotate(n=Count("id"))
    }
    context = {
        "section": "home",
        "counts": {
            "sites": org_objects(user, Site).count(),
            "rooms": org_objects(user, Room).count(),
            "customers": org_objects(user, Customer).count(),
            "meters": org_objects(user, Meter).filter(removed_on__isnull=True).count(),
            "gateways": org_objects(user, Gateway).count(),
        },
        "account_statuses": [
            (value, label, status_counts.get(value, 0)) for value, label in Account.Status.choices
        ],
        "room_counts": room_status_counts(rooms_with_status(user)),
        "recent_events": org_objects(user, AuditEvent).select_related("actor")[:8]
        if user.can(Permission.VIEW_AUDIT)
        else [],
    }
    return render(request, "web/home.html", context)


@staff_view()
def site_tree(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    floors = org_objects(user, Floor).annotate(room_count=Count("rooms")).order_by("level")
    buildings = (
        org_objects(user, Building)
        .prefetch_related(Prefetch("floors", queryset=floors))
        .order_by("name")
    )
    sites = org_objects(user, Site).prefetch_related(Prefetch("buildings", queryset=buildings))
    forms = None
    if user.can(Permission.MANAGE_SITES):
        forms = {
            "site": SiteForm(prefix="site"),
            "building": BuildingForm(prefix="building", user=user),
            "floor": FloorForm(prefix="floor", user=user),
            "room": RoomForm(prefix="room", user=user),
        }
    return render(
        request, "web/sites/tree.html", {"section": "sites", "sites": sites, "forms": forms}
    )


@staff_view(Permission.MANAGE_SITES)
def site_add(request: HttpRequest, what: str) -> HttpResponse:
    user: Any = request.user
    if request.method != "POST":
        return redirect("console:site_tree")
    try:
        if what == "site":
            form: Any = SiteForm(request.POST, prefix="site")
            if form.is_valid():
                services.site_create(
                    actor=user, organisation=user.organisation, **form.cleaned_data
                )
        elif what == "building":
            form = BuildingForm(request.POST, prefix="building", user=user)
            if form.is_valid():
                services.building_create(actor=user, **form.cleaned_data)
        elif what == "floor":
            form = FloorForm(request.POST, prefix="floor", user=user)
            if form.is_valid():
                services.floor_create(actor=user, **form.cleaned_data)
        elif what == "room":
            form = RoomForm(request.POST, prefix="room", user=user)
            if form.is_valid():
                services.room_create(actor=user, **form.cleaned_data)
        else:
            return redirect("console:site_tree")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("console:site_tree")
    if form.is_valid():
        messages.success(request, _("Saved."))
    else:
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    return redirect("console:site_tree")


@staff_view()
def site_holidays(request: HttpRequest, site_id: int) -> HttpResponse:
    """A site's holiday calendar: time-of-use tariffs rate these days as holidays."""
    user: Any = request.user
    site = access_object(user, Site, site_id)
    if request.method == "POST":
        if not user.can(Permission.MANAGE_SITES):
            raise PermissionDenied
        if request.POST.get("remove"):
            holiday = access_object(user, Holiday.objects.filter(site=site), request.POST["remove"])
            services.holiday_remove(actor=user, holiday=holiday)
            messages.success(request, _("Holiday removed."))
        else:
            days, problems = _parse_holiday_lines(request.POST.get("lines", ""))
            if problems:
                for problem in problems:
                    messages.error(request, problem)
            else:
                added = services.holidays_add(actor=user, site=site, days=days)
                messages.success(request, _("%(n)d holidays added.") % {"n": len(added)})
        return redirect("console:site_holidays", site.pk)
    return render(
        request,
        "web/sites/holidays.html",
        {"section": "sites", "site": site, "holidays": site.holidays.all()},
    )


def _parse_holiday_lines(text: str) -> tuple[list[tuple[date, str]], list[str]]:
    """Lines of ``YYYY-MM-DD name``; every bad line is named, and then nothing is added."""
    days, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        first, _sep, name = line.partition(" ")
        try:
            days.append((date.fromisoformat(first), name.strip()))
        except ValueError:
            problems.append(
                _("Line %(n)d: %(text)s is not a date (YYYY-MM-DD).") % {"n": number, "text": first}
            )
    return days, problems
