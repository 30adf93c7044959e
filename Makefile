# Herald — every target creates the virtual environment first if it is missing.
# Needs Python 3.11+ on PATH as python3; everything else comes from uv.lock.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SYNCED := $(VENV)/.synced
UV_VERSION := 0.13.8

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv manifest browsers demo docs test test-fast dev prod-up prod-down prod-status bench bench-quick lint lint-fix clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(SYNCED): pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Herald needs Python 3.11+, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	@# --compile-bytecode: the .pyc files are written once here; without them every process
	@# (each `herald` command, each test worker) compiles dagster and dbt from source again
	$(BIN)/uv sync --locked --quiet --compile-bytecode
	@touch $(SYNCED)

venv: $(SYNCED)  ## create or update the virtual environment from uv.lock

manifest: venv  ## parse the dbt project for both targets (Dagster reads target/<engine>/manifest.json)
	@# parsing connects to nothing: the postgres target only needs its variables to have values
	HERALD_PG_HOST=$${HERALD_PG_HOST:-127.0.0.1} HERALD_PG_PORT=$${HERALD_PG_PORT:-5432} \
	HERALD_PG_USER=$${HERALD_PG_USER:-postgres} HERALD_PG_DATABASE=$${HERALD_PG_DATABASE:-herald} \
	$(BIN)/python -c "from resources.dbt import ensure_manifest; [ensure_manifest(t) for t in ('duckdb', 'postgres')]"

browsers:  ## install Debian's chromium for the browser tests when /usr/bin/chromium is missing (needs root)
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

demo: venv  ## generate sample packets, ingest them end to end on the embedded default, print a report
	$(BIN)/herald demo

docs: venv manifest  ## build the dbt docs site (models, columns, tests, lineage) from the configured warehouse, e.g. after `make demo`
	@$(BIN)/python -c "from herald.settings import Settings; from herald.warehouse.catalog import generate_docs; \
	folder = generate_docs(Settings.from_env()); \
	print(f'dbt docs written to {folder}/index.html (static_index.html opens without a server)')" \
	|| (echo "make docs: dbt docs generate failed (has the warehouse been built? try make demo)" >&2; exit 1)
	@echo "serve them on http://127.0.0.1:8080/ with: $(BIN)/herald docs"

prod-up: venv manifest  ## the production stack on this machine: deploy/compose.yaml's processes on PostgreSQL (127.0.0.1:5432), S3 (moto), Redis; UI on :3000
	$(BIN)/herald stack up $(STACK_ARGS)

prod-down:  ## stop the production stack and every run it launched; nothing is left running
	$(BIN)/herald stack down $(STACK_ARGS)

prod-status:  ## each process of the production stack: pid, state, address, log
	$(BIN)/herald stack status

# Two workers (the machine's cores); each test module stays in one worker, so a module's
# expensive fixture (a demo deployment, a dbt build) is made once.
PYTEST_WORKERS ?= 2

test: venv browsers manifest  ## run the whole suite (PostgreSQL tests need 127.0.0.1:5432; under CI=true they must run)
	@mkdir -p .pytest_tmp
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadscope --junitxml=.pytest_tmp/junit.xml $(PYTEST_ARGS)

test-fast: venv  ## unit tests and the Dagster definitions (no warehouse, no dbt build)
	$(BIN)/pytest -q tests/unit tests/orchestration tests/test_definitions.py

dev: venv  ## start the Dagster UI on http://127.0.0.1:3000
	$(BIN)/herald dev

bench: venv  ## every speed target beside its floor: packets (1k, 1M), demo, delivery (embedded, 4 workers on PostgreSQL + Redis), STOP, funnel event → send, portal reads beside a dbt build; table + bench/out/results.json + chart
	$(BIN)/python bench/packet_latency.py --sizes 1000 --repeat 3
	$(BIN)/python bench/packet_latency.py --sizes 1000000
	$(BIN)/python bench/fixed_and_demo.py --repeat 3
	$(BIN)/python bench/campaign_throughput.py --recipients 100000
	$(BIN)/python bench/delivery_workers.py
	$(BIN)/python bench/stop_latency.py
	$(BIN)/python bench/event_to_send.py --repeat 3
	$(BIN)/python bench/portal_reads.py
	$(BIN)/python bench/report.py

bench-quick: venv  ## the small cases only (about two minutes): a 1k-row packet, a 10k-recipient campaign, STOP, the definitions' import; then the table
	$(BIN)/python bench/packet_latency.py --sizes 1000
	$(BIN)/python bench/fixed_and_demo.py --no-demo
	$(BIN)/python bench/campaign_throughput.py --recipients 10000
	$(BIN)/python bench/stop_latency.py --trials 5
	$(BIN)/python bench/report.py

# Every step runs even when an earlier one fails, so one run lists every problem; the exit
# status is non-zero if any step failed, and the last lines name the failed steps.
lint: venv  ## ruff (lint, format check), sqlfluff on dbt_project, import contracts (herald/ free of Dagster), hadolint on deploy/Dockerfile
	@failed=""; \
	echo "== ruff check"; $(BIN)/ruff check . || failed="$$failed ruff-check"; \
	echo "== ruff format --check"; $(BIN)/ruff format --check . || failed="$$failed ruff-format"; \
	echo "== sqlfluff lint dbt_project"; $(BIN)/sqlfluff lint dbt_project --processes 2 || failed="$$failed sqlfluff"; \
	echo "== lint-imports"; $(BIN)/lint-imports || failed="$$failed import-contracts"; \
	echo "== hadolint deploy/Dockerfile"; $(BIN)/hadolint deploy/Dockerfile || failed="$$failed hadolint"; \
	if [ -n "$$failed" ]; then echo "make lint: FAILED:$$failed"; exit 1; fi; \
	echo "make lint: all checks passed"

lint-fix: venv  ## apply ruff's fixes and formatting and sqlfluff's fixes (then review the diff)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix dbt_project --processes 2

clean:  ## remove the environment, dbt targets and the embedded home
	rm -rf $(VENV) .herald dbt_project/target dbt_project/logs .pytest_tmp
