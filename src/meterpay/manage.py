"""The ``meterpay`` command: Django's management commands with meterpay's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meterpay.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["meterpay", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    main()
