from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """200 with {"status": "ok", "database": "reachable"} or 503 when the database is not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means unreachable
        return JsonResponse(
            {"status": "error", "database": "unreachable", "error": str(exc)[:200]}, status=503
        )
    return JsonResponse({"status": "ok", "database": "reachable", "vendor": connection.vendor})
