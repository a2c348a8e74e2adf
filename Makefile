# Baitiao Ops. `make run` and `make test` work on a fresh machine with Python 3.11.
# Without DATABASE_URL an embedded PostgreSQL starts under var/pgdata.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# Local runs are demo mode: DEBUG on, dev-only keys, demo staff. Override in the environment.
export DEBUG ?= true

.PHONY: run test test-shifted setup install lint typecheck check-migrations db-stop db-backup db-restore clean-db benchmarks soak help

help:
	@echo "make run    - set up and start web + the three queue clusters on http://127.0.0.1:8000"
	@echo "make test   - set up and run the whole test suite"
	@echo "make test-shifted [SHIFT=+13d] [TESTS=paths] - the tests on a shifted clock (docs/testing.md)"
	@echo "make lint   - the pre-commit hooks on every file: ruff, django-upgrade, djhtml, import contracts"
	@echo "make typecheck - mypy with django-stubs on baitiao, accounts and repayments"
	@echo "make db-stop - stop the embedded PostgreSQL"

$(BIN)/.installed: requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# axe-core for the browser tests (tests/e2e/package.json, pinned by its lock file), when npm is there.
AXE_STAMP := tests/e2e/node_modules/.installed
$(AXE_STAMP): tests/e2e/package.json tests/e2e/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: tests/e2e/test_every_page.py needs axe-core (apt-get install npm, then make install)"; fi

install: $(BIN)/.installed $(AXE_STAMP)

setup: install
	$(MANAGE) migrate --no-input
	$(MANAGE) load_uci_dataset --if-empty
	$(MANAGE) setup_schedules
	$(MANAGE) setup_demo_staff

# The sandbox bank fails this share of debits with a system error, as a real bank does now
# and then; with the first run's demo collection (manage.py first_run, docs/operations.md)
# the worklist shows binding, funds and system failures within two minutes of a fresh start.
SANDBOX_SYSTEM_FAILURE_RATE ?= 0.03
run: setup
	$(MANAGE) first_run
	@echo "Starting web (http://127.0.0.1:8000), the three queue clusters (lanes) and the sandbox bank; Ctrl-C stops them."
	SANDBOX_SYSTEM_FAILURE_RATE=$(SANDBOX_SYSTEM_FAILURE_RATE) $(BIN)/honcho start -f Procfile

# The same setup as `make run`, then the suite. The tests themselves copy their own
# template database (docs/architecture.md, "Tests"), built on the first run and when
# migrations or data change; they never touch the development data.
# Two pytest-xdist workers, each test file on one worker (module fixtures, live servers
# and clusters stay together); each worker copies its own test database from the
# template. TEST_WORKERS=0 runs serially (docs/testing.md).
TEST_WORKERS ?= 2
test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

# The date-proof hunt (docs/testing.md): the tests and every process they start
# (embedded PostgreSQL, sandbox bank, clusters, live servers) on a clock shifted
# by libfaketime. SHIFT: an offset (+13d, +90d, +1y) or a UTC moment
# ("2026-12-31 16:30"); TESTS: paths or -k to narrow the run. Not part of `make test`.
SHIFT ?= +13d
TESTS ?=
test-shifted: install
	tests/faketime/shifted.sh "$(SHIFT)" $(BIN)/pytest -p no:cacheprovider $(TESTS)

# The hooks of .pre-commit-config.yaml (tools pinned in requirements-dev.txt, run from
# .venv, no network): ruff check and format, django-upgrade, djhtml, lint-imports.
# A hook that rewrites a file fails and shows the diff.
lint: install
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

# mypy's Django plugin imports the settings but never connects: a placeholder
# DATABASE_URL keeps the embedded PostgreSQL from starting for it.
typecheck: install
	DATABASE_URL=postgres://typecheck@127.0.0.1:1/not-connected $(BIN)/mypy

check-migrations: install
	$(MANAGE) makemigrations --check --dry-run

benchmarks: install
	$(BIN)/python benchmarks/run.py --keep
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/console.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/imports.py

# Soak (benchmarks/soak.py): agents browse while the bank calls back, 10 minutes on loopback.
# Options: make soak SOAK_ARGS="--run-time 2m --users 8".
soak: setup
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

db-stop: install
	@$(BIN)/python -c "from pathlib import Path; from baitiao.embedded_db import stop_embedded_database as stop; print('stopped' if stop(Path('var')) else 'embedded PostgreSQL is not running')"

# Backups (docs/operations.md): pg_dump's custom format of DATABASE_URL into var/backups/.
db-backup:
	@test -n "$(DATABASE_URL)" || { echo "set DATABASE_URL"; exit 1; }
	mkdir -p var/backups
	pg_dump --format=custom --no-owner --file=var/backups/baitiao-$$(date -u +%Y%m%dT%H%M%SZ).dump "$(DATABASE_URL)"
	@ls -l var/backups | tail -1

# Restore DUMP into the empty database RESTORE_URL, then check its migrations are complete.
db-restore: install
	@test -n "$(DUMP)" -a -n "$(RESTORE_URL)" || { echo "usage: make db-restore DUMP=file RESTORE_URL=postgres://…/new_db"; exit 1; }
	pg_restore --no-owner --jobs=2 --exit-on-error --dbname="$(RESTORE_URL)" "$(DUMP)"
	DATABASE_URL="$(RESTORE_URL)" $(MANAGE) migrate --check
