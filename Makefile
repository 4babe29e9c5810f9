# jx-pipeline: every common task. Each target sets up what it needs; re-running is safe and fast.
#   make demo   - Python env + local PostgreSQL/PostGIS + a synthetic world + materialize everything
#   make test   - the same set-up, then the whole test suite
#   make ui     - Dagster UI (and daemon) on http://127.0.0.1:3000
#   make serve  - OGC API Features over the marts on http://127.0.0.1:8081 (as the read-only role)
#   make workers - Celery workers (WORKERS=2) and the local Redis as their broker; make demo EXECUTOR=celery uses them
#   make down   - stop the local cluster (and the workers and Redis)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JX := $(BIN)/jx-pipeline
UV := $(PYTHON) -m uv

# the demo's world: `make demo SCALE=0.01 SEED=7 WORLD=path` (a world folder not made by the generator is used as is)
SCALE ?= 0.001
SEED ?= 7
DAYS ?= 2
WORLD ?= .jx/world
# where the demo's steps run: in_process (one process), multiprocess, or celery (on WORKERS Celery workers)
EXECUTOR ?= in_process
WORKERS ?= 2
# the suite's processes (pytest-xdist; each file's tests in one process): one per core, at most 4 (each runs real
# Dagster runs and daemons on the one cluster's 200 connections); TEST_WORKERS=0 runs it in this process
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))

.PHONY: demo test ui serve down db world workers lint lock browser

$(STAMP): requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(BIN)/python --compile-bytecode requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --compile-bytecode --no-deps -e .
	$(UV) pip check --quiet --python $(BIN)/python
	@touch $@

db: $(STAMP)
	@$(JX) db up

world: db
	@$(JX) world generate --scale $(SCALE) --seed $(SEED) --days $(DAYS) --out $(WORLD) --reuse

# every feed: raw load, staging + checks, quality scorecard (the `ingest` job's assets)
INGEST = tag:jx/ingest=feed or tag:jx/staged=feed or key:quality/scorecard

# started (or restarted after a code or world change) under .jx/celery; `jx-pipeline workers down` stops them
workers: db
	@JX_WORLD_DIR="$(abspath $(WORLD))" $(JX) workers up --count $(WORKERS)

demo: world $(if $(filter celery,$(EXECUTOR)),workers)
	@JX_WORLD_DIR="$(abspath $(WORLD))" $(JX) materialize --executor $(EXECUTOR) --select 'group:reference'
	@JX_WORLD_DIR="$(abspath $(WORLD))" $(JX) materialize --executor $(EXECUTOR) --select '$(INGEST)' --partition-range world
	@JX_WORLD_DIR="$(abspath $(WORLD))" $(JX) materialize --executor $(EXECUTOR) --select 'group:entities or group:linking or group:mart' --summary

# the suite makes and drops its own databases (jx_test_<pid>_*, per process) and fails if it changed the demo's;
# no test collected (pytest's exit 5, e.g. a PYTEST_ARGS that selects nothing) is a failure too
test: db browser
	@set +e; $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (PYTEST_ARGS='$(PYTEST_ARGS)')" >&2; fi; exit $$rc

# chromium + fonts-noto-cjk for the browser test of the UI (apt-get, only when missing)
browser: $(STAMP)
	@$(JX) browser

ui: db
	@JX_WORLD_DIR="$(abspath $(WORLD))" $(JX) ui

# OGC API Features over the marts as jx_platform_reader: http://127.0.0.1:8081/collections (JX_SERVE_PORT)
serve: db
	@$(JX) serve

down:
	@if [ -x $(JX) ]; then $(JX) workers down && $(JX) redis down && $(JX) db down; else echo "no environment yet: nothing to stop"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lock:
	$(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
