# The README's two set-up commands, `make demo` and `make test`, need nothing but python3 (3.11+):
# each creates .venv if it is missing and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format bench clean
LINTED := src tests bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-demo

# The orders example on an embedded S3 endpoint; `make demo ARGS="--orders 50"` passes options.
demo: $(VENV)/.installed-demo
	PYTHONPATH=src $(BIN)/python -m examples.orders $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# pytest exits 5 when it collected no test: like any non-zero exit, make treats it as a failure.
test: lint
	$(BIN)/python -m pytest

# Requests, dollars and speed per operation; prints a table and writes docs/benchmarks.md.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
