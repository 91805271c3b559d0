# carebridge: `make run` starts the whole broker on embedded defaults, `make test` tests it.
# Every target creates .venv and installs what is missing, so they work on a fresh machine.

PYTHON ?= python3
# This machine's environment sets PYTHONDONTWRITEBYTECODE=1: every process would then compile
# every module it imports again, and pytest rewrite every test module's asserts again in each
# worker of each run (collecting tests/unit took 17.5 s a worker with it, 7 s without).
unexport PYTHONDONTWRITEBYTECODE
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run demo test test-fast test-postgres test-apache reliability browser security check lint typecheck contracts guide validate bench bench-queries bench-dispatch attack-probe clean
.PHONY: kafka postgres postgres-binaries lock lock-check oidc-provider fhir-validator

# Everything is installed from requirements-dev.lock: each package pinned, with the sha256 of
# its files, for Linux x86_64 and CPython 3.11 (pip refuses a file whose hash is not listed).
# The project itself comes after, without dependencies and built by the locked setuptools;
# `pip check` then fails if pyproject.toml wants a package the lock lacks (run make lock).
LOCK := requirements-dev.lock

install: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@touch $(STAMP)

# make lock: resolve requirements-dev.lock and requirements.lock (the production image's) again
# from pyproject.toml, keeping every pin it still allows (LOCK_ARGS=--upgrade, or
# LOCK_ARGS='--upgrade-package fastapi', to move them). make lock-check: they match it.
# uv resolves; it runs from a venv of its own, installed from the dev lock's uv and packaging pins.
LOCK_ARGS ?=
UV_VENV := .cache/lock-tools
UV      := $(UV_VENV)/bin/uv

$(UV): $(LOCK)
	@test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(PYTHON) -m sandbox.lockfile requirement uv packaging $(LOCK) > $(UV_VENV)/requirements.txt
	$(UV_VENV)/bin/python -m pip install --quiet --require-hashes -r $(UV_VENV)/requirements.txt
	@touch $(UV)

lock: $(UV)
	$(UV_VENV)/bin/python -m sandbox.lockfile compile --uv $(UV) $(LOCK_ARGS)

lock-check: $(UV)
	$(UV_VENV)/bin/python -m sandbox.lockfile check --uv $(UV)

# The sandbox, chosen explicitly: sandbox.stack starts every service with
# <PREFIX>ENVIRONMENT=sandbox on loopback (a service started without it is in production and
# refuses the sandbox's published secrets). `make demo`, `make bench` and `make attack-probe`
# start the same stack.
# make run KAFKA=apache: the same stack on Apache Kafka (SASL_SSL, a SCRAM user per service, ACLs)
# The sandbox region is the fictive Region Halland (contracts/units/halland.json: three
# municipalities, two vårdcentraler); make run REGION=gotland runs Gotland's one municipality.
KAFKA ?= tansu
REGION ?= halland
run: install oidc-provider $(if $(filter apache,$(KAFKA)),kafka)
	STACK_KAFKA=$(KAFKA) STACK_REGION=$(REGION) $(PY) -m sandbox.stack run

SCENARIO ?= basic

# make demo                          the basic flow, routed per municipality (REGION=gotland:
#                                    Gotland); make demo SCENARIO=broken-trigger: Gotland
demo: install
	$(PY) -m sandbox.demo $(SCENARIO) --region $(REGION)

PYTEST_ARGS ?=

# The browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

# Everything the suite uses is installed here: Chromium, PostgreSQL (the fault-injection
# tests start private clusters from its binaries; the ones on production's pair use the
# server make postgres starts) and Apache Kafka's jars. Three runs on two workers: the tests
# that start no stack; the stack tests on make run's pair, Tansu and SQLite (end to end,
# browser, Tansu's own data loss); and the fault-injection suite with the broker-facing
# end-to-end flows on production's pair, Apache Kafka (SASL_SSL, ACLs) and PostgreSQL. The
# fault tests run once, on production's pair (make reliability runs them on Tansu). Stack
# runs take a file per worker, so a module's shared stack stays on one worker, the longest
# files first (the fault tests wait out outages while the other worker goes on); each
# worker takes its ports from its own part of the range.
STACK_TESTS := e2e or reliability or browser
STACK_RUN := -n 2 --dist loadfile tests/reliability tests/e2e tests/browser
TANSU_STACKS := e2e or browser or tansu_only
APACHE_STACKS := (e2e or reliability) and not (tansu_only or broker_independent)
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
# the FHIR tap validates what the Tansu run puts on Kafka; the same flows on Apache Kafka
# leave it off
APACHE_ENV := BROKER_TEST_KAFKA=apache BROKER_TEST_DATABASE_URL="$(PG_TEST_URL)" BROKER_TEST_FHIR_TAP=off
APACHE_RUN := env $(APACHE_ENV) $(PY) -m pytest -q -m "$(APACHE_STACKS)" $(STACK_RUN) $(PYTEST_ARGS)
# The runs share one FHIR validator server (a JVM's start costs about 90 s of CPU):
# tests/support/validator_session.py starts it and names it to the tests.
test: install $(CHROMIUM) postgres-binaries postgres kafka oidc-provider fhir-validator
	$(PY) -m tests.support.validator_session \
	  $(PY) -m pytest -q -n 2 -m "not ($(STACK_TESTS))" $(PYTEST_ARGS) --and-then \
	  $(PY) -m pytest -q -m "$(TANSU_STACKS)" $(STACK_RUN) $(PYTEST_ARGS) --and-then \
	  $(APACHE_RUN)

# unit and contract tests: no broker, no browser, no stack, and not the few marked slow
# (the exhaustive differential check of the contracts, property round trips, subprocesses),
# which make test runs (under two minutes)
FAST := not integration and not e2e and not reliability and not browser and not apache_kafka and not slow
test-fast: install
	$(PY) -m pytest -q -n 2 -m "$(FAST)" tests/unit $(PYTEST_ARGS)

# the suite on PostgreSQL (a server at 127.0.0.1:5432 is installed and started when none
# answers): every test that reaches a database (BROKER_TEST_DATABASE_ONLY, tests/conftest.py),
# then the console in Chromium and the end-to-end flows whose subject is not the broker
# (addressing, the whole stay, the families, the attack probe) on Tansu; the broker-facing
# flows and the fault injection run on PostgreSQL in make test's last run (test-apache).
# Left out here: what touches no database (translation, contracts, the FHIR validator and
# tap, the guide) and the e2e tests marked database_independent (supervision, log contents,
# the Gotland demo)
PG_FLOWS := browser or (e2e and broker_independent and not database_independent)
test-postgres: install $(CHROMIUM) postgres kafka oidc-provider
	BROKER_TEST_DATABASE_URL="$(PG_TEST_URL)" BROKER_TEST_DATABASE_ONLY=1 $(PY) -m pytest -q -n 2 -m "not ($(STACK_TESTS) or fhir_validator)" $(PYTEST_ARGS)
	BROKER_TEST_DATABASE_URL="$(PG_TEST_URL)" BROKER_TEST_DATABASE_ONLY=1 BROKER_TEST_FHIR_TAP=off $(PY) -m pytest -q -m "$(PG_FLOWS)" $(STACK_RUN) $(PYTEST_ARGS)

# production's pair alone (the last run of make test): every fault-injection test (but
# Tansu's own data loss) and the end-to-end flows whose subject is the broker's part (the
# admission flow, forged records, subscriptions, the supervisor) on Apache Kafka with
# SASL_SSL and ACLs and PostgreSQL
test-apache: install kafka postgres-binaries postgres
	$(APACHE_RUN)

postgres-binaries:
	@bash deploy/dev/postgres.sh binaries

postgres:
	@bash deploy/dev/postgres.sh up

# fault injection on a real stack (also part of `make test`)
reliability: install
	$(PY) -m pytest -q -m reliability

# hostile input and source-system authentication (also part of `make test`)
security: install oidc-provider
	$(PY) -m pytest -q -m security

# every attack of the threat model (docs/security.md) against a private stack: expected vs observed
attack-probe: install oidc-provider
	$(PY) -m sandbox.attack_probe

# the ops console in a real Chromium (also part of `make test` and CI)
browser: install $(CHROMIUM) oidc-provider
	$(PY) -m pytest -q -m browser

lint: install
	$(PY) -m ruff check services sandbox tests bench
	$(PY) -m ruff format --check services sandbox tests bench

typecheck: install
	$(PY) -m mypy services sandbox tests bench

check: lint typecheck test

# ... then HAPI FHIR's instance validator (tools/fhir-validator) over every conformance resource
# (contracts/fhir) and every FHIR golden: 0 errors; and over the negative set
# (contracts/fhir-negative): each spoiled message rejected for the reason its name states
contracts: install fhir-validator
	$(PY) -m sandbox.contracts_cli
	$(PY) -m sandbox.fhir_validator_process

# the browsable implementation guide, docs/guide/index.html: static HTML from contracts/fhir
# (conformance resources, mapping pages) and the golden FHIR fixtures; commit what it writes
# (make contracts fails while the committed guide is out of date)
guide: install
	$(PY) -m sandbox.guide

# make validate CONTRACT=takecare/medication-list FILE=my-list.json: the native contract, then
# the FHIR message it becomes through the reference FHIR validator (an OperationOutcome);
# make validate FILE=my-message.fhir.json: a FHIR Bundle through the validator alone
# (FHIR_VALIDATOR_URL=http://127.0.0.1:<port>: ask a running validator server instead of
# starting a JVM, about 90 s of CPU)
validate: install fhir-validator
	$(PY) -m sandbox.contracts_cli validate $(CONTRACT) $(FILE)

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

# Apache Kafka (KRaft) from Maven Central for sandbox/apache_kafka.py: its jars once, cached in
# .cache/kafka-<version>/libs (the version is deploy/kafka/pom.xml's <kafka.version>)
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml)
KAFKA_CACHE   := .cache/kafka-$(KAFKA_VERSION)

kafka: $(KAFKA_CACHE)/.assembled

$(KAFKA_CACHE)/.assembled: deploy/kafka/pom.xml
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(KAFKA_CACHE)/libs
	@touch $@

# The project's FHIR R4 validator (tools/fhir-validator: HAPI FHIR's FhirInstanceValidator,
# hapi-fhir-validation with the R4 core definitions, from Maven Central; offline),
# built once into .cache/fhir-validator-<version>/ (fhir-validator.jar beside libs/; the
# version is the pom's <hapi.version>); again only when the pom or a source file changes.
# sandbox/fhir_validator_process.py runs the same mvn command under the same stamp.
FHIR_VALIDATOR_VERSION := $(shell sed -n 's:.*<hapi.version>\(.*\)</hapi.version>.*:\1:p' tools/fhir-validator/pom.xml)
FHIR_VALIDATOR_CACHE   := .cache/fhir-validator-$(FHIR_VALIDATOR_VERSION)

fhir-validator: $(FHIR_VALIDATOR_CACHE)/.built

$(FHIR_VALIDATOR_CACHE)/.built: tools/fhir-validator/pom.xml $(shell find tools/fhir-validator/src -type f)
	mvn -q -B -f tools/fhir-validator/pom.xml package -Dvalidator.out=$(CURDIR)/$(FHIR_VALIDATOR_CACHE)
	@touch $@

# The sandbox's OpenID Connect provider (panva's oidc-provider on Node >= 20.19, see
# sandbox/oidc_provider/server.mjs and sandbox/oidc.py): installed once by `npm ci` from the
# committed package-lock.json (every package pinned with its integrity hash, no install
# scripts) into .cache/oidc-provider; again only when the lock file changes.
OIDC_CACHE := .cache/oidc-provider

oidc-provider: $(OIDC_CACHE)/.installed

$(OIDC_CACHE)/.installed: sandbox/oidc_provider/package.json sandbox/oidc_provider/package-lock.json
	@mkdir -p $(OIDC_CACHE)
	cp sandbox/oidc_provider/package.json sandbox/oidc_provider/package-lock.json $(OIDC_CACHE)/
	npm ci --prefix $(OIDC_CACHE) --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache test-output
