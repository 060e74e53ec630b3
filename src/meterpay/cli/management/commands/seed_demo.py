from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from meterpay.cli.demo_data import demo_exists, demo_logins, seed_demo


class Command(BaseCommand):
    help = "Create the demo organisation (mall, dormitory, office block) unless it exists."

    def handle(self, *args: Any, **options: Any) -> None:
        if demo_exists():
            self.stdout.write("The demo organisation exists already.")
        else:
            summary = seed_demo()
            self.stdout.write(
                f"Created {summary.organisation.name}: {summary.rooms} rooms, "
                f"{summary.meters} meters, {summary.accounts} accounts."
            )
        for username, password in demo_logins():
            self.stdout.write(f"  login {username} / {password}")
