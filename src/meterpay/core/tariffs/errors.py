"""Errors raised by the tariff engine; every message names where the problem is."""

from __future__ import annotations


class TariffError(ValueError):
    """A tariff document that does not validate.

    ``path`` is the field path inside the document, e.g. ``versions[1].energy.periods[2].price``.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class RatingError(ValueError):
    """Consumption that the tariff cannot rate (out of order, negative, missing account data)."""


class ReadingsError(ValueError):
    """A readings file that cannot be parsed; ``row`` is the 1-based line number (header = 1)."""

    def __init__(self, row: int, problem: str) -> None:
        self.row = row
        self.problem = problem
        super().__init__(f"row {row}: {problem}")


class AccountTermsError(ValueError):
    """An account terms document that does not validate; ``field`` names the field (or "")."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)
