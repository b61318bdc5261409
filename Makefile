# qwenaudio-train: `make demo` (everything, from a fresh clone) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= artifacts/synthetic
RUN    ?= runs/demo
NPROC  ?= 2
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# DeepSpeed compiles a small comm op on first use: keep it with this environment (built once, ~40 s).
export TORCH_EXTENSIONS_DIR ?= $(abspath $(VENV))/torch_extensions

.PHONY: setup data data-full sft-data demo train eval test test-unit test-all test-gpu lint bench bench-gpu config-docs clean-demo help

help:
	@echo "make demo      set up, build the offline corpus, train the tiny model on $(NPROC) ranks, evaluate, report"
	@echo "make test      set up; lint (ruff), types (mypy), the fast test suite incl. the wheel install (what CI runs)"
	@echo "make test-unit the unit tests only (the inner loop, ~2 min)"
	@echo "make test-all  the fast suite plus slow end-to-end tests"
	@echo "make test-gpu  the tests that need a CUDA device"
	@echo "make lint      ruff (lint + format check) and mypy"
	@echo "make bench     benchmarks; results in bench_results/"
	@echo "make setup     the environment only ($(VENV))"

# The environment: torch is pinned in the same pip command as everything else so that it resolves to the
# CPU wheel here; GPU users install their CUDA torch first, then `pip install -e .[dev]` (README, "Install").
setup: $(STAMP)
$(STAMP): pyproject.toml requirements-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-cpu.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# The offline multi-task corpus (synthetic speech, sounds and notes) and its BPE tokenizer.
data: $(DATA)/.done
$(DATA)/.done: $(STAMP) $(wildcard data_recipes/synthetic/*.py) data_recipes/tts.py
	$(BIN)/python -m data_recipes.synthetic --out $(DATA) --preset demo
	$(BIN)/qwenaudio-data tokenizer --text $(DATA)/text.txt --out $(DATA)/tokenizer
	touch $@

# The grown offline corpus: 26 tasks, all 8 languages (~20 h, ~1.3 GB; a few minutes on 2 cores).
data-full: $(STAMP)
	$(BIN)/python -m data_recipes.synthetic --out artifacts/synthetic_full --preset full
	$(BIN)/qwenaudio-data tokenizer --text artifacts/synthetic_full/text.txt --out artifacts/synthetic_full/tokenizer

# Chat conversations for stage 2 from the demo corpus's labels (data_recipes/sft_builder.py).
sft-data: data
	$(BIN)/python -m data_recipes.sft_builder --shards $(DATA)/train --out artifacts/sft/train.jsonl \
		--out-shards artifacts/sft/shards --seed 0

train: data
	NPROC=$(NPROC) launch/train.sh experiment=demo data.root=$(DATA) run_dir=$(RUN)

eval: $(STAMP)
	$(BIN)/qwenaudio-eval checkpoint=$(RUN) split=test

demo:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory train && $(MAKE) --no-print-directory eval && \
	echo "demo finished in $$(( $$(date +%s) - start )) s; run directory: $(RUN) (metrics.jsonl, checkpoints/, eval report)"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "unit and not slow and not bench and not gpu"

test-all: lint
	$(BIN)/python -m pytest -q -m "not bench and not gpu"

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

# docs/configs.md is generated from the config schemas (a test checks it is current).
config-docs: $(STAMP)
	$(BIN)/python -m qwenaudio_train.config_reference > docs/configs.md

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m bench tests/bench -s

# Stage-1 throughput at the real shapes on one CUDA device (random weights, under 8 minutes): three batchings of the
# same clips, MFU from qwenaudio_train/flops.py, peak memory, ZeRO-2/3 memory; bench_results/gpu.json and gpu.md.
# No setup step: a GPU machine brings its own CUDA torch (the environment's python if there is one, else $(PYTHON)).
bench-gpu:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) tests/bench/gpu_bench.py --out bench_results

clean-demo:
	rm -rf $(RUN)
