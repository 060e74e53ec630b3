"""What the month end is made from, in the console: charge items and the accounts they apply
to, public-area groups (公摊) and their members, line-loss groups (线损) and the grid meter's
readings, print templates and branding, and the sites' bill schedules. Thin: forms parse,
``apps.billing`` services check and write (audited); their messages are shown as they are."""

from __future__ import annotations

import base64
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.billing.charges import (
    ChargeItemError,
    charge_item_save,
    charge_subscribe,
    charge_unsubscribe,
)
from meterpay.apps.billing.documents import (
    IMAGE_LIMIT,
    bill_branding_save,
    bill_template_preview_html,
    bill_template_save,
)
from meterpay.apps.billing.models import (
    AllocationGroup,
    AllocationMember,
    AllocationRule,
    BillBranding,
    BillSchedule,
    BillTemplate,
    ChargeItem,
    ChargeSubscription,
    GridReading,
    LossGroup,
    Settlement,
    Utility,
)
from meterpay.apps.billing.printing import TEMPLATE_DIR, TemplateProblem, default_template
from meterpay.apps.billing.runs import bill_schedule_save
from meterpay.apps.billing.sharing import (
    PHOTO_LIMIT,
    SharingError,
    allocation_group_save,
    allocation_members_set,
    grid_reading_enter,
    loss_group_save,
)
from meterpay.apps.customers.models import Account
from meterpay.apps.meters.models import Meter
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.sites.models import Site
from meterpay.apps.tariffs.models import Tariff
from meterpay.core.roles import Permission
from meterpay.web.views.base import deny, is_htmx, page, staff_view
from meterpay.web.views.billing import price_text, problems, quantity_text

DATE = {"type": "date"}
CHOOSE = gettext_lazy("— choose —")


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs=DATE, format="%Y-%m-%d")


def _field_error(form: forms.Form, field: str, message: str) -> None:
    form.add_error(field if field in form.fields else None, message)


def _account_label(account: Account) -> str:
    rooms = ", ".join(r.number for r in account.rooms.all())
    return f"{account.number} · {account.customer.name}" + (f" · {rooms}" if rooms else "")


def _accounts(user: Any, site_id: int | None = None) -> Any:
    rows = (
        org_objects(user, Account)
        .exclude(status__in=[Account.Status.PRESET, Account.Status.CLOSED])
        .select_related("customer")
        .prefetch_related("rooms")
        .order_by("number")
    )
    if site_id is not None:
        rows = rows.filter(rooms__floor__building__site_id=site_id).distinct()
    return rows


def _meter_label(meter: Meter) -> str:
    room = meter.room
    where = f"{room.floor.building.site.name} {room.number}" if room else _("not placed")
    return f"{meter.address} · {meter.get_kind_display()} · {where}"


def _meters(user: Any) -> Any:
    return (
        org_objects(user, Meter)
        .filter(removed_on__isnull=True)
        .select_related("room__floor__building__site")
        .order_by("room__floor__building__site__name", "address")
    )


def _meter_site(meter: Meter) -> int | None:
    return meter.room.floor.building.site_id if meter.room_id else None


# --- charge items ---------------------------------------------------------------------------


class PriceField(forms.CharField):
    """A unit price in yuan, up to six decimals, passed on as text (the service parses it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=24, **kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "placeholder": "0.00", "size": 12})

    def clean(self, value: Any) -> Any:
        text = str(super().clean(value) or "").strip()
        if not text:
            return ""
        try:
            price = Decimal(text)
        except InvalidOperation:
            raise ValidationError(
                _("%(value)s is not a price like 12.50.") % {"value": text}
            ) from None
        if not price.is_finite() or price < 0:
            raise ValidationError(_("A price is a number of 0 or more."))
        if -price.as_tuple().exponent > 6:  # type: ignore[operator]
            raise ValidationError(_("A price has at most six decimals."))
        return text


class ChargeItemForm(forms.Form):
    code = forms.SlugField(
        label=gettext_lazy("code"),
        max_length=40,
        help_text=gettext_lazy("Letters, digits and dashes, unique: e.g. rent, property-fee."),
    )
    name = forms.CharField(label=gettext_lazy("name"), max_length=100)
    basis = forms.ChoiceField(label=gettext_lazy("basis"), choices=ChargeItem.Basis.choices)
    unit_price = PriceField(
        label=gettext_lazy("unit price"),
        help_text=gettext_lazy("Per cycle for a fixed amount, per m² per cycle, or per kWh / m³."),
    )
    frequency = forms.ChoiceField(
        label=gettext_lazy("frequency"), choices=ChargeItem.Frequency.choices
    )
    day_of_month = forms.IntegerField(
        label=gettext_lazy("cycle starts on day"),
        min_value=1,
        max_value=28,
        initial=1,
        help_text=gettext_lazy(
            "1 to 28: a monthly cycle runs from this day to the day before it next month."
        ),
    )
    utility = forms.ChoiceField(
        label=gettext_lazy("metered utility"),
        choices=[("", "—"), *Utility.choices],
        required=False,
        help_text=gettext_lazy(
            "For a charge per unit: which meters' consumption it is charged on."
        ),
    )
    settlement = forms.ChoiceField(
        label=gettext_lazy("settlement"), choices=Settlement.choices, initial=Settlement.BILL
    )
    revenue = forms.ChoiceField(
        label=gettext_lazy("revenue account"),
        choices=ChargeItem.Revenue.choices,
        initial=ChargeItem.Revenue.OTHER,
    )
    prorate = forms.BooleanField(
        label=gettext_lazy("prorate at move-in and move-out"), required=False, initial=True
    )
    valid_from = forms.DateField(
        label=gettext_lazy("valid from"), required=False, widget=_date_input()
    )
    valid_to = forms.DateField(
        label=gettext_lazy("valid to (inclusive)"), required=False, widget=_date_input()
    )
    active = forms.BooleanField(label=gettext_lazy("active"), required=False, initial=True)


def _item_initial(item: ChargeItem) -> dict[str, Any]:
    return {
        **{
            name: getattr(item, name)
            for name in (
                "code",
                "name",
                "basis",
                "frequency",
                "day_of_month",
                "utility",
                "settlement",
                "revenue",
                "prorate",
                "valid_from",
                "valid_to",
                "active",
            )
        },
        "unit_price": price_text(item.unit_price_micro),
    }


@staff_view()
def charge_item_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    items = org_objects(user, ChargeItem).annotate(n=Count("subscriptions")).order_by("name", "id")
    shown = request.GET.get("show", "")
    if shown != "all":
        items = items.filter(active=True)
    rows = page(request, items)
    for item in rows:
        item.price_text = price_text(item.unit_price_micro)
    return render(
        request,
        "web/billing/charge_items.html",
        {"section": "billing", "tab": "charges", "items": rows, "show": shown},
    )


def _charge_item_form_page(request: HttpRequest, item: ChargeItem | None) -> HttpResponse:
    user: Any = request.user
    form = ChargeItemForm(
        request.POST if request.method == "POST" else None,
        initial=_item_initial(item) if item else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = charge_item_save(
                actor=user,
                organisation_id=user.organisation_id,
                values=form.cleaned_data,
                item=item,
            )
        except ChargeItemError as exc:
            _field_error(form, exc.field, str(exc))
        else:
            messages.success(request, _("Charge item %(name)s saved.") % {"name": saved.name})
            return redirect("console:charge_item_detail", saved.pk)
    return render(
        request,
        "web/billing/charge_item_form.html",
        {"section": "billing", "tab": "charges", "form": form, "item": item},
    )


@staff_view(Permission.MANAGE_CHARGES)
def charge_item_create(request: HttpRequest) -> HttpResponse:
    return _charge_item_form_page(request, None)


@staff_view(Permission.MANAGE_CHARGES)
def charge_item_edit(request: HttpRequest, item_id: int) -> HttpResponse:
    item = access_object(request.user, ChargeItem, item_id)
    return _charge_item_form_page(request, item)


class SubscribeForm(forms.Form):
    accounts = forms.ModelMultipleChoiceField(
        label=gettext_lazy("accounts"),
        queryset=Account.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text=gettext_lazy("Ctrl- or Cmd-click to pick several."),
    )
    site = forms.ModelChoiceField(
        label=gettext_lazy("or every open account of the site"),
        queryset=Site.objects.none(),
        required=False,
        empty_label="—",
    )
    start_on = forms.DateField(label=gettext_lazy("from"), required=False, widget=_date_input())
    end_on = forms.DateField(
        label=gettext_lazy("to (inclusive)"), required=False, widget=_date_input()
    )
    unit_price = PriceField(
        label=gettext_lazy("own unit price"),
        required=False,
        help_text=gettext_lazy("Empty: the item's price."),
    )

    def __init__(self, *args: Any, user: Any, item: ChargeItem, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = ChargeSubscription.objects.filter(item=item).values("account_id")
        accounts = _accounts(user).exclude(pk__in=taken)
        self.fields["accounts"].queryset = accounts  # type: ignore[attr-defined]
        self.fields["accounts"].label_from_instance = _account_label  # type: ignore[attr-defined]
        self.fields["site"].queryset = org_objects(user, Site).order_by("name")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("accounts") and not data.get("site"):
            raise ValidationError(_("Choose accounts, or a site."))
        return data


@staff_view()
def charge_item_detail(request: HttpRequest, item_id: int) -> HttpResponse:
    """An item and the accounts it applies to; manage_charges adds and removes them."""
    user: Any = request.user
    item = access_object(user, ChargeItem, item_id)
    can_change = user.can(Permission.MANAGE_CHARGES)
    action = request.POST.get("action", "")
    if request.method == "POST" and not can_change:
        deny()
    form = SubscribeForm(request.POST if action == "subscribe" else None, user=user, item=item)
    if action == "unsubscribe":
        subscription = access_object(
            user, ChargeSubscription.objects.filter(item=item), request.POST.get("subscription")
        )
        charge_unsubscribe(actor=user, subscription=subscription)
        messages.success(
            request,
            _("Account %(account)s no longer pays %(item)s.")
            % {"account": subscription.account.number, "item": item.name},
        )
        return redirect("console:charge_item_detail", item.pk)
    if action == "subscribe" and form.is_valid():
        data = form.cleaned_data
        accounts = list(data["accounts"])
        if data["site"] is not None:
            accounts += list(_accounts(user, data["site"].pk).filter(status=Account.Status.OPEN))
        try:
            added = charge_subscribe(
                actor=user,
                item=item,
                accounts=accounts,
                start_on=data["start_on"],
                end_on=data["end_on"],
                unit_price=data["unit_price"] or None,
            )
        except ChargeItemError as exc:
            _field_error(form, exc.field, str(exc))
        else:
            messages.success(request, _("%(count)s accounts added.") % {"count": added})
            return redirect("console:charge_item_detail", item.pk)
    subscriptions = (
        item.subscriptions.select_related("account__customer")
        .prefetch_related("account__rooms")
        .order_by("account__number")
    )
    rows = page(request, subscriptions, 100)
    for sub in rows:
        sub.price_text = "" if sub.unit_price_micro is None else price_text(sub.unit_price_micro)
        sub.rooms = ", ".join(r.number for r in sub.account.rooms.all())
    return render(
        request,
        "web/billing/charge_item.html",
        {
            "section": "billing",
            "tab": "charges",
            "item": item,
            "price": price_text(item.unit_price_micro),
            "subscriptions": rows,
            "form": form,
            "can_change": can_change,
        },
    )


# --- public-area groups ---------------------------------------------------------------------


class AllocationGroupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("name"), max_length=100)
    site = forms.ModelChoiceField(
        label=gettext_lazy("site"), queryset=Site.objects.none(), empty_label=CHOOSE
    )
    master_meter = forms.ModelChoiceField(
        label=gettext_lazy("public-area meter"),
        queryset=Meter.objects.none(),
        empty_label=CHOOSE,
        help_text=gettext_lazy("A meter of the site whose consumption the members share."),
    )
    rule = forms.ChoiceField(
        label=gettext_lazy("rule"), choices=AllocationRule.choices, initial=AllocationRule.AREA
    )
    tariff = forms.ModelChoiceField(
        label=gettext_lazy("tariff"),
        queryset=Tariff.objects.none(),
        required=False,
        empty_label=gettext_lazy("(the organisation's default tariff)"),
    )
    settlement = forms.ChoiceField(
        label=gettext_lazy("settlement"), choices=Settlement.choices, initial=Settlement.BILL
    )
    active = forms.BooleanField(label=gettext_lazy("active"), required=False, initial=True)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = org_objects(user, Site).order_by("name")  # type: ignore[attr-defined]
        self.fields["master_meter"].queryset = _meters(user)  # type: ignore[attr-defined]
        self.fields["master_meter"].label_from_instance = _meter_label  # type: ignore[attr-defined]
        self.fields["tariff"].queryset = (  # type: ignore[attr-defined]
            org_objects(user, Tariff).filter(archived=False).order_by("name")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        site, meter = data.get("site"), data.get("master_meter")
        if site is not None and meter is not None and _meter_site(meter) != site.pk:
            self.add_error("master_meter", _("This meter is not at the site."))
        return data


@staff_view()
def allocation_group_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    groups = (
        org_objects(user, AllocationGroup)
        .select_related("site", "master_meter", "tariff")
        .annotate(n=Count("members"))
        .order_by("site__name", "name", "id")
    )
    return render(
        request,
        "web/billing/allocation_groups.html",
        {"section": "billing", "tab": "shared", "groups": page(request, groups)},
    )


def _allocation_form_page(request: HttpRequest, group: AllocationGroup | None) -> HttpResponse:
    user: Any = request.user
    initial = None
    if group is not None:
        initial = {
            "name": group.name,
            "site": group.site_id,
            "master_meter": group.master_meter_id,
            "rule": group.rule,
            "tariff": group.tariff_id,
            "settlement": group.settlement,
            "active": group.active,
        }
    form = AllocationGroupForm(
        request.POST if request.method == "POST" else None, user=user, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        try:
            saved = allocation_group_save(
                actor=user,
                organisation_id=user.organisation_id,
                values=form.cleaned_data,
                group=group,
            )
        except SharingError as exc:
            _field_error(form, exc.field, str(exc))
        else:
            messages.success(request, _("Group %(name)s saved.") % {"name": saved.name})
            return redirect("console:allocation_group_detail", saved.pk)
    return render(
        request,
        "web/billing/group_form.html",
        {
            "section": "billing",
            "tab": "shared",
            "form": form,
            "group": group,
            "title": _("Public-area group"),
            "help": [
                _(
                    "The public-area meter is rated with the group's tariff, else the "
                    "organisation's default tariff for its utility."
                ),
                _(
                    "By ratio: each member's agreed ratio. By room area: the area of the member's "
                    "rooms. By usage: what the member's own meters used. Equally: the same share "
                    "each."
                ),
                _(
                    "The shares add up exactly to the whole, to the fen; a member of a run "
                    "outside it is shared with but billed in its own run."
                ),
                _("Choose the members on the group's page after saving."),
            ],
            "list_url": "console:allocation_group_list",
            "detail_url": "console:allocation_group_detail",
        },
    )


@staff_view(Permission.MANAGE_CHARGES)
def allocation_group_create(request: HttpRequest) -> HttpResponse:
    return _allocation_form_page(request, None)


@staff_view(Permission.MANAGE_CHARGES)
def allocation_group_edit(request: HttpRequest, group_id: int) -> HttpResponse:
    group = access_object(request.user, AllocationGroup, group_id)
    return _allocation_form_page(request, group)


def _ratio(text: str, account: Account) -> Decimal | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise SharingError(
            "members",
            _("account %(account)s: %(value)s is not a ratio")
            % {"account": account.number, "value": text},
        ) from None
    if not value.is_finite():
        raise SharingError(
            "members",
            _("account %(account)s: %(value)s is not a ratio")
            % {"account": account.number, "value": text},
        )
    return value


@staff_view()
def allocation_group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    """A group and its members: the accounts of its site, ticked, with a ratio each."""
    user: Any = request.user
    group = access_object(
        user, AllocationGroup.objects.select_related("site", "master_meter", "tariff"), group_id
    )
    can_change = user.can(Permission.MANAGE_CHARGES)
    if request.method == "POST":
        if not can_change:
            deny()
        chosen = {int(pk) for pk in request.POST.getlist("member") if pk.isdigit()}
        accounts = {a.pk: a for a in org_objects(user, Account).filter(pk__in=chosen)}
        try:
            members = [
                (accounts[pk], _ratio(request.POST.get(f"ratio-{pk}", ""), accounts[pk]))
                for pk in sorted(accounts, key=lambda pk: accounts[pk].number)
            ]
            count = allocation_members_set(actor=user, group=group, members=members)
        except SharingError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("%(count)s members saved.") % {"count": count})
            return redirect("console:allocation_group_detail", group.pk)
    members = {m.account_id: m for m in AllocationMember.objects.filter(group=group)}
    candidates = list(_accounts(user, group.site_id))
    listed = {a.pk for a in candidates}
    candidates += list(
        org_objects(user, Account)
        .filter(pk__in=[pk for pk in members if pk not in listed])
        .select_related("customer")
        .prefetch_related("rooms")
    )
    rows = [
        {
            "account": account,
            "rooms": ", ".join(r.number for r in account.rooms.all()),
            "area": quantity_text(sum((r.area_m2 for r in account.rooms.all()), Decimal(0))),
            "member": account.pk in members,
            "ratio": ""
            if account.pk not in members or members[account.pk].ratio is None
            else quantity_text(members[account.pk].ratio),
        }
        for account in candidates
    ]
    return render(
        request,
        "web/billing/allocation_group.html",
        {
            "section": "billing",
            "tab": "shared",
            "group": group,
            "rows": rows,
            "member_count": len(members),
            "can_change": can_change,
            "meter_label": _meter_label(group.master_meter),
        },
    )


# --- line-loss groups and grid readings -------------------------------------------------------


class LossGroupForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("name"), max_length=100)
    site = forms.ModelChoiceField(
        label=gettext_lazy("site"), queryset=Site.objects.none(), empty_label=CHOOSE
    )
    utility = forms.ChoiceField(
        label=gettext_lazy("utility"), choices=Utility.choices, initial=Utility.ELECTRICITY
    )
    grid_meter_number = forms.CharField(
        label=gettext_lazy("grid meter number"),
        max_length=40,
        required=False,
        help_text=gettext_lazy("The supply company's meter, as printed on it."),
    )
    multiplier = forms.IntegerField(
        label=gettext_lazy("CT ratio / multiplier"), min_value=1, initial=1
    )
    meters = forms.ModelMultipleChoiceField(
        label=gettext_lazy("meters under the grid meter"),
        queryset=Meter.objects.none(),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text=gettext_lazy(
            "Empty: every meter of the utility at the site, public-area meters included."
        ),
    )
    rule = forms.ChoiceField(
        label=gettext_lazy("rule"), choices=AllocationRule.choices, initial=AllocationRule.USAGE
    )
    unit_price = PriceField(
        label=gettext_lazy("price of lost energy (per kWh or m³)"),
    )
    settlement = forms.ChoiceField(
        label=gettext_lazy("settlement"), choices=Settlement.choices, initial=Settlement.BILL
    )
    active = forms.BooleanField(label=gettext_lazy("active"), required=False, initial=True)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = org_objects(user, Site).order_by("name")  # type: ignore[attr-defined]
        self.fields["meters"].queryset = _meters(user)  # type: ignore[attr-defined]
        self.fields["meters"].label_from_instance = _meter_label  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        site = data.get("site")
        if site is not None:
            elsewhere = [m.address for m in data.get("meters") or [] if _meter_site(m) != site.pk]
            if elsewhere:
                self.add_error(
                    "meters",
                    _("Not at the site: %(meters)s.") % {"meters": ", ".join(elsewhere)},
                )
        return data


@staff_view()
def loss_group_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    groups = (
        org_objects(user, LossGroup)
        .select_related("site")
        .annotate(n=Count("meters", distinct=True), readings_n=Count("readings", distinct=True))
        .order_by("site__name", "name", "id")
    )
    listed = page(request, groups)
    for group in listed:
        group.price_text = price_text(group.unit_price_micro)
        group.last = group.readings.order_by("-read_on").first()
    return render(
        request,
        "web/billing/loss_groups.html",
        {"section": "billing", "tab": "loss", "groups": listed},
    )


def _loss_form_page(request: HttpRequest, group: LossGroup | None) -> HttpResponse:
    user: Any = request.user
    initial = None
    if group is not None:
        initial = {
            "name": group.name,
            "site": group.site_id,
            "utility": group.utility,
            "grid_meter_number": group.grid_meter_number,
            "multiplier": group.multiplier,
            "meters": list(group.meters.values_list("pk", flat=True)),
            "rule": group.rule,
            "unit_price": price_text(group.unit_price_micro),
            "settlement": group.settlement,
            "active": group.active,
        }
    form = LossGroupForm(
        request.POST if request.method == "POST" else None, user=user, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        meters = list(values.pop("meters"))
        try:
            saved = loss_group_save(
                actor=user,
                organisation_id=user.organisation_id,
                values=values,
                meters=meters,
                group=group,
            )
        except SharingError as exc:
            _field_error(form, exc.field, str(exc))
        else:
            messages.success(request, _("Group %(name)s saved.") % {"name": saved.name})
            return redirect("console:loss_group_detail", saved.pk)
    return render(
        request,
        "web/billing/group_form.html",
        {
            "section": "billing",
            "tab": "loss",
            "form": form,
            "group": group,
            "title": _("Line-loss group"),
            "help": [
                _(
                    "Grid consumption = (reading at the end - reading at the start) x the "
                    "multiplier; enter the grid meter's readings on the first day of each month."
                ),
                _(
                    "Loss = grid consumption - what every meter under it measured, public-area "
                    "meters included; loss rate = loss ÷ grid consumption."
                ),
                _(
                    "The loss, priced at the price of lost energy, is shared among the tenants "
                    "whose meters are under the grid meter."
                ),
                _(
                    "A negative loss (the meters under it measured more) points to a wrong "
                    "reading: it is shown on the run and never billed."
                ),
            ],
            "list_url": "console:loss_group_list",
            "detail_url": "console:loss_group_detail",
        },
    )


@staff_view(Permission.MANAGE_CHARGES)
def loss_group_create(request: HttpRequest) -> HttpResponse:
    return _loss_form_page(request, None)


@staff_view(Permission.MANAGE_CHARGES)
def loss_group_edit(request: HttpRequest, group_id: int) -> HttpResponse:
    group = access_object(request.user, LossGroup, group_id)
    return _loss_form_page(request, group)


#: Photo formats a browser shows (sniffed from the bytes, not taken from the upload's word).
_PHOTO_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def _photo_type(head: bytes) -> str:
    for magic, kind in _PHOTO_MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"heif"):
        return "image/heic"
    return ""


class GridReadingForm(forms.Form):
    read_on = forms.DateField(
        label=gettext_lazy("read on (start of the day)"),
        widget=_date_input(),
        help_text=gettext_lazy("A period's first day: 1 November for the start of November."),
    )
    reading = forms.DecimalField(
        label=gettext_lazy("register"), max_digits=16, decimal_places=4, min_value=0
    )
    notes = forms.CharField(
        label=gettext_lazy("notes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    photo = forms.FileField(
        label=gettext_lazy("photo of the register"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
        help_text=gettext_lazy("An image of at most 5 MB."),
    )

    def clean_photo(self) -> Any:
        photo = self.cleaned_data.get("photo")
        if photo is None:
            return None
        if photo.size > PHOTO_LIMIT:
            raise ValidationError(_("the photo is larger than 5 MB"))
        content = photo.read()
        kind = _photo_type(content[:16])
        if not kind:
            raise ValidationError(_("the photo must be an image (JPEG, PNG, GIF, WebP or HEIC)"))
        return content, kind


@staff_view()
def loss_group_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    """A line-loss group, its grid readings, and the form to enter one."""
    user: Any = request.user
    group = access_object(user, LossGroup.objects.select_related("site"), group_id)
    can_enter = user.can(Permission.ENTER_GRID_READINGS)
    if request.method == "POST" and not can_enter:
        deny()
    form = GridReadingForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        photo, photo_type = data["photo"] or (None, "")
        try:
            row = grid_reading_enter(
                actor=user,
                group=group,
                read_on=data["read_on"],
                reading=data["reading"],
                notes=data["notes"],
                photo=photo,
                photo_type=photo_type,
            )
        except SharingError as exc:
            _field_error(form, exc.field, str(exc))
        else:
            messages.success(
                request,
                _("Reading %(reading)s of %(day)s saved.")
                % {"reading": quantity_text(row.reading), "day": row.read_on},
            )
            return redirect("console:loss_group_detail", group.pk)
    readings = list(
        GridReading.objects.filter(group=group)
        .select_related("entered_by")
        .defer("photo")
        .annotate(has_photo=ExpressionWrapper(Q(photo__isnull=False), output_field=BooleanField()))
        .order_by("read_on")
    )
    previous = None
    for reading in readings:
        reading.value = quantity_text(reading.reading)
        reading.used = (
            ""
            if previous is None
            else quantity_text((reading.reading - previous.reading) * group.multiplier)
        )
        previous = reading
    readings.reverse()
    meters = [_meter_label(m) for m in group.meters.select_related("room__floor__building__site")]
    return render(
        request,
        "web/billing/loss_group.html",
        {
            "section": "billing",
            "tab": "loss",
            "group": group,
            "price": price_text(group.unit_price_micro),
            "meters": meters,
            "readings": readings,
            "form": form,
            "can_enter": can_enter,
            "can_change": user.can(Permission.MANAGE_CHARGES),
            "unit": "m³" if group.utility == Utility.WATER else "kWh",
        },
    )


@staff_view()
def grid_reading_photo(request: HttpRequest, reading_id: int) -> HttpResponse:
    """The photo of a grid reading, as it was uploaded (images only, shown inline)."""
    reading = access_object(request.user, GridReading, reading_id)
    if not reading.photo or not reading.photo_type.startswith("image/"):
        raise Http404("no photo")
    kind = "image/svg+xml" if "svg" in reading.photo_type else reading.photo_type
    response = HttpResponse(bytes(reading.photo), content_type=kind)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    disposition = "attachment" if "svg" in kind else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="grid-{reading.read_on}"'
    return response


# --- print templates and branding -------------------------------------------------------------

LANGUAGE_CHOICES = [("zh-hans", "简体中文"), ("en", "English")]
#: On screen the preview is a sheet of paper with the printed bills' base stylesheet.
SCREEN_SHEET = (
    "html { background: #e5e9ef; }"
    " body { background: #fff; width: 210mm; box-sizing: border-box; padding: 13mm;"
    " margin: 12px auto; box-shadow: 0 1px 4px rgba(0, 0, 0, .15); }"
)


@functools.cache
def _print_stylesheet() -> str:
    return (TEMPLATE_DIR / "bill.css").read_text(encoding="utf-8")


def _as_printed(html: str) -> str:
    """The preview HTML with the print stylesheet first (a template's own styles win)."""
    style = f"<style>{_print_stylesheet()}\n{SCREEN_SHEET}</style>"
    head = re.search(r"<head[^>]*>", html, re.I)
    if head is None:
        return style + html
    return html[: head.end()] + style + html[head.end() :]


class TemplateForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("name"), max_length=100)
    language = forms.ChoiceField(label=gettext_lazy("language"), choices=LANGUAGE_CHOICES)
    is_default = forms.BooleanField(
        label=gettext_lazy("print this language's bills with it"),
        required=False,
        help_text=gettext_lazy("The language's other templates stop being used."),
    )
    body = forms.CharField(
        label=gettext_lazy("template (HTML)"),
        strip=False,
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "wrap": "off"}),
    )


@staff_view()
def bill_template_list(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    templates = org_objects(user, BillTemplate).order_by("language", "name")
    used = {t.language for t in templates if t.is_default}
    return render(
        request,
        "web/billing/templates.html",
        {
            "section": "billing",
            "tab": "templates",
            "templates": templates,
            "languages": [
                {"code": code, "label": label, "custom": code in used}
                for code, label in LANGUAGE_CHOICES
            ],
        },
    )


def _template_form_page(request: HttpRequest, template: BillTemplate | None) -> HttpResponse:
    user: Any = request.user
    if template is not None:
        initial = {
            "name": template.name,
            "language": template.language,
            "is_default": template.is_default,
            "body": template.body,
        }
    else:
        language = request.GET.get("language", "zh-hans")
        language = language if language in dict(LANGUAGE_CHOICES) else "zh-hans"
        initial = {
            "name": _("Our bill (%(language)s)") % {"language": dict(LANGUAGE_CHOICES)[language]},
            "language": language,
            "is_default": True,
            "body": default_template(language),
        }
    form = TemplateForm(request.POST if request.method == "POST" else None, initial=initial)
    page_context = {
        "section": "billing",
        "tab": "templates",
        "form": form,
        "template": template,
        "syntax_help": _(
            "Django's template language with the bill's fields, e.g. %(example)s. Every value "
            "is escaped; files, links to other sites and scripts are not allowed."
        )
        % {"example": "{{ bill.number }}, {% for line in section.lines %}"},
    }
    if request.method == "POST" and request.POST.get("action") == "preview":
        problem, html = "", ""
        try:
            html = _as_printed(
                bill_template_preview_html(
                    source=request.POST.get("body", ""),
                    language=request.POST.get("language", "zh-hans"),
                )
            )
        except TemplateProblem as exc:
            problem = str(exc)
        context = {"problem": problem, "html": html}
        if is_htmx(request):
            return render(request, "web/billing/_template_preview.html", context)
        return render(
            request,
            "web/billing/template_form.html",
            {
                "section": "billing",
                "tab": "templates",
                "form": form,
                "template": template,
                **context,
            },
        )
    if request.method == "POST" and form.is_valid():
        try:
            saved = bill_template_save(
                actor=user,
                organisation_id=user.organisation_id,
                values=form.cleaned_data,
                template=template,
            )
        except TemplateProblem as exc:
            form.add_error("body", str(exc))
        else:
            messages.success(request, _("Template %(name)s saved.") % {"name": saved.name})
            return redirect("console:bill_template_edit", saved.pk)
    return render(request, "web/billing/template_form.html", page_context)


@staff_view(Permission.MANAGE_BILL_TEMPLATES)
def bill_template_create(request: HttpRequest) -> HttpResponse:
    return _template_form_page(request, None)


@staff_view(Permission.MANAGE_BILL_TEMPLATES)
def bill_template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = access_object(request.user, BillTemplate, template_id)
    return _template_form_page(request, template)


class BrandingForm(forms.Form):
    address = forms.CharField(label=gettext_lazy("address"), max_length=200, required=False)
    phone = forms.CharField(label=gettext_lazy("phone"), max_length=40, required=False)
    bank_account = forms.CharField(
        label=gettext_lazy("bank account"),
        max_length=120,
        required=False,
        help_text=gettext_lazy("Bank, account name and number, as printed on the bill."),
    )
    payment_instructions = forms.CharField(
        label=gettext_lazy("payment instructions"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    logo = forms.FileField(
        label=gettext_lazy("logo"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/svg+xml"}),
        help_text=gettext_lazy("PNG, JPEG or SVG, at most 1 MB."),
    )
    remove_logo = forms.BooleanField(label=gettext_lazy("remove the logo"), required=False)
    seal = forms.FileField(
        label=gettext_lazy("seal"),
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/svg+xml"}),
        help_text=gettext_lazy("A PNG with a transparent background prints best."),
    )
    remove_seal = forms.BooleanField(label=gettext_lazy("remove the seal"), required=False)


def _upload(upload: Any, field: str) -> tuple[bytes | None, str]:
    if upload is None:
        return None, ""
    if upload.size > IMAGE_LIMIT:  # refused before it is read
        raise TemplateProblem(_("%(field)s: the image is larger than 1 MB") % {"field": field})
    return upload.read(), upload.content_type or ""


def _image_uri(content: Any, content_type: str) -> str:
    if not content:
        return ""
    return f"data:{content_type};base64,{base64.b64encode(bytes(content)).decode()}"


@staff_view()
def bill_branding(request: HttpRequest) -> HttpResponse:
    """What every printed bill carries: address, phone, bank account, logo and seal."""
    user: Any = request.user
    can_change = user.can(Permission.MANAGE_BILL_TEMPLATES)
    if request.method == "POST" and not can_change:
        deny()
    row = org_objects(user, BillBranding).first()
    initial = {
        name: getattr(row, name, "")
        for name in ("address", "phone", "bank_account", "payment_instructions")
    }
    form = BrandingForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            logo, logo_type = _upload(data["logo"], _("logo"))
            seal, seal_type = _upload(data["seal"], _("seal"))
            bill_branding_save(
                actor=user,
                organisation_id=user.organisation_id,
                values={key: data[key] for key in (*initial, "remove_logo", "remove_seal")},
                logo=logo,
                logo_type=logo_type,
                seal=seal,
                seal_type=seal_type,
            )
        except (TemplateProblem, ValidationError) as exc:
            form.add_error(None, str(exc) if isinstance(exc, TemplateProblem) else exc)
        else:
            messages.success(request, _("Branding saved."))
            return redirect("console:bill_branding")
    if not can_change:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "web/billing/branding.html",
        {
            "section": "billing",
            "tab": "templates",
            "form": form,
            "can_change": can_change,
            "logo": _image_uri(row.logo, row.logo_type) if row else "",
            "seal": _image_uri(row.seal, row.seal_type) if row else "",
        },
    )


# --- schedules --------------------------------------------------------------------------------


@staff_view()
def bill_schedules(request: HttpRequest) -> HttpResponse:
    """Each site's monthly run: the day it is made, and whether it is issued at once."""
    user: Any = request.user
    can_change = user.can(Permission.MANAGE_CHARGES)
    if request.method == "POST":
        if not can_change:
            deny()
        site = access_object(user, Site, request.POST.get("site"))
        day = request.POST.get("day_of_month", "").strip()
        try:
            bill_schedule_save(
                actor=user,
                site=site,
                day_of_month=int(day) if day.isdigit() else 0,
                issue=request.POST.get("issue") == "on",
                active=request.POST.get("active") == "on",
            )
        except ValidationError as exc:
            for problem in problems(exc):
                messages.error(request, f"{site.name}: {problem}")
        else:
            messages.success(request, _("Schedule of %(site)s saved.") % {"site": site.name})
        return redirect("console:bill_schedules")
    schedules = {s.site_id: s for s in org_objects(user, BillSchedule)}
    rows = [
        {"site": site, "schedule": schedules.get(site.pk)}
        for site in org_objects(user, Site).order_by("name")
    ]
    return render(
        request,
        "web/billing/schedules.html",
        {"section": "billing", "tab": "schedules", "rows": rows, "can_change": can_change},
    )
