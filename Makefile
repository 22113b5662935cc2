# The gateway's commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The tests create (and drop) their own throwaway database on this server.
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PACKAGES := libs/gateway_common $(wildcard services/auth services/payments services/refunds services/webhooks dashboard)
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup run up down migrate test test-long test-chaos lint bench clean-run

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): constraints.txt requirements-dev.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml dashboard/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

setup: $(STAMP) ## Create the virtualenv with pinned dependencies and install nginx if missing
	@bash tools/system-deps.sh run

run: setup ## Run everything in the foreground (Ctrl-C stops all)
	$(PY) -m tools.stack run

up: setup ## Start everything in the background; returns when /health is healthy
	$(PY) -m tools.stack up

down: ## Stop what `make up` started
	@test -x $(PY) && $(PY) -m tools.stack down || echo "not running"

migrate: setup ## Create the database, roles, schemas; apply migrations; seed
	$(PY) database/manage.py migrate

test: setup ## Run unit, integration, end-to-end and browser tests
	@bash tools/system-deps.sh test
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -m "not slow and not chaos" $(PYTEST_ARGS)

test-long: setup ## Run every test including the slow ones (long fuzzing)
	@bash tools/system-deps.sh test
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -m "not chaos" $(PYTEST_ARGS)

test-chaos: setup ## Kill workers, restart Redis, stop PostgreSQL under load
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -m chaos $(PYTEST_ARGS)

lint: setup ## Lint with ruff
	$(VENV)/bin/ruff check .

bench: setup ## Measure throughput and latency next to the machine's ceilings
	@bash tools/system-deps.sh bench
	$(PY) -m bench.run $(BENCH_ARGS)
