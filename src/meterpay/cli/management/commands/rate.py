"""``meterpay rate --tariff FILE --readings FILE [--json]``: rate interval readings offline.

Only argument parsing and output live here; the work is
:mod:`meterpay.core.tariffs.report`. Bad input exits with status 2 after one line on stderr
naming the file, the row and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from meterpay.core.tariffs.report import (
    InputError,
    rate_texts,
    report_to_json,
    report_to_text,
)


class Command(BaseCommand):
    help = "Rate interval readings (CSV) with a tariff (meterpay document or URDB rate JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tariff", required=True, help="tariff JSON file")
        parser.add_argument(
            "--readings", required=True, help="readings CSV: timestamp,kwh[,kvarh][,kw]"
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        tariff_path = Path(options["tariff"])
        readings_path = Path(options["readings"])
        try:
            tariff_text = self._read(tariff_path)
            readings_text = self._read(readings_path)
            report = rate_texts(
                tariff_text=tariff_text,
                tariff_name=str(tariff_path),
                readings_text=readings_text,
                readings_name=str(readings_path),
            )
        except InputError as error:
            self.stderr.write(str(error))
            raise SystemExit(2) from None
        if options["json"]:
            self.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2))
        else:
            self.stdout.write(report_to_text(report), ending="")

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"{path}: cannot read: {error.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
