# The README's commands. `make demo` runs the demo assessment; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# what the demo and the UI need; the tests add the [dev] extra (Spark, MLflow, PostgreSQL, test tools)
STAMP := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.dev-installed-stamp
# -qq: pip says only what fails, not the build backend's notes
PIP := $(BIN)/python -m pip install -qq --disable-pip-version-check

.PHONY: install install-dev demo test ui check lint bench retrain tour clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) -e '.[dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/impact-assets demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

ui: $(STAMP)
	$(BIN)/impact-assets ui --port 3000

retrain: $(STAMP)
	$(BIN)/impact-assets train --assessment credit_scoring

# Regenerates the README's tour screenshots (docs/tour/*.png) with the browser test.
tour: $(DEV_STAMP)
	IMPACT_ASSETS_TOUR_DIR=docs/tour $(BIN)/python -m pytest tests/test_browser.py

check: $(STAMP)
	$(BIN)/dg check defs

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(DEV_STAMP)
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/group_metrics.py --skip-reference
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/analytics.py --skip-reference
	$(BIN)/python bench/did_calibration.py
	$(BIN)/python bench/nightly.py --skip-reference
	$(BIN)/python bench/nightly.py --skip-reference --engine both --rows 1000000,10000000

clean:
	rm -rf $(VENV) .impact
