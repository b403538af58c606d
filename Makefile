# One-command set-up: every target below creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 is a CPU wheel where pip finds one locally (find-links), and PyPI's
# CUDA-enabled wheel on a Linux machine with a GPU. For another CUDA or ROCm build:
#   make install TORCH="torch --index-url <the index URL from pytorch.org's selector>"
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install run test test-quick format lint type check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	touch $@

install: $(STAMP)

run: $(STAMP)  ## train: CartPole + DQN by default; pass overrides with ARGS="env=frozenlake"
	$(BIN)/python run.py $(ARGS)

test: $(STAMP)  ## the whole suite, slow learning checks included (what CI runs)
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-quick: $(STAMP)  ## the quick loop: everything but the slow checks
	$(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix --select I .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

type: $(STAMP)
	$(BIN)/mypy run.py custom experiments benchmarks

check: lint type test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
