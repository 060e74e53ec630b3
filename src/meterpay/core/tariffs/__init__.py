"""Pure tariff and rating engine: tariff documents, rating, real-time deduction, URDB import.

Entry points for the Django layer:

* :func:`parse_tariff` / :func:`tariff_to_dict` — validate and store a tariff document.
* :func:`load_tariff_text` — a meterpay document or a URDB rate (auto-detected), with warnings.
* :func:`rate` — intervals → :class:`Bill` (lines, monthly summaries).
* :func:`incremental_charge` — prepaid deduction for new readings from a persisted state.
* :func:`rerate` — difference lines after correcting a tariff.
* :func:`parse_readings_csv` / :func:`parse_account_terms_json` — meter data and account
  terms files (``meterpay rate``).
"""

from meterpay.core.tariffs.document import (
    parse_tariff,
    parse_tariff_json,
    tariff_to_dict,
    tariff_to_json,
)
from meterpay.core.tariffs.engine import (
    Bill,
    Deduction,
    Line,
    MonthSummary,
    RatingAccumulator,
    Rerating,
    incremental_charge,
    incremental_charge_from_intervals,
    rate,
    rerate,
)
from meterpay.core.tariffs.errors import (
    AccountTermsError,
    RatingError,
    ReadingsError,
    TariffError,
)
from meterpay.core.tariffs.loading import LoadedTariff, load_tariff_text
from meterpay.core.tariffs.model import AccountTerms, Interval, Tariff, TariffVersion
from meterpay.core.tariffs.readings import (
    Readings,
    RegisterReading,
    intervals_from_registers,
    parse_interval_csv,
    parse_readings_csv,
)
from meterpay.core.tariffs.terms import parse_account_terms, parse_account_terms_json

__all__ = [
    "AccountTerms",
    "AccountTermsError",
    "Bill",
    "Deduction",
    "Interval",
    "Line",
    "LoadedTariff",
    "MonthSummary",
    "RatingAccumulator",
    "RatingError",
    "Readings",
    "ReadingsError",
    "RegisterReading",
    "Rerating",
    "Tariff",
    "TariffError",
    "TariffVersion",
    "incremental_charge",
    "incremental_charge_from_intervals",
    "intervals_from_registers",
    "load_tariff_text",
    "parse_account_terms",
    "parse_account_terms_json",
    "parse_interval_csv",
    "parse_readings_csv",
    "parse_tariff",
    "parse_tariff_json",
    "rate",
    "rerate",
    "tariff_to_dict",
    "tariff_to_json",
]
