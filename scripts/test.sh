#!/usr/bin/env bash
# The whole suite: static checks, then every test on SQLite, then every database test on
# PostgreSQL (127.0.0.1:5432). Under CI=true a missing PostgreSQL, Redis or Mosquitto fails
# the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

PY_DIRS=$(ls -d src tests bench scripts 2>/dev/null)
step "ruff"
$V/ruff check $PY_DIRS
$V/ruff format --check $PY_DIRS
step "mypy (domain core, codecs and the money apps, with django-stubs)"
$V/mypy
step "import-linter (layers)"
$V/lint-imports
step "Django checks and migrations are up to date"
$V/meterpay check --fail-level WARNING
$V/meterpay makemigrations --check --dry-run >/dev/null
[ "${1:-}" = "lint" ] && exit 0

step "tests on SQLite"
$V/python -m pytest -n 2 -q -p no:cacheprovider "$@"
step "database tests on PostgreSQL"
DATABASE_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/meterpay} METERPAY_DB_TESTS_ONLY=1 \
  $V/python -m pytest -n 2 -q -p no:cacheprovider "$@"
