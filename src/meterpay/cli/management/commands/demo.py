"""``meterpay demo``: migrate, seed the demo organisation, then run the web server,
the job worker, the meter gateway and the simulated meters.

One process tree, stopped together with Ctrl-C. The meter gateway and simulated meters join
it when they exist (``DEMO_PROCESSES``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from meterpay.cli.demo_data import DEMO_ORG_SLUG, demo_exists, demo_logins, seed_demo


def _meterpay(*args: str) -> list[str]:
    return [sys.executable, "-m", "meterpay.manage", *args]


class Command(BaseCommand):
    help = "Set up and run the demo: web console, job worker and simulated meters."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--setup-only", action="store_true", help="migrate and seed, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        call_command("migrate", verbosity=0, interactive=False)
        if not demo_exists():
            self.stdout.write("Creating the demo organisation…")
            summary = seed_demo()
            self.stdout.write(
                f"  {summary.rooms} rooms, {summary.meters} meters, {summary.accounts} accounts"
            )
        if options["setup_only"]:
            return
        host, port = options["host"], options["port"]
        gateway_port = os.environ.get("GATEWAY_PORT", "9000")
        processes = {
            "web": [
                os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                "meterpay.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--log-level",
                "warning",
            ],
            "worker": _meterpay("run_huey", "--workers", "2"),
            # Meters: polled every minute; the simulated clock runs x5 (faster would trip the
            # spike check, which compares consumption with real elapsed time).
            "gateway": _meterpay(
                "gateway",
                "--host",
                "127.0.0.1",
                "--port",
                gateway_port,
                "--poll-electricity",
                "60",
                "--poll-water",
                "120",
                "--backoff",
                "5",
            ),
            "simulate": _meterpay(
                "simulate",
                "--org",
                DEMO_ORG_SLUG,
                "--connect",
                f"127.0.0.1:{gateway_port}",
                "--speed",
                "5",
                "--heartbeat",
                "30",
            ),
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "meterpay.settings"}
        for name, command in processes.items():
            # Our own interpreter's tools, with arguments we built: no shell, no user input.
            children[name] = subprocess.Popen(command, env=env)  # noqa: S603
        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host  # noqa: S104
        url = f"http://{shown_host}:{port}/"
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"meterpay demo is running at {url}  (ready in {time.monotonic() - started:.0f} s)"
            )
        )
        self.stdout.write(f"  database: {settings.DATABASES['default']['NAME']}")
        self.stdout.write("  logins (username / password):")
        for username, password in demo_logins():
            self.stdout.write(f"    {username} / {password}")
        self.stdout.write(f"  API docs: {url}api/v1/docs    health: {url}healthz")
        self.stdout.write("  Press Ctrl-C to stop.")
        self._supervise(children)

    def _supervise(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(
                            f"{name} stopped with exit code {child.returncode}; stopping the demo."
                        )
                        stopping = True
                time.sleep(0.5)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
