# Two entry points that work on a fresh clone; each sets up .venv/ on first use.
#   make demo   - the whole pipeline offline on the built-in mock provider
#   make test   - the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := data/demo

.PHONY: demo test setup

setup: $(VENV)/.installed

# CPU torch first (a plain `torch` requirement could pull a multi-GB CUDA build).
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -r requirements.txt
	touch $@

test: setup
	$(PY) -m pytest -q

demo: setup
	SPT_DATA_DIR=$(DEMO_DIR) $(PY) scripts/run_offline_demo.py
