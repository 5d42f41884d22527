# Every target installs what it needs from nothing: Debian packages, then the Python venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
GATEWAYS ?= 1
INVENTORY ?= testbed/inventory.py
APT_PACKAGES := python3 python3-venv debootstrap systemd-container iproute2 openssh-client curl chromium

.PHONY: help deps venv demo deploy test test-unit lint format testbed-up testbed-down testbed-status bench rollout lock history master-key test-fleet-key-extra client-key kill-matrix bench-metrics status test-long

help:
	@echo "make demo          boot the local fleet, deploy the gateway, validate it, print the report"
	@echo "make test          every test: unit and end-to-end, two workers with a fleet each (needs root)"
	@echo "make testbed-up    boot the local fleet (GATEWAYS=N for more gateways)"
	@echo "make testbed-down  stop the fleet and leave nothing behind"
	@echo "make rollout       canary, then batches (BATCH=N) behind the load balancer; ARGS=--dry to preview"
	@echo "make lock LITELLM=X.Y.Z  lock a LiteLLM release (refused ones excluded) and set litellm_version"
	@echo "                   BESIDE=1: lock it beside the pin (requirements/gateway-X.Y.Z.lock)"
	@echo "make history       the fleet's deployment record, oldest first (ARGS=--json)"
	@echo "make master-key    print the fleet's master key (ARGS='--fingerprints' shows only hashes)"
	@echo "make test-fleet-key-extra  the master key's rotation and split-fleet checks (beyond make test)"
	@echo "make client-key NAME=app  the client's key (made once, kept on this machine); ROTATE=1 [OLD_UNTIL=ISO]"
	@echo "make kill-matrix   kill a release change at every step and at random moments; table of outcomes"
	@echo "make status        the whole fleet on one screen: gateways, model groups, alerts (ARGS=--json)"
	@echo "make test-long     the end-to-end tests beyond make test's 20 minutes (README \"Tests\")"
	@echo "make lint          ruff"

# Debian packages, installed only when missing (the control machine; needs root).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# control.lock runs the deploy; test.lock adds the client libraries the e2e tests drive the gateway with.
$(VENV)/.installed: requirements/control.lock requirements/test.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/control.lock
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/test.lock
	touch $@

venv: deps $(VENV)/.installed

demo: venv
	$(PY) -m testbed up --gateways $(GATEWAYS)
	rm -rf reports/demo
	$(VENV)/bin/pyinfra -y $(INVENTORY) deploy.py --data 'validation_report=reports/demo/validation-{host}.json'
	$(PY) -m hxgw.report reports/demo/*.json

deploy: venv
	$(VENV)/bin/pyinfra -y $(INVENTORY) deploy.py

# Two workers, each with a fleet of its own (tests/conftest.py); tests sharing a costly fixture
# stay on one worker (tests/e2e/conftest.py). TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
# More pytest options for `make test`, e.g. PYTEST_ARGS='-v --durations=0' (each test's worker and time).
PYTEST_ARGS ?=
test: venv
	$(PY) -m pytest -ra --durations=30 -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Issue 23: a release change SIGKILLed at every step boundary and at random moments, each followed by
# a plain re-run; prints the table of kill points and outcomes (reports/kill-matrix.md). Its own
# fleet on KILL_NET (default 1). RANDOM_POINTS per phase (install, restart).
KILL_NET ?= 1
RANDOM_POINTS ?= 3
kill-matrix: venv
	HX_TESTBED_NET=$(KILL_NET) $(PY) -m tests.e2e.kill_matrix --random $(RANDOM_POINTS) $(KILL_ARGS)

test-unit: venv
	$(PY) -m pytest -ra tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

testbed-up: venv
	$(PY) -m testbed up --gateways $(GATEWAYS)

testbed-down: venv
	$(PY) -m testbed down

testbed-status: venv
	$(PY) -m testbed status

# The deploy benchmark on a fleet of its own (HX_TESTBED_NET, default 9): bench/results.{md,json}.
bench: venv
	$(PY) bench/run.py $(if $(ONLY),--only $(ONLY))

# Only the metrics' cost rows (req/s and p50 with metrics on and off, Prometheus's memory with 10
# gateways) on a fleet of their own: bench/metrics-results.{md,json}.
bench-metrics: venv
	$(PY) bench/metrics_cost.py

# Canary first, then BATCH gateways at a time, each drained from HAProxy around its restart;
# a bad change rolls back and stops the rollout. ARGS: --dry, --data k=v, --group-data DIR, ...
BATCH ?= 1
rollout: venv
	$(PY) -m rollout $(INVENTORY) --batch-size $(BATCH) $(ARGS)

# One step for a LiteLLM upgrade or downgrade: pin, re-lock with hashes, set litellm_version.
# BESIDE=1 locks the release beside the pin instead (requirements/gateway-X.Y.Z.lock).
lock: venv
	@test -n "$(LITELLM)" || { echo "name the release: make lock LITELLM=X.Y.Z"; exit 2; }
	$(PY) -m hxops.lock_gateway $(LITELLM) $(if $(BESIDE),--beside)

# The deployment record of every gateway in INVENTORY, oldest first, read from the hosts (ARGS=--json).
history: venv
	$(PY) -m hxops.history $(INVENTORY) $(ARGS)

# Beyond make test's budget, on the rollout fleet (tests/e2e/fleet_key_extra.py): a MASTER_KEY
# rotation across the fleet and its front door; a fleet serving two keys fails the front-door check.
test-fleet-key-extra: venv
	$(PY) -m pytest -ra -n 0 tests/e2e/fleet_key_extra.py $(PYTEST_ARGS)

# Every end-to-end test that does not fit make test's 20 minutes (tests/e2e/*_long.py and the fleet
# key's extras), in one process on HX_TESTBED_NET (default 0). README "Tests" lists them and why.
test-long: venv
	$(PY) -m pytest -ra -n 0 tests/e2e/fleet_key_extra.py $(wildcard tests/e2e/*_long.py) $(PYTEST_ARGS)

# The fleet's one master key, printed only here (hxops/master_key.py; hxops/fleet_key.py decides it).
# ARGS: --from HOST (the key a gateway holds), --fingerprints (each gateway's sha256, no key).
master-key: venv
	@$(PY) -m hxops.master_key $(INVENTORY) $(ARGS)
# A client's key (group data `clients`), made once on this control machine and printed for the
# operator to hand over; the gateways get its sha256 at the next rollout. ROTATE=1 adds a new key
# and ends the current one at OLD_UNTIL (default: in 24 h). README "Clients and keys".
client-key: venv
	@test -n "$(NAME)" || { echo "usage: make client-key NAME=<client> [ROTATE=1 [OLD_UNTIL=2027-01-31T12:00:00+00:00]]" >&2; exit 2; }
	@$(PY) -m hxops.client_keys "$(NAME)" $(if $(ROTATE),--rotate) $(if $(OLD_UNTIL),--old-until "$(OLD_UNTIL)")

# The whole fleet on one screen, from the `monitoring` group's Prometheus, or direct probes without one.
status: venv
	$(PY) -m hxops.status $(INVENTORY) $(ARGS)
