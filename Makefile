# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
HOST    ?= 127.0.0.1
PORT    ?= 8000
PYTEST_ARGS ?=
# torch first and pinned: the CPU wheel here; anything else would pull gigabytes of CUDA.
TORCH   ?= torch==2.13.0

.PHONY: run test install install-dev install-bench system-deps services lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[worker]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.run-installed
	$(BIN)/pip install -q -e '.[worker,dev]'
	touch $@

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.dev-installed
	$(BIN)/pip install -q -e '.[worker,dev,bench]'
	touch $@

install: $(VENV)/.run-installed
install-dev: $(VENV)/.dev-installed
install-bench: $(VENV)/.bench-installed

## make run: embedded all-in-one (SQLite, local storage, no servers) with a demo org whose
## random password is printed once (or `make run DEMO_PASSWORD=...` to choose it).
run: install
	$(BIN)/atelier up --host $(HOST) --port $(PORT) $(if $(DEMO_PASSWORD),--demo-password '$(DEMO_PASSWORD)')

## make test: installs what tests need (the bench extra too: the peer smoke test runs diffusers'
## own scripts), starts PostgreSQL and Redis, runs the suite.
test: install-bench system-deps services
	$(BIN)/ruff check app worker tests bench
	$(BIN)/pytest $(PYTEST_ARGS)

system-deps:
	bash scripts/install_system_deps.sh

services:
	bash scripts/ensure_services.sh

lint: install-dev
	$(BIN)/ruff check app worker tests bench

bench: install-bench services
	$(BIN)/python bench/train_throughput.py --tiny
	$(BIN)/python bench/peer_compare.py --smoke
	OUT=test-artifacts/gpu-smoke PYTHON=$(BIN)/python bash bench/gpu/run.sh --smoke
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/stream_load.py
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/first_job.py

clean:
	rm -rf $(VENV) .atelier test-artifacts
