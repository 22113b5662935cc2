# The gateway's commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The tests create (and drop) their own throwaway database on this server.
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PACKAGES := libs/gateway_common $(wildcard services/auth services/payments services/refunds services/webhooks dashboard clients/paygate)
STAMP := $(VENV)/.installed
# JavaScript the browser tests inject (axe-core), pinned by tests/browser/package-lock.json.
BROWSER_JS := tests/browser/node_modules/.installed

.DEFAULT_GOAL := help
.PHONY: help setup run up down migrate seed-demo test test-long test-chaos test-compose images lint bench bench-ab clean-run

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): constraints.txt requirements-dev.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml dashboard/pyproject.toml clients/*/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(PACKAGES))
	touch $(STAMP)

setup: $(STAMP) ## Create the virtualenv with pinned dependencies and install nginx if missing
	@bash tools/system-deps.sh run

run: setup ## Run everything in the foreground (Ctrl-C stops all)
	$(PY) -m tools.stack run

up: setup ## Start everything in the background; returns when /health is healthy (SCALE="payments=3 ..." for replicas)
	$(PY) -m tools.stack up

down: ## Stop what `make up` started
	@test -x $(PY) && $(PY) -m tools.stack down || echo "not running"

migrate: setup ## Create the database, roles, schemas; apply migrations; seed
	$(PY) database/manage.py migrate

$(BROWSER_JS): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund
	touch $(BROWSER_JS)

# make seed-demo PAYMENTS=1000000 DELIVERIES=1000000 (into DATABASE_URL, default the one `make run` uses)
PAYMENTS ?= 100000
DELIVERIES ?= 100000
seed-demo: setup ## Add demo history to the test merchant (PAYMENTS=, DELIVERIES=; ~90 s for 1 M of each)
	$(PY) -m tools.seed_demo --payments $(PAYMENTS) --deliveries $(DELIVERIES)

test: setup ## Run unit, integration, end-to-end and browser tests
	@bash tools/system-deps.sh test
	@$(MAKE) --no-print-directory $(BROWSER_JS)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -m "not slow and not chaos and not compose" $(PYTEST_ARGS)

test-long: setup ## Run every test including the slow ones (long fuzzing)
	@bash tools/system-deps.sh test
	@$(MAKE) --no-print-directory $(BROWSER_JS)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -m "not chaos and not compose" $(PYTEST_ARGS)

test-chaos: setup ## Kill workers, restart Redis, stop PostgreSQL under load
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest -m chaos $(PYTEST_ARGS)

images: ## Build every image (starts dockerd and makes base-image stand-ins when needed)
	@bash tools/system-deps.sh compose
	@bash tools/docker-engine.sh start
	bash tools/docker-base-images.sh
	bash tools/docker-build.sh

test-compose: setup images ## Run the compose stack (host network, free ports) and its end-to-end smoke
	$(VENV)/bin/pytest -m compose tests/compose $(PYTEST_ARGS)

lint: setup ## Lint with ruff
	$(VENV)/bin/ruff check .

bench: setup ## Measure throughput and latency next to the machine's ceilings
	@bash tools/system-deps.sh bench
	$(PY) -m bench.run $(BENCH_ARGS)

bench-ab: setup ## Before/after in the same run: REF=<commit> against this tree, alternating
	@test -n "$(REF)" || { echo "usage: make bench-ab REF=<commit>"; exit 2; }
	@bash tools/system-deps.sh bench
	$(PY) -m bench.ab --ref $(REF) $(BENCH_ARGS)
