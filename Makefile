# The README's commands. `make demo` runs the demo assessment; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.impact/dagster

.PHONY: install demo test ui check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/impact-assets demo

test: $(STAMP)
	$(BIN)/python -m pytest

ui: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

check: $(STAMP)
	$(BIN)/dg check defs

bench: $(STAMP)
	$(BIN)/python bench/group_metrics.py

clean:
	rm -rf $(VENV) .impact
