# Data Pipeline — the commands a developer and CI use. Configuration comes from DP_* variables (README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: help install migrate demo-db up down run test test-unit test-integration test-e2e lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create the virtualenv and install the project with its dev tools

migrate: install  ## apply the database migrations (safe to run twice)
	$(PY) -m shared.migrate

DP_DEMO_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/dp_demo

demo-db: install  ## create and seed the demo business database (DP_DEMO_DATABASE_URL)
	$(PY) -m services.step_runner.demo --url "$(DP_DEMO_DATABASE_URL)"

up: install migrate  ## start the four services in the background and wait until they are ready
	$(PY) scripts/devstack.py up

down:  ## stop exactly what `make up` started
	@test -x $(PY) && $(PY) scripts/devstack.py down || true

run: install  ## bring everything up, run a demo task end to end, keep the stack in the foreground
	$(PY) scripts/devstack.py run

test: install  ## the whole suite (unit, integration, e2e) against the local PostgreSQL and RabbitMQ
	$(PY) -m pytest -q

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q tests/integration

test-e2e: install
	$(PY) -m pytest -q tests/e2e

lint: install  ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install  ## benchmarks that print ratios against a baseline measured in the same run
	$(PY) -m bench.bench_steps
	$(PY) -m bench.bench_collector

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
