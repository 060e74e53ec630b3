"""``meterpay ledger check``: every wallet's cached balance equals the sum of its postings."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from meterpay.apps.ledger.selectors import ledger_mismatches, unbalanced_entries
from meterpay.core.money import from_minor


class Command(BaseCommand):
    help = "Ledger checks. 'check': cached wallet balances == sums of postings; entries balance."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["check"])
        parser.add_argument("--organisation", type=int, default=None, help="organisation id")

    def handle(self, *args: Any, **options: Any) -> None:
        problems = []
        for wallet, cached, actual in ledger_mismatches(options["organisation"]):
            problems.append(
                f"wallet {wallet}: cached {from_minor(cached)} != postings {from_minor(actual)}"
            )
        for entry, total in unbalanced_entries():
            problems.append(f"entry {entry}: postings sum to {total}, not 0")
        if problems:
            for line in problems:
                self.stderr.write(line)
            raise CommandError(f"{len(problems)} ledger problem(s)", returncode=1)
        self.stdout.write(self.style.SUCCESS("ledger OK: every wallet equals its postings"))
