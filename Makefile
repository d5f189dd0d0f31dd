# Atlas: the two commands are `make demo` (the whole path, end to end) and `make test` (the suite).
# Both run `make setup` first, which does nothing when the venv and the embedding model are in place.

PYTHON ?= python3
STATE := .atlas
VENV := .venv
PY := $(VENV)/bin/python
BUILD_VENV := $(STATE)/build-venv
MODEL_DIR := $(STATE)/models/all-MiniLM-L6-v2
# int8 (about 23 MB) is the model the retrieval bundle ships: fp32 (90 MB) leaves no room under the
# 100 MB source limit of Cloud Functions.
MODEL_INT8_DIR := $(MODEL_DIR)-int8
CHECKOV_VENV := $(STATE)/checkov-venv
CHECKOV_ARGS := --directory terraform --framework terraform --skip-download --compact --quiet \
	--external-checks-dir infra/checkov
# The providers' schemas (tests/infra/test_provider_schema.py: what `terraform validate` checks, offline),
# derived from the pinned CDK bindings wheels (about 140 MB, downloaded, never installed).
PROVIDER_SCHEMA_DIR := $(STATE)/provider-schema
PROVIDER_SCHEMA := $(PROVIDER_SCHEMA_DIR)/schema.json
# Mermaid's script for `atlas show --html` pages that draw offline (npm registry; checked in headless Chromium).
MERMAID_VERSION := 12.3.0
MERMAID_JS := $(STATE)/mermaid/mermaid.min.js
export ATLAS_MERMAID_JS ?= $(abspath $(MERMAID_JS))
# The default model everywhere is int8 too: same quality as fp32 on SciFact, faster (docs/retrieval.md).
export ATLAS_EMBEDDING_MODEL_DIR ?= $(abspath $(MODEL_INT8_DIR))

.PHONY: setup test lint unit demo up down clean help checkov package provider-schema

help:
	@echo "make demo   run a task end to end on the local emulators (no key: a degraded brief)"
	@echo "make test   run the whole test suite (lint, unit, integration, end-to-end)"
	@echo "make up     start the local stack and keep it running; make down stops it"

setup: $(VENV)/.installed $(MODEL_DIR)/atlas-model.json $(MODEL_INT8_DIR)/atlas-model.json $(MERMAID_JS)

$(MERMAID_JS):
	mkdir -p $(STATE)/mermaid/pack
	cd $(STATE)/mermaid/pack && npm pack --silent mermaid@$(MERMAID_VERSION) >/dev/null
	tar -xzf $(STATE)/mermaid/pack/mermaid-$(MERMAID_VERSION).tgz -C $(STATE)/mermaid/pack package/dist/mermaid.min.js
	mv $(STATE)/mermaid/pack/package/dist/mermaid.min.js $@
	rm -rf $(STATE)/mermaid/pack

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Atlas needs Python 3.11 or newer"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(BUILD_VENV)/.installed: requirements-build.txt
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet -r requirements-build.txt
	touch $@

$(MODEL_DIR)/atlas-model.json: scripts/build_embedding_model.py | $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/python scripts/build_embedding_model.py --out $(MODEL_DIR)

$(MODEL_INT8_DIR)/atlas-model.json: $(MODEL_DIR)/atlas-model.json | $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/python scripts/build_embedding_model.py --out $(MODEL_DIR) --quantize

# checkov lives in its own venv: it ships a module named hcl2 that clashes with python-hcl2 (tests/infra).
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

# Zero failed checks, or this fails; every skip is justified inline (#checkov:skip=ID:why).
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov $(CHECKOV_ARGS)

# pip keeps wheels already in the folder (same hash); the script reads only the pinned ones.
$(PROVIDER_SCHEMA): requirements-provider-schema.txt scripts/provider_schema.py | $(VENV)/.installed
	$(PY) -m pip download --quiet --no-deps --require-hashes -r requirements-provider-schema.txt \
		-d $(PROVIDER_SCHEMA_DIR)/wheels
	$(PY) scripts/provider_schema.py --requirements requirements-provider-schema.txt \
		--wheels $(PROVIDER_SCHEMA_DIR)/wheels --out $@

provider-schema: $(PROVIDER_SCHEMA)

# dist/worker-<hash>.zip, dist/retrieval-<hash>.zip and dist/manifest.json, which terraform/ reads.
package: setup
	$(PY) scripts/package_functions.py --out dist --model-dir $(MODEL_INT8_DIR)

lint: setup checkov
	$(VENV)/bin/ruff check shared functions infra scripts tests
	$(VENV)/bin/mypy
	terraform fmt -check -recursive terraform

unit: setup
	$(PY) -m pytest tests/unit

test: setup lint $(PROVIDER_SCHEMA)
	$(PY) -m pytest

demo: setup
	$(PY) scripts/demo.py

# make up REHEARSAL=1: the stack also starts the local OpenAI-compatible server (canned designs) and points
# the worker's chain at it; make down stops it with the rest.
up: setup
	$(PY) infra/local/stack.py up $(if $(REHEARSAL),--rehearsal)

down:
	@if [ -x $(PY) ]; then $(PY) infra/local/stack.py down; else echo "nothing to stop"; fi

clean: down
	rm -rf $(VENV) $(STATE)
