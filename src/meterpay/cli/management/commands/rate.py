"""``meterpay rate --tariff FILE --readings FILE [--account FILE] [--incremental] [--json]``.

Rates readings offline. Only argument parsing and output live here; the work is
:mod:`meterpay.core.tariffs.report`. Bad input exits with status 2 after one line on stderr
naming the file, the row or field, and the problem.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser, DjangoHelpFormatter

from meterpay.core.tariffs.report import (
    InputError,
    incremental_texts,
    incremental_to_json,
    incremental_to_text,
    rate_texts,
    report_to_json,
    report_to_text,
)

EPILOG = """\
readings CSV (one header row; see docs/tariffs.md):
  timestamp,kwh[,kvarh][,kw]      interval starts; 15/30/60 min, daily or monthly
                                  (monthly: every timestamp the 1st at 00:00)
  start,end,kwh[,kvarh][,kw]      explicit intervals of any length
  timestamp,register_kwh[,register_kvarh][,register_<period>...]
                                  cumulative meter registers at any times
  water: m3 (or volume_m3, register_m3) instead of kwh
  per-period kWh: columns named after the tariff's TOU periods, e.g.
                  start,end,sharp,peak,flat,valley[,kw]
  kw: the reading's maximum demand; needed for demand charges when a reading is
      longer than an hour or split by period

account terms JSON (every field optional; numbers as JSON numbers or decimal strings):
  {"contract_demand_kw": "500", "capacity_kva": "630", "room_area_m2": "42.5",
   "tier_usage_carried_in": "1200", "tier_thresholds": ["2880", "4800"]
   (or "tier_threshold_scale": "1.25"), "holidays": ["2024-10-01"],
   "move_in": "2024-03-10", "move_out": "2024-11-20"}

exit status: 0 rated; 2 bad input (one line on stderr); 1 --incremental deductions
that do not add up to the full rating's total
"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the epilog's layout kept."""


class Command(BaseCommand):
    help = (
        "Rate readings (CSV) with a tariff (meterpay document or URDB rate JSON) and\n"
        "optional account terms (JSON); --incremental prints the prepaid deduction of\n"
        "each reading."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = EPILOG
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tariff", required=True, help="tariff JSON file")
        parser.add_argument("--readings", required=True, help="readings CSV file (layouts below)")
        parser.add_argument(
            "--account",
            help="account terms JSON file (contract demand, capacity, holidays, … below)",
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="print the prepaid deduction of each reading (rated one at a time with "
            "the carried state), their sum and the full rating's total",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        tariff_path = Path(options["tariff"])
        readings_path = Path(options["readings"])
        account_path = Path(options["account"]) if options.get("account") else None
        try:
            inputs: dict[str, Any] = {
                "tariff_text": self._read(tariff_path),
                "tariff_name": str(tariff_path),
                "readings_text": self._read(readings_path),
                "readings_name": str(readings_path),
            }
            if account_path is not None:
                inputs["account_text"] = self._read(account_path)
                inputs["account_name"] = str(account_path)
            if options.get("incremental"):
                incremental = incremental_texts(**inputs)
            else:
                report = rate_texts(**inputs)
        except InputError as error:
            self.stderr.write(str(error))
            raise SystemExit(2) from None
        if options.get("incremental"):
            if options["json"]:
                self._json(incremental_to_json(incremental))
            else:
                self.stdout.write(incremental_to_text(incremental), ending="")
            if not incremental.equal:
                self.stderr.write(
                    f"the deductions add up to {incremental.total}, "
                    f"the full rating to {incremental.bill.total}"
                )
                raise SystemExit(1)
            return
        if options["json"]:
            self._json(report_to_json(report))
        else:
            self.stdout.write(report_to_text(report), ending="")

    def _json(self, data: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2))

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"{path}: cannot read: {error.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
