# The README's commands. `make demo` runs the demo assessment; `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test ui check lint bench retrain tour clean

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
	$(BIN)/impact-assets ui --port 3000

retrain: $(STAMP)
	$(BIN)/impact-assets train --assessment credit_scoring

# Regenerates the README's tour screenshots (docs/tour/*.png) with the browser test.
tour: $(STAMP)
	IMPACT_ASSETS_TOUR_DIR=docs/tour $(BIN)/python -m pytest tests/test_browser.py

check: $(STAMP)
	$(BIN)/dg check defs

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/group_metrics.py --skip-reference
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/analytics.py --skip-reference
	$(BIN)/python bench/did_calibration.py
	$(BIN)/python bench/nightly.py --skip-reference
	$(BIN)/python bench/nightly.py --skip-reference --engine both --rows 1000000,10000000

clean:
	rm -rf $(VENV) .impact
