"""Readings pipeline throughput: register reads in, validated intervals out, per second.

    uv run python bench/ingest.py [METERS] [READS_PER_METER]

Runs against a fresh SQLite (or DATABASE_URL) test database through the real service
``register_read_record`` (one transaction per read, as the gateway does).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402


def main() -> None:
    meters_wanted = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    reads_per_meter = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from tests.factories import build_org

        from meterpay.apps.meters.models import Meter
        from meterpay.apps.readings.models import Interval, RegisterRead
        from meterpay.apps.readings.services import register_read_record

        org = build_org("bench", 1)
        meters = [org.meter, org.free_meter]
        meters += Meter.objects.bulk_create(
            Meter(
                organisation=org.org,
                kind="electricity_1p",
                protocol="dlt645",
                address=f"{n:012d}",
                gateway=org.gateway,
                multiplier=1 + n % 3,
            )
            for n in range(10, 10 + meters_wanted - 2)
        )
        start = timezone.now() - timedelta(days=reads_per_meter)
        step = timedelta(minutes=15)
        began = time.perf_counter()
        count = 0
        for r in range(reads_per_meter):
            for index, meter in enumerate(meters):
                total = Decimal(1000 + index) + Decimal(r) * Decimal("0.37")
                register_read_record(
                    meter=meter, read_at=start + r * step, source="poll", total=total
                )
                count += 1
        elapsed = time.perf_counter() - began
        duplicates_began = time.perf_counter()
        for meter in meters:  # the same reading again: stored once, nothing derived
            register_read_record(meter=meter, read_at=start, source="poll", total=Decimal(1000))
        duplicate_rate = len(meters) / (time.perf_counter() - duplicates_began)
        print(f"database           {connection.vendor}")
        print(f"meters             {len(meters)}")
        print(f"register reads     {count} ({RegisterRead.objects.count()} stored)")
        booked = Interval.objects.filter(booked=True).count()
        print(f"intervals          {Interval.objects.count()} ({booked} booked)")
        print(f"elapsed            {elapsed:.2f} s")
        print(f"reads per second   {count / elapsed:,.0f}")
        print(f"duplicates per s   {duplicate_rate:,.0f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
