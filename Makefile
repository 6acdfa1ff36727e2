# df-agent: `make demo` sets everything up and runs the main job; `make test` sets up and runs the suite.
VENV ?= .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup demo test lint bench

setup:
	VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(BIN)/df-agent eval maze2d --env maze2d-umaze-v0 --episodes 20 --seed 0 --out runs/umaze_df.json

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_core.py
