# The README's two commands: `make run` (the main job) and `make test` (lint, format check, tests).
# Each makes the virtual environment and installs the project with its extras first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results/default

.PHONY: run test lint format benchmark gallery clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m experiments.gradient_flow --out $(OUT)

test: $(VENV)/.installed lint
	$(BIN)/python -m pytest -n 2 --dist loadscope  # a module per worker: shared compilations

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

benchmark: $(VENV)/.installed
	$(BIN)/python -m experiments.benchmark --out results/benchmark

gallery: $(VENV)/.installed
	$(BIN)/python -m experiments.plot_activations --out results/gallery

clean:
	rm -rf $(VENV) results .pytest_cache
