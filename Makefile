# orthgate: every entry point an operator or CI needs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev
# Pulumi state stays on this machine unless the operator chooses otherwise.
export PULUMI_BACKEND_URL ?= file://~

.PHONY: help test lint system-packages venv preview up validate plan demo bench proxy-bundle constraints clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

test: system-packages venv lint ## set up from scratch if needed, then lint and run every test
	# The tests without servers on both cores (whole files per worker: module fixtures are
	# evaluated once); then the servers in network namespaces, one test at a time.
	$(BIN)/pytest -n 2 --dist loadfile tests/unit tests/operator
	$(BIN)/pytest tests/integration tests/test_pulumi_cli.py

lint: venv ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

system-packages: ## install the Debian packages the tests run for real (needs root or sudo)
	scripts/install-system-packages

venv: $(VENV)/.installed ## the virtualenv with pinned requirements

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "orthgate needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	# The `orthgate` command, from this checkout (editable: edits take effect at once).
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

preview: venv ## pulumi preview of STACK (default dev)
	$(BIN)/orthgate preview $(STACK)

up: venv ## validate, preview, confirm and deploy STACK (default dev), state in the local backend
	$(BIN)/orthgate up $(STACK)

validate: venv ## check every stack file offline (no Pulumi CLI, no credentials)
	$(BIN)/orthgate validate

plan: venv ## offline plan of STACK: resources, exposure, monthly cost
	$(BIN)/orthgate plan $(STACK)

demo: system-packages venv ## rehearse modality -> proxy -> cloud on this machine (root)
	$(BIN)/python -m tools.demo

bench: system-packages venv ## time the DICOM paths, the proxy and big stack evaluations (root; about 11 min)
	$(BIN)/python bench/evaluation.py --json
	$(BIN)/python bench/dicom_path.py --json

proxy-bundle: venv ## write SITE's DICOM proxy bundle of STACK into DEST (alias of orthgate bundle)
	$(BIN)/orthgate bundle $(STACK) $(SITE) $(or $(DEST),proxy-$(SITE))

constraints: venv ## re-pin every transitive dependency after changing requirements
	{ echo "# Every package the venv holds, pinned, so a clean clone installs the same tree."; \
	  echo "# Regenerate with: make constraints"; $(BIN)/pip freeze --exclude-editable; } > constraints.txt

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build orthgate.egg-info
