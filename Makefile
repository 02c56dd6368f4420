# Two commands on a fresh machine with Python >= 3.11:
#   make run       create .venv, install irisbench, run the default experiment (embedded MLflow store)
#   make test      create .venv with the dev extras (and Debian's Chromium if missing) and run the fast tests
#   make test-all  everything, the slow tests too (installs the wheel in a fresh venv; what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test test-all check clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/irisbench run $(ARGS)

# The HTML report's tests render it in Debian's Chromium, driven by Playwright (no browser download).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

test: $(VENV)/.installed-dev chromium
	$(BIN)/python -m pytest -m "not slow"

test-all: $(VENV)/.installed-dev chromium
	$(BIN)/python -m pytest

# The robustness regression check: a small deterministic grid against the committed baseline.
check: $(VENV)/.installed
	rm -rf $(VENV)/ci-run
	$(BIN)/irisbench run --config .ci/grid.toml --out $(VENV)/ci-run
	$(BIN)/irisbench check $(VENV)/ci-run --baseline results/ci_baseline.json

clean:
	rm -rf $(VENV) build *.egg-info
