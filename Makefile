# One front door: every target CI and developers use. `make run` and `make test` install first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
PROTOS := $(shell find proto -name '*.proto' | sort)
GEN := common/gen
PY_DIRS := $(wildcard common gateway scheduler_svc userstore_svc simulator tests bench docker)

.PHONY: help install run demo test test-fast lint fmt docs screenshots proto proto-check bench bench-full clean deploy-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv in the project root and install everything (idempotent)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

run: install  ## start userstore, scheduler and gateway in the foreground (Ctrl-C stops all three)
	$(PY) -m common.devrun

demo: install  ## start the simulated TorBox and the services, register demo users, print a live feed
	$(PY) -m simulator.demo

test: install  ## the whole test suite (unit, property, contract and end-to-end)
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install  ## everything but the end-to-end tests
	$(PY) -m pytest -q -p no:cacheprovider -m 'not e2e'

lint: install $(BUF)  ## ruff, mypy --strict, buf lint and format
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy $(PY_DIRS)
	$(BUF) lint
	$(BUF) format -d --exit-code

fmt: install $(BUF)  ## apply ruff and buf formatting
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
	$(BUF) format -w

screenshots: install  ## retake the console's screenshots in docs/ (needs Chromium; about a minute)
	$(PY) -m tests.console.screenshots

proto: install  ## regenerate the Python stubs from proto/ into common/gen
	rm -rf $(GEN)/torbox
	$(PY) -m grpc_tools.protoc -I proto \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy \
	  --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	  --python_out=$(GEN) --grpc_python_out=$(GEN) \
	  --mypy_out=$(GEN) --mypy_grpc_out=$(GEN) $(PROTOS)
	$(PY) -m common.gen_init $(GEN)/torbox

docs: install  ## write docs/api.md from the route declarations (a test checks it is fresh)
	$(PY) -m gateway.reference > docs/api.md

proto-check: proto  ## fail when the committed stubs differ from freshly generated ones
	@git add -N $(GEN) && git diff --exit-code --stat -- $(GEN) \
	  || { echo "generated code is stale: run 'make proto' and commit"; exit 1; }

bench: install  ## quick benchmarks (about ten minutes: each stack user is matured over a virtual day); figures printed and written to docs/
	$(PY) -m bench --quick

bench-full: install  ## the full benchmark suite (an hour or more: up to 1,000 matured users per scenario)
	$(PY) -m bench --full

deploy-check: install  ## render every kustomize variant, validate it offline, check the deployment rules
	docker/validate.sh

clean:  ## remove the virtual environment, tools and local data
	rm -rf $(VENV) .tools data .mypy_cache .ruff_cache .pytest_cache .hypothesis
