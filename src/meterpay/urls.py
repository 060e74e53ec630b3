from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from meterpay.api.v1 import api
from meterpay.web import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("meterpay.web.urls")),
]
