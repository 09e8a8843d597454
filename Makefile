# svpms.incident_response — the two commands are `make demo` and `make test`.
# Both do their own set-up (venv, installs, the collection self-link).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
LINK := .collections/ansible_collections/svpms/incident_response
SANDBOX := PYTHONPATH=sandbox $(BIN)/python -m svpms_sandbox
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help setup demo demo-stop test unit server-tests integration sandbox-test e2e lint sanity docs importer molecule build bench clean

help:
	@echo "make demo   - set up, start the local sandbox, inject a bad deploy, triage -> page -> runbook -> resolve -> report (prints the HTML report path)"
	@echo "              FAULT=lock_contention|cache_miss_storm|slow_deploy make demo: the high latency scenario instead"
	@echo "              FAULT=redis_down|jwt_key_mismatch|idp_cert_expired|user_table_denied make demo: authentication"
	@echo "              FAULT=webhook_endpoint_down|webhook_secret_mismatch|stripe_key_revoked|signature_check_disabled make demo: Stripe webhooks"
	@echo "make test   - everything CI checks (lint, sanity, docs, unit, integration, e2e, molecule, galaxy-importer)"

$(BIN)/ansible-playbook: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(LINK):
	mkdir -p $(dir $(LINK))
	ln -sfn ../../.. $(LINK)

setup: $(BIN)/ansible-playbook $(LINK)

demo: setup
	@bash scripts/demo.sh

demo-stop:
	-$(SANDBOX) stop

test: setup lint sanity docs unit server-tests molecule importer
	@echo "make test: all checks passed"

# Integration, sandbox and end-to-end tests: each test file on one worker in
# file order, with its own servers and sandbox on free ports. Alone, each
# suite runs on two workers; `make test` runs the three as one session on
# four, which keeps both cores busy (measured: 18 min instead of 21, 180 % CPU;
# the suites are CPU-bound in ansible-playbook and module start-up, not idle).
E2E_WORKERS ?= 2
TEST_WORKERS ?= 4

server-tests: setup
	$(BIN)/pytest tests/integration tests/sandbox tests/e2e -q -n $(TEST_WORKERS) --dist loadfile --durations=30

unit: setup
	$(BIN)/pytest tests/unit -q

integration: setup
	$(BIN)/pytest tests/integration -q -n $(E2E_WORKERS) --dist loadfile --durations=15

sandbox-test: setup
	$(BIN)/pytest tests/sandbox -q -n $(E2E_WORKERS) --dist loadfile

e2e: setup
	$(BIN)/pytest tests/e2e -q -n $(E2E_WORKERS) --dist loadfile --durations=0 --durations-min=20

lint: setup
	bash scripts/lint.sh

sanity: setup
	bash scripts/sanity.sh

docs: setup
	bash scripts/docs.sh

molecule: setup
	bash scripts/molecule.sh

importer: setup build
	bash scripts/importer.sh

# Figures, not tests: how long the high-latency evidence pass and health verification of 1/10/50 services take.
bench: setup
	$(BIN)/python benchmarks/evidence_pass.py
	$(BIN)/python benchmarks/health_verification.py

build: setup
	mkdir -p build
	$(BIN)/ansible-galaxy collection build --force --output-path build .

clean: demo-stop
	rm -rf build tests/output .collections collections
