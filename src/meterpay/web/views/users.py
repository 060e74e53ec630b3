"""Staff users and tenant logins of the organisation (owners, by the manage_users permission)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from meterpay.apps.customers.models import Customer
from meterpay.apps.organisations.access import access_object, org_objects
from meterpay.apps.users import services
from meterpay.apps.users.models import User
from meterpay.core.roles import STAFF_ROLES, Permission
from meterpay.web.views.base import staff_view

STAFF_ROLE_CHOICES = [(r.value, User.RoleChoice(r.value).label) for r in STAFF_ROLES]


class StaffUserForm(forms.Form):
    username = forms.CharField(max_length=150, label=gettext_lazy("username"))
    email = forms.EmailField(required=False, label=gettext_lazy("e-mail"))
    role = forms.ChoiceField(choices=STAFF_ROLE_CHOICES, label=gettext_lazy("role"))
    password = forms.CharField(widget=forms.PasswordInput, label=gettext_lazy("initial password"))

    def clean_password(self) -> str:
        password = str(self.cleaned_data["password"])
        validate_password(password)
        return password


class TenantUserForm(forms.Form):
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.none(), label=gettext_lazy("customer")
    )
    username = forms.CharField(max_length=150, label=gettext_lazy("username"))
    email = forms.EmailField(required=False, label=gettext_lazy("e-mail"))
    password = forms.CharField(widget=forms.PasswordInput, label=gettext_lazy("initial password"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = org_objects(user, Customer)  # type: ignore[attr-defined]

    def clean_password(self) -> str:
        password = str(self.cleaned_data["password"])
        validate_password(password)
        return password


@staff_view(Permission.MANAGE_USERS)
def user_list(request: HttpRequest) -> HttpResponse:
    actor: Any = request.user
    staff_form = StaffUserForm(
        request.POST if request.POST.get("form") == "staff" else None, prefix="staff"
    )
    tenant_form = TenantUserForm(
        request.POST if request.POST.get("form") == "tenant" else None, prefix="tenant", user=actor
    )
    if request.method == "POST":
        try:
            if request.POST.get("form") == "staff" and staff_form.is_valid():
                services.staff_user_create(
                    actor=actor, organisation=actor.organisation, **staff_form.cleaned_data
                )
                messages.success(request, _("User created."))
                return redirect("console:user_list")
            if request.POST.get("form") == "tenant" and tenant_form.is_valid():
                services.tenant_user_create(actor=actor, **tenant_form.cleaned_data)
                messages.success(request, _("Tenant login created."))
                return redirect("console:user_list")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
    users = org_objects(actor, User).select_related("customer").order_by("role", "username")
    return render(
        request,
        "web/users/list.html",
        {
            "section": "users",
            "users": users,
            "staff_form": staff_form,
            "tenant_form": tenant_form,
            "roles": STAFF_ROLE_CHOICES,
        },
    )


@staff_view(Permission.MANAGE_USERS)
def user_change(request: HttpRequest, user_id: int) -> HttpResponse:
    actor: Any = request.user
    user = access_object(actor, User, user_id)
    if request.method == "POST":
        try:
            if "role" in request.POST:
                services.user_role_set(actor=actor, user=user, role=request.POST["role"])
            elif "active" in request.POST:
                services.user_active_set(
                    actor=actor, user=user, active=request.POST["active"] == "1"
                )
            messages.success(request, _("Saved."))
        except (ValidationError, ValueError) as exc:
            messages.error(request, "; ".join(getattr(exc, "messages", [str(exc)])))
    return redirect("console:user_list")
