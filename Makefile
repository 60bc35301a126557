# penstat: every target sets itself up (a venv from requirements.lock) first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= 1
SEED ?= 42
export PENSTAT_HOME ?= $(CURDIR)/.penstat
DEMO_HOME ?= $(CURDIR)/.penstat/demo
REAL_HOME ?= $(CURDIR)/.penstat/real

.PHONY: help lock setup demo real dashboard test test-fast up down status rebuild lint fmt suites bench validate-stats clean
BENCH_SCALES ?= 1,10
BENCH_RUNS ?= 3
STATS_REPLICATES ?= 400
STATS_SCALE ?= 0.3

help:
	@echo "make demo   - set up, run the pipeline end to end through Airflow, print headline KPIs"
	@echo "make real   - run five real public data sets (data/real) through the pipeline, print the summary"
	@echo "make dashboard - serve the current publication's dashboard on localhost (default: the demo's)"
	@echo "make test   - set up and run the whole test suite (includes the Airflow end-to-end test)"
	@echo "make up     - start the local Airflow stack watching \$$PENSTAT_HOME/inbox (background)"
	@echo "              PENSTAT_EXECUTOR=celery PENSTAT_WORKERS=2 make up: PostgreSQL, Redis, Celery workers"
	@echo "make down   - stop every process 'make up' started"
	@echo "make rebuild - rebuild every model from the raw layer, gate, publish (same marts as incremental)"
	@echo "make lint   - ruff and the layering contract (import-linter)"
	@echo "make bench  - benchmarks at scales \$$BENCH_SCALES (default 1,10) into docs/benchmarks.md"
	@echo "make validate-stats - simulation study of the risk-standardised recidivism figures (docs/statistics-validation.md)"
	@echo "make suites - regenerate the GX context, docs/published.md's marts and the manifest schema"

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

# uv installs the ~750 MB lock in seconds (plain pip is the fallback), then the
# package itself, editable, with its `penstat` console script. Bytecode is compiled
# at install: where PYTHONDONTWRITEBYTECODE is set, every process (each Airflow
# component, dbt, each test's subprocess) would otherwise compile Airflow, GX and dbt
# from source at every start (10 s instead of 5 s to import GX and Airflow here).
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	@echo "setting up $(VENV) from requirements.lock (first run only)"
	@$(BIN)/python -m pip install -qq --disable-pip-version-check uv \
	  && $(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python $(INSTALLED_LOCKS) \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check $(INSTALLED_LOCKS:%=-r %)
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . 2>/dev/null \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# The Celery stack's dependencies (requirements-celery.lock: resolved with
# requirements.lock as constraints, so no version of the main lock moves) are added
# when PENSTAT_EXECUTOR=celery, and by `make test` (its Celery end-to-end test). Once
# added they stay: a later sync of the main lock syncs both files.
CELERY_LOCK := requirements-celery.lock
INSTALLED_LOCKS = requirements.lock $(if $(wildcard $(VENV)/.installed-celery),$(CELERY_LOCK))
CELERY_SETUP := $(if $(filter celery,$(PENSTAT_EXECUTOR)),$(VENV)/.installed-celery)

$(VENV)/.installed-celery: $(CELERY_LOCK) requirements.lock pyproject.toml | $(VENV)/.installed
	@echo "adding the Celery stack's dependencies from $(CELERY_LOCK)"
	@$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock $(CELERY_LOCK) \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock -r $(CELERY_LOCK)
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . 2>/dev/null \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# A venv made before installs compiled bytecode (or by pip without it) is compiled once.
$(VENV)/.compiled: $(VENV)/.installed
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $@

setup: $(VENV)/.installed $(VENV)/.compiled $(CELERY_SETUP)

# Re-resolve requirements.lock from requirements.in after adding a dependency there:
# uv keeps every version already pinned in the lock (it reads the output file as its
# preferences), so only the new packages are added; check with `git diff`.
lock: | $(BIN)/python
	@$(BIN)/python -m pip install -qq --disable-pip-version-check uv
	$(BIN)/uv pip compile -q --python $(BIN)/python --custom-compile-command "make lock" requirements.in -o requirements.lock
	$(BIN)/uv pip compile -q --python $(BIN)/python --custom-compile-command "make lock" requirements-celery.in -c requirements.lock -o $(CELERY_LOCK)

demo: setup
	PENSTAT_HOME=$(DEMO_HOME) $(BIN)/penstat demo --scale $(SCALE) --seed $(SEED)

# Real data: adapters -> inbox -> ingest -> dbt build -> gate -> publication, in-process
# through the same code paths as the Airflow tasks (docs/real-data.md).
real: setup
	$(BIN)/penstat real --home $(REAL_HOME)

# Serve the dashboard of the current publication of $(PENSTAT_HOME) (or, when that has
# none, of `make demo`'s) on 127.0.0.1 with a plain static server; prints the address.
# Ctrl-C stops it. PORT=8080 picks the port (default: a free one).
DASHBOARD_HOME ?= $(if $(wildcard $(PENSTAT_HOME)/published/current/published.duckdb),$(PENSTAT_HOME),$(DEMO_HOME))
dashboard: setup
	PENSTAT_HOME=$(DASHBOARD_HOME) $(BIN)/penstat dashboard $(if $(PORT),--port $(PORT),)

test: setup $(VENV)/.installed-celery
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e"

up: setup
	@test -n "$$PENSTAT_PSEUDONYM_KEY" || { echo "Set PENSTAT_PSEUDONYM_KEY (a secret of >= 16 characters) first: recidivism deliveries are pseudonymised with it."; exit 1; }
	$(BIN)/penstat up

down: setup
	$(BIN)/penstat down

status: setup
	$(BIN)/penstat status

# Builds are incremental; this rebuilds every model from the raw layer (through
# Airflow if `make up` is running for this PENSTAT_HOME).
rebuild: setup
	$(BIN)/penstat rebuild

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff check --fix .

# Regenerate what is written from code: the GX context (penstat/validation/suites.py),
# the marts section of docs/published.md and docs/contract/manifest.schema.json
# (penstat/contract/). Tests fail while a committed copy differs from its source.
suites: setup
	$(BIN)/python -m penstat.validation write-context
	$(BIN)/python -m penstat.contract.published_docs
	$(BIN)/python -m penstat.contract.manifest_schema

# Not part of `make test`: timings belong in docs/benchmarks.md, never in assertions.
# Scale 50 is opt-in (BENCH_SCALES=1,10,50): it runs for a long time here.
bench: setup
	$(BIN)/python -m benchmarks.run --scales $(BENCH_SCALES) --runs $(BENCH_RUNS)

# Simulation study (bias, SD, SE, coverage) of the published standardised recidivism
# figures: docs/statistics-validation.md. Minutes, not a test; one BLAS thread each.
validate-stats: setup
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python -m benchmarks.validate_stats --replicates $(STATS_REPLICATES) \
		--scale $(STATS_SCALE)

clean:
	rm -rf .penstat/demo .pytest_cache .ruff_cache
