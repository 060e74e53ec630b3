# The two commands: `make demo` (set up and run the demo) and `make test` (set up and run every test).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup demo test lint unit db e2e screenshots vendor messages

setup:
	@scripts/setup.sh

demo: setup
	@$(VENV)/meterpay demo

test: setup
	@scripts/test.sh

lint: setup
	@scripts/test.sh lint

unit: setup
	@$(VENV)/python -m pytest -q -m "not e2e" tests/core tests/protocols

e2e: setup
	@$(VENV)/python -m pytest -q -m e2e

screenshots: setup
	@$(VENV)/python scripts/screenshots.py

vendor:
	@scripts/vendor-static.sh

messages: setup
	@cd src/meterpay && ../../$(VENV)/meterpay makemessages -l zh_Hans -l en --no-obsolete && ../../$(VENV)/meterpay compilemessages
