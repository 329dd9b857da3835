# The README's two set-up commands, `make demo` and `make test`, need nothing but python3 (3.11+):
# each creates .venv if it is missing and installs what it needs into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo serve test matrix lint format docs bench soak clean
LINTED := src tests bench tools noxfile.py docs/hooks.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The testing extra: moto, for the embedded S3 endpoint the demo runs on.
$(VENV)/.installed-testing: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[testing]'
	touch $@

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

# The orders example over HTTP: FastAPI and uvicorn, on aiobotocore and the embedded endpoint.
$(VENV)/.installed-web: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[web,async,testing]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-testing $(VENV)/.installed-docs $(VENV)/.installed-web

# The orders example on an embedded S3 endpoint; `make demo ARGS="--orders 50"` passes options.
demo: $(VENV)/.installed-testing
	PYTHONPATH=src $(BIN)/python -m examples.orders $(ARGS)

# The orders example as a FastAPI app (src/examples/orders/web/) with uvicorn on 127.0.0.1:8000,
# over an embedded S3 endpoint and SQLite read models; prints the URL and curl examples. Ctrl-C
# stops it. `make serve ARGS="--port 8001"` passes options.
serve: $(VENV)/.installed-web
	PYTHONPATH=src $(BIN)/python -m examples.orders.web $(ARGS)

# tools/async_to_sync.py --check: the sync modules generated from the async source are current.
lint: $(VENV)/.installed-dev
	$(BIN)/python tools/async_to_sync.py --check
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed-dev
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

# The documentation site (mkdocs.yml) into site/, in strict mode: any warning, such as a broken
# link or a cross-reference that resolves nowhere, fails the build. NO_MKDOCS_2_WARNING silences
# the notice mkdocs-material prints on every run about its own end of life.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The whole suite, unit and integration tests (tests/layers.py), on every core (pytest-xdist):
# `make test ARGS="-m unit"` runs the unit tests alone. pytest exits 5 when it collected no
# test: like any non-zero exit, make treats it as a failure.
test: lint docs
	$(BIN)/python -m pytest -n auto $(ARGS)

# The other CPythons, by nox (noxfile.py): the wheel and sdist built and the wheel tried in fresh
# virtual environments of 3.11, 3.12 and 3.13, and the unit tests that need only the testing
# extra on 3.12 and 3.13; a missing interpreter fails the run. CI runs it after make test.
matrix: $(VENV)/.installed-dev
	$(BIN)/nox

# Requests, dollars and speed per operation; prints a table and writes docs/benchmarks.md.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

# The soak (tests/soak): 1,000 random fault schedules over several streams, with projector
# passes, rebuilds with readers, compaction, deletion and erasure rounds cut short beside the
# writers, and writer processes killed between their PUT and its answer; each schedule is
# checked, and the outcome counts are printed. 53 minutes on this 2-core machine with other work
# beside it. `make soak ARGS="--schedules 100 --seed 7"`, or `ARGS="--replay SEED"`.
soak: $(VENV)/.installed-testing
	$(BIN)/python -m tests.soak $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis .nox dist site
