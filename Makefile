# Data Pipeline — the commands a developer and CI use. Configuration comes from DP_* variables (README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: help install lock migrate demo-db up down run test test-unit test-integration test-e2e lint format bench quality screenshots clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Dependencies come from the hash-pinned lock file; the project itself is installed without them, and
# `pip check` fails when pyproject.toml asks for something the lock lacks (run `make lock`).
$(STAMP): pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found %s)" % sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --require-hashes -r requirements-dev.lock
	$(PIP) install --quiet --no-deps -e .
	$(PIP) check
	touch $(STAMP)

install: $(STAMP)  ## create the virtualenv and install the locked dependencies and the project

UV_VERSION ?= 0.13.9
LOCK_FLAGS := --generate-hashes --universal --python-version 3.11 --quiet

lock:  ## re-pin requirements.lock (runtime) and requirements-dev.lock from pyproject.toml, with hashes
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet 'uv==$(UV_VERSION)'
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock

migrate: install  ## apply the database migrations (safe to run twice)
	$(PY) -m shared.migrate

DP_DEMO_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/dp_demo

demo-db: install  ## create and seed the demo business database (DP_DEMO_DATABASE_URL)
	$(PY) -m services.demo_db --url "$(DP_DEMO_DATABASE_URL)"

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

screenshots: install  ## refresh docs/ui/*.png: the web UI's main views at desktop and phone size (needs Chromium)
	$(PY) -m pytest -q tests/browser/test_ui_screenshots.py tests/browser/test_ui_outputs.py --ui-screenshots=docs/ui

bench: install  ## benchmarks that print ratios against a baseline measured in the same run
	$(PY) -m bench

quality: install  ## quality of the offline provider's pairs on three schemas, before and after step 3 (issue #13)
	$(PY) -m bench.quality

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
