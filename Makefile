# Two entry points that work on a fresh clone; each sets up .venv/ on first use.
#   make demo   - the whole pipeline offline on the built-in mock provider
#   make test   - the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := data/demo
DEMO_CONFIG := config/demo_training_config.json
DEMO_CHECKPOINTS := $(DEMO_DIR)/checkpoints/demo_lora

.PHONY: demo test setup

setup: $(VENV)/.installed

# torch goes in first, as the CPU build: a plain `torch` from PyPI is the multi-GB CUDA build on
# Linux. TORCH names what pip installs: the default takes torch==2.13.0 from pip's configured index
# (a local wheel index or a mirror that holds the CPU build). Elsewhere:
#   make setup TORCH="torch --index-url https://download.pytorch.org/whl/cpu"   (PyTorch's CPU index)
#   make setup TORCH=/path/to/torch-2.13.0-cp311-cp311-linux_x86_64.whl         (a wheel on disk)
#   make setup TORCH=torch                                                      (a machine with a GPU)
TORCH ?= torch==2.13.0
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# Lint and format check first (ruff, configured in pyproject.toml; `ruff format` fixes the format), then the tests.
test: setup
	$(PY) -m ruff check
	$(PY) -m ruff format --check
	$(PY) -m pytest -q

# The whole pipeline offline on the built-in mock provider (no API key, no cost, no download):
# stages 1-3, tagging, the analysis, the export (config/demo_training_config.json: the demo's
# version label and target model), a short LoRA training run of a tiny random-weight model built
# here, its evaluation and the evaluation report. Rerunning resumes: every step skips what it has
# already done. Outputs go to $(DEMO_DIR)/ (`make demo DEMO_DIR=...` moves them; it becomes
# SPT_DATA_DIR, so a `data/...` path below means $(DEMO_DIR)/...).
demo: setup
	@export SPT_DATA_DIR=$(DEMO_DIR); set -e; \
	$(PY) scripts/dataset_generation_stage_1.py --names sycophancy jailbreak_attempts \
	    --target_items 8 --num_items_per_batch 4 --provider mock --model mock-generator; \
	$(PY) scripts/dataset_generation_stage_2.py --names all --inference mock --model demo/target-model; \
	$(PY) scripts/dataset_generation_stage_3.py --names all --provider mock --model mock-generator \
	    --intervention_modification demo_v1; \
	$(PY) scripts/tag_stage_3_data.py; \
	$(PY) scripts/analyze_stage_3.py --config $(DEMO_CONFIG); \
	$(PY) scripts/export_training_data.py --config $(DEMO_CONFIG); \
	test -f $(DEMO_DIR)/tiny_model/config.json || $(PY) training/tiny_model.py --output_dir $(DEMO_DIR)/tiny_model; \
	if ls -d $(DEMO_CHECKPOINTS)/step_* >/dev/null 2>&1; then resume="--resume latest"; else resume=; fi; \
	$(PY) training/train_lora.py --config $(DEMO_CONFIG) --set base_model=$(DEMO_DIR)/tiny_model \
	    --set output_dir=$(DEMO_CHECKPOINTS) $$resume; \
	checkpoint=$$(ls -td $(DEMO_CHECKPOINTS)/step_* | head -n 1); \
	$(PY) training/evaluate.py --checkpoint $$checkpoint --validation --max_new_tokens 32 \
	    --output data/evaluation_results/quantitative/results_demo.json; \
	$(PY) scripts/analyze_evaluation_results.py > /dev/null; \
	echo; echo "Demo finished (mock data: the numbers mean nothing). Read, in this order:"; \
	echo "  1. the generated data (flags, tags, what the filters keep): $(DEMO_DIR)/stage_3_analysis/report.md"; \
	echo "  2. what went into the training files: $(DEMO_DIR)/training_export/export_report.md"; \
	echo "  3. the training run (losses, validation, config): $$checkpoint/training_state.json"; \
	echo "     its curves: $(DEMO_CHECKPOINTS)/curves.png (rows: metrics.jsonl), its card: $$checkpoint/adapter/README.md"; \
	echo "  4. the checkpoint's evaluation: $(DEMO_DIR)/evaluation_report.md"; \
	echo "Every stage's files: $(DEMO_DIR)/{stage_1,stage_2,stage_3,stage_3_tagged}/<topic>/*.json"
