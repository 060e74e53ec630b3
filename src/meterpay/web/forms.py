from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from meterpay.apps.customers.models import Account, Customer
from meterpay.apps.imports.models import ImportBatch
from meterpay.apps.meters.models import Gateway, Meter, Protocol
from meterpay.apps.organisations.access import org_objects
from meterpay.apps.sites.models import Building, Floor, Room, Site


class CustomerForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Customer
        fields = ["kind", "name", "phone", "email", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class SiteForm(forms.ModelForm):  # type: ignore[type-arg]
    kind = forms.ChoiceField(choices=Site.Kind.choices, label=_("kind"))

    class Meta:
        model = Site
        fields = ["name", "kind", "address"]


class BuildingForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none(), label=_("site"))
    name = forms.CharField(max_length=120, label=_("name"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = org_objects(user, Site)  # type: ignore[attr-defined]


class FloorForm(forms.Form):
    building = forms.ModelChoiceField(queryset=Building.objects.none(), label=_("building"))
    name = forms.CharField(max_length=40, label=_("name"))
    level = forms.IntegerField(label=_("level"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["building"].queryset = org_objects(user, Building).select_related("site")  # type: ignore[attr-defined]


class RoomForm(forms.Form):
    floor = forms.ModelChoiceField(queryset=Floor.objects.none(), label=_("floor"))
    number = forms.CharField(max_length=40, label=_("number"))
    kind = forms.ChoiceField(choices=Room.Kind.choices, label=_("type"))
    area_m2 = forms.DecimalField(max_digits=10, decimal_places=2, min_value=0, label=_("area (m²)"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["floor"].queryset = org_objects(user, Floor).select_related("building__site")  # type: ignore[attr-defined]


class GatewayForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.none(), label=_("site"))
    identifier = forms.CharField(max_length=64, label=_("identifier"))
    kind = forms.ChoiceField(choices=Gateway.Kind.choices, label=_("kind"))
    protocol = forms.ChoiceField(choices=Protocol.choices, label=_("protocol"))
    name = forms.CharField(max_length=120, required=False, label=_("name"))
    host = forms.CharField(
        max_length=255,
        required=False,
        label=_("host"),
        help_text=Gateway._meta.get_field("host").help_text,
    )
    port = forms.IntegerField(min_value=1, max_value=65535, required=False, label=_("port"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = org_objects(user, Site)  # type: ignore[attr-defined]


class MeterForm(forms.Form):
    kind = forms.ChoiceField(choices=Meter.Kind.choices, label=_("kind"))
    protocol = forms.ChoiceField(choices=Protocol.choices, label=_("protocol"))
    address = forms.CharField(max_length=20, label=_("address"))
    model = forms.CharField(max_length=60, required=False, label=_("model"))
    serial_number = forms.CharField(max_length=40, required=False, label=_("serial number"))
    gateway = forms.ModelChoiceField(
        queryset=Gateway.objects.none(), required=False, label=_("gateway")
    )
    room = forms.ModelChoiceField(queryset=Room.objects.none(), required=False, label=_("room"))
    multiplier = forms.IntegerField(min_value=1, initial=1, label=_("CT ratio / multiplier"))
    installed_on = forms.DateField(
        required=False, label=_("installed on"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["gateway"].queryset = org_objects(user, Gateway)  # type: ignore[attr-defined]
        self.fields["room"].queryset = org_objects(user, Room).select_related(
            "floor__building__site"
        )  # type: ignore[attr-defined]


class MeterReplaceForm(forms.Form):
    address = forms.CharField(max_length=20, label=_("new meter address"))
    model = forms.CharField(max_length=60, required=False, label=_("model"))
    serial_number = forms.CharField(max_length=40, required=False, label=_("serial number"))
    on = forms.DateField(label=_("replaced on"), widget=forms.DateInput(attrs={"type": "date"}))


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=ImportBatch.Kind.choices, label=_("what to import"))
    file = forms.FileField(label=_("file (XLSX or CSV)"))


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("token name"), initial="API token")


class WizardBillingForm(forms.Form):
    billing_mode = forms.ChoiceField(choices=Account.BillingMode.choices, label=_("billing mode"))
    billing_side = forms.ChoiceField(choices=Account.BillingSide.choices, label=_("billing side"))
    move_in_on = forms.DateField(
        required=False, label=_("move-in date"), widget=forms.DateInput(attrs={"type": "date"})
    )
