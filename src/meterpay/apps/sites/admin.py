from django.contrib import admin

from meterpay.apps.sites.models import Building, Floor, Room, Site

for model, fields in (
    (Site, ["name", "kind", "organisation"]),
    (Building, ["name", "site", "organisation"]),
    (Floor, ["name", "level", "building", "organisation"]),
    (Room, ["number", "kind", "area_m2", "floor", "organisation"]),
):
    admin.site.register(model, list_display=fields, list_filter=["organisation"])
