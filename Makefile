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
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -r requirements.txt
	touch $@

test: setup
	$(PY) -m pytest -q

# The whole pipeline offline on the built-in mock provider (no API key, no cost). Rerunning
# resumes: every stage skips what it has already done. Outputs go to $(DEMO_DIR)/.
demo: setup
	@export SPT_DATA_DIR=$(DEMO_DIR); set -e; \
	$(PY) scripts/dataset_generation_stage_1.py --names sycophancy jailbreak_attempts \
	    --target_items 8 --num_items_per_batch 4 --provider mock --model mock-generator; \
	$(PY) scripts/dataset_generation_stage_2.py --names all --inference mock --model demo/target-model; \
	$(PY) scripts/dataset_generation_stage_3.py --names all --provider mock --model mock-generator \
	    --intervention_modification demo_v1; \
	$(PY) scripts/tag_stage_3_data.py; \
	$(PY) scripts/analyze_stage_3.py; \
	echo; echo "Demo outputs (mock data) in $(DEMO_DIR)/:"; \
	for d in stage_1 stage_2 stage_3 stage_3_tagged; do echo "  $(DEMO_DIR)/$$d/<topic>/*.json"; done; \
	echo "  $(DEMO_DIR)/stage_3_analysis/report.md   <- read this first"
