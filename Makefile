# Lab Ledger developer commands. `make help` lists them; `make run` is the quick start.
#
# Everything runs inside ./.venv, which the targets create on demand. Two stamp files inside
# the venv remember which requirements were installed; make compares their timestamps with
# requirements*.txt, so editing (or pulling) a requirements file triggers a reinstall and an
# unchanged one costs nothing.
#
# DATABASE_URL, REDIS_URL and REQUIRE_SERVICES reach every command unchanged when they are set
# in the environment or on the command line (`make test DATABASE_URL=postgres://...`). Unset,
# the embedded defaults of config.settings.base apply: SQLite under ./var, eager Celery.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
# `:=`, not `?=`: some shells export HOST or PORT for other purposes; only `make run HOST=...` counts.
HOST := 127.0.0.1
PORT := 8000
# Two test processes (pytest-xdist), one per core: each gets its own test database and the
# integration tests their own Redis and worker, so the whole suite runs in half the time.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
BENCH_ARGS ?=

VENV_PYTHON := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-requirements-dev
MANAGE := $(VENV_PYTHON) manage.py
# Embedded mode has no Redis: `make run` starts a Celery worker beside the server on kombu's
# SQLAlchemy transport over a SQLite file, so bulk uploads are ingested outside the web process.
VAR_DIR := $(or $(LABLEDGER_VAR_DIR),$(CURDIR)/var)
EMBEDDED_BROKER := sqla+sqlite:///$(abspath $(VAR_DIR))/celery-broker.sqlite3
WORKER_PIDFILE := $(VAR_DIR)/celery-worker.pid
# The full MLflow server (not the mlflow-skinny client the tests use) lives in a venv of its own:
# its many pins must not decide ours. tests/integration/test_import_mlflow.py starts it.
MLFLOW_SERVER_VERSION := 3.17.2
MLFLOW_SERVER_VENV := var/mlflow-server-venv
MLFLOW_SERVER_STAMP := $(MLFLOW_SERVER_VENV)/.installed-mlflow-auth-$(MLFLOW_SERVER_VERSION)

.PHONY: help venv venv-dev mlflow-server run worker-stop migrate superuser test check lint fmt bench clean

help: ## Show this list of targets
	@echo "Lab Ledger - make targets (run from the repository root):"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PYTHON=$(PYTHON) HOST=$(HOST) PORT=$(PORT) PYTEST_ARGS='$(PYTEST_ARGS)'"
	@echo "Honoured from the environment: DATABASE_URL, REDIS_URL, REQUIRE_SERVICES (see docs/operations.md)."

# --- virtualenv ------------------------------------------------------------------------------

$(VENV_PYTHON):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Lab Ledger needs Python 3.11 or newer; '$(PYTHON)' is older (try PYTHON=python3.11)." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) \
		|| { echo "Could not create $(VENV): on Debian/Ubuntu install python3-venv." >&2; rm -rf $(VENV); exit 1; }

# The runtime stamp is all `make run` needs.
$(RUNTIME_STAMP): requirements.txt | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --quiet -r requirements.txt
	@touch $@

# requirements-dev.txt includes requirements.txt, so one install satisfies both stamps.
# Never `playwright install` here: browser tests use Debian's /usr/bin/chromium.
$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --quiet -r requirements-dev.txt
	@touch $(RUNTIME_STAMP) $@

venv: $(RUNTIME_STAMP) ## Create .venv with the runtime requirements
venv-dev: $(DEV_STAMP) ## Create .venv with the development requirements (tests, ruff)

# The stamp names the version: changing MLFLOW_SERVER_VERSION reinstalls, an unchanged one costs nothing.
# The [auth] extra brings mlflow.server.auth's dependencies: the permission tests run MLflow's own
# AuthServiceClient in this interpreter (MLFLOW_FULL_PYTHON).
$(MLFLOW_SERVER_STAMP): | $(VENV_PYTHON)
	[ -x $(MLFLOW_SERVER_VENV)/bin/python ] || $(PYTHON) -m venv $(MLFLOW_SERVER_VENV)
	$(MLFLOW_SERVER_VENV)/bin/python -m pip install --quiet "mlflow[auth]==$(MLFLOW_SERVER_VERSION)"
	@touch $@

mlflow-server: $(MLFLOW_SERVER_STAMP) ## Install MLflow (server and auth client) in var/mlflow-server-venv for the tests

# --- running ---------------------------------------------------------------------------------

run: $(RUNTIME_STAMP) ## Set up and serve the dashboard with demo data at http://HOST:PORT/
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo --if-empty --base-url http://$(HOST):$(PORT)/
	@echo
	@echo "Lab Ledger is starting at http://$(HOST):$(PORT)/ - log in with a demo account printed above."
	@if [ -n "$${DATABASE_URL:-}" ]; then echo "Database: DATABASE_URL from the environment."; \
	else echo "Database: SQLite under $${LABLEDGER_VAR_DIR:-./var} (set DATABASE_URL for PostgreSQL)."; fi
	@if [ -n "$${REDIS_URL:-}" ]; then echo "Celery: tasks go to REDIS_URL; start a worker: $(VENV)/bin/celery -A config worker"; \
	else echo "Celery: a worker runs beside the server (broker $(EMBEDDED_BROKER), log $(VAR_DIR)/celery-worker.log)."; fi
	@echo "Stop it with Ctrl-C."
	@echo
	@export PUBLIC_URL="$${PUBLIC_URL:-http://$(HOST):$(PORT)}"; \
	if [ -n "$${REDIS_URL:-}" ]; then exec $(MANAGE) runserver $(HOST):$(PORT); fi; \
	export CELERY_BROKER_URL="$${CELERY_BROKER_URL:-$(EMBEDDED_BROKER)}" CELERY_EAGER=false; \
	$(MAKE) --no-print-directory worker-stop; \
	trap '$(MAKE) --no-print-directory worker-stop' EXIT; \
	$(VENV)/bin/celery -A config worker --pool=solo --beat --schedule $(VAR_DIR)/celery-beat-schedule \
		--loglevel=INFO --logfile $(VAR_DIR)/celery-worker.log --pidfile $(WORKER_PIDFILE) & \
	$(MANAGE) runserver $(HOST):$(PORT)

# Idempotent: a worker left by an earlier `make run` (its pid file says which) is stopped first.
worker-stop: ## Stop the Celery worker that `make run` started beside the server
	@if [ -f $(WORKER_PIDFILE) ]; then pid=$$(cat $(WORKER_PIDFILE)); \
		if kill -0 $$pid 2>/dev/null; then kill -TERM $$pid; \
			for _ in $$(seq 100); do kill -0 $$pid 2>/dev/null || break; sleep 0.2; done; fi; \
		rm -f $(WORKER_PIDFILE); fi

migrate: $(RUNTIME_STAMP) ## Apply database migrations
	$(MANAGE) migrate --noinput

superuser: $(RUNTIME_STAMP) ## Create an admin account interactively
	$(MANAGE) createsuperuser

bench: $(RUNTIME_STAMP) ## Run the ingestion benchmark (bench/ingest.py; BENCH_ARGS=... for options)
	$(VENV_PYTHON) bench/ingest.py $(BENCH_ARGS)

# --- quality ---------------------------------------------------------------------------------

test check: export DJANGO_SETTINGS_MODULE = config.settings.test

check: $(DEV_STAMP) ## Django system checks and the missing-migrations check
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

test: check $(MLFLOW_SERVER_STAMP) ## Checks, ruff, mypy, then the whole pytest suite (PYTEST_ARGS=... for extra arguments)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	MLFLOW_SERVER_BIN=$(CURDIR)/$(MLFLOW_SERVER_VENV)/bin/mlflow MLFLOW_FULL_PYTHON=$(CURDIR)/$(MLFLOW_SERVER_VENV)/bin/python \
		$(VENV_PYTHON) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(DEV_STAMP) ## ruff lint and format check, mypy over services and selectors (changes nothing)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(DEV_STAMP) ## Apply ruff's safe fixes, then format with ruff
	$(VENV)/bin/ruff check --fix --exit-zero .
	$(VENV)/bin/ruff format .

clean: ## Delete .venv and var/ (the embedded database and artifacts!) and tool caches
	rm -rf $(VENV) var .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
