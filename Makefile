# carebridge: `make run` starts the whole broker on embedded defaults, `make test` tests it.
# Every target creates .venv and installs what is missing, so they work on a fresh machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run demo test reliability browser security check lint typecheck contracts validate bench bench-queries bench-dispatch attack-probe clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(PY) -m services.stack run

SCENARIO ?= basic

# make demo                          the basic flow; make demo SCENARIO=broken-trigger: Gotland
demo: install
	$(PY) -m services.demo $(SCENARIO)

PYTEST_ARGS ?=

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

test: install $(CHROMIUM)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# fault injection on a real stack (also part of `make test`)
reliability: install
	$(PY) -m pytest -q -m reliability

# hostile input and source-system authentication (also part of `make test`)
security: install
	$(PY) -m pytest -q -m security

# every attack of the README's threat model against a private stack: expected vs observed
attack-probe: install
	$(PY) -m services.attack_probe

# the ops console in a real Chromium (also part of `make test` and CI)
browser: install $(CHROMIUM)
	$(PY) -m pytest -q -m browser

lint: install
	$(PY) -m ruff check services tests bench
	$(PY) -m ruff format --check services tests bench

typecheck: install
	$(PY) -m mypy services tests bench

check: lint typecheck test

contracts: install
	$(PY) -m services.contracts_cli

# make validate CONTRACT=takecare/medication-list FILE=my-list.json
validate: install
	$(PY) -m services.contracts_cli validate $(CONTRACT) $(FILE)

# end to end through the real stack against a bare-Kafka baseline → bench/results.json
# (BENCH_ARGS=--scale | --drain 50000 | --scale-out | --profile | --help)
bench: install
	$(PY) bench/e2e.py $(BENCH_ARGS)

# search and dashboard queries at 1M deliveries, SQLite and PostgreSQL (BENCH_ARGS=--help)
BENCH_ARGS ?=
bench-queries: install
	$(PY) bench/query_speed.py $(BENCH_ARGS)

# the router's dispatch query at a 120,000-delivery backlog, SQLite and PostgreSQL (BENCH_ARGS=--help)
bench-dispatch: install
	$(PY) bench/dispatch_speed.py $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache test-output
