# The README's two commands: `make run` (the main job) and `make test` (lint, format check, tests).
# Each makes the virtual environment and installs the project with its extras first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results/default

.PHONY: run test test-newest lint format benchmark gallery clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m experiments.gradient_flow --out $(OUT)

test: $(VENV)/.installed lint
	$(BIN)/python -m pytest -n 2 --dist loadscope  # a module per worker: shared compilations

# The library's tests with only the `test` extra (no Flax, optax, scikit-learn, matplotlib),
# on the newest Python this machine has; CI runs it after `make test` (3.11, everything).
NEWEST_PYTHON ?= python3.13
NEWEST_VENV := .venv-newest

test-newest:
	$(NEWEST_PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install --quiet -e '.[test]'
	$(NEWEST_VENV)/bin/python -m pytest -n 2 --dist loadscope

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The main job against PyTorch eager needs torch (a CPU build): the `benchmark` extra.
benchmark: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[benchmark]'
	$(BIN)/python -m experiments.benchmark --out results/benchmark
	$(BIN)/python -m experiments.benchmark --main-job --out results/benchmark

gallery: $(VENV)/.installed
	$(BIN)/python -m experiments.plot_activations --out results/gallery

clean:
	rm -rf $(VENV) $(NEWEST_VENV) results .pytest_cache
