# The two set-up commands are `make lab` and `make test`; both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTEST_ARGS ?=

.PHONY: lab voila test unit notebooks e2e venv browser models bench lock clean

$(STAMP): pyproject.toml requirements-lock.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -c requirements-lock.txt -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

## Open the workbench: JupyterLab on notebooks/, offline, on the embedded defaults in data/.
lab: $(STAMP)
	@echo 'Running time at full settings on a quiet 2-core laptop (light mode: WB_FAST=1 make lab; notebooks/README.md):'
	@echo '  00 data+tokenizer 15 s | 01 train 2.6 min | 02 attention 17 s | 03 MoE routing 4.4 min'
	@echo '  04 scoring 3.2 min | 05 translation 2.1 min | 06 compression 3.8 min | 07 prompt styles 17 s'
	$(OFFLINE) $(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --ip=127.0.0.1 --no-browser $(ROOT_FLAG) \
		--LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate

## A notebook as a page under Voila (code hidden, widgets live), offline: make voila NB=notebooks/03_moe_routing.ipynb
## (NB=notebooks, the default, lists them all; WB_FAST=1 for light mode; VOILA_ARGS=--show_tracebacks=True shows a
## failing cell's traceback). Kernels of closed tabs are shut down after 10 idle minutes.
NB ?= notebooks
VOILA_PORT ?= 8866
VOILA_ARGS ?=
voila: $(STAMP)
	$(OFFLINE) $(VENV)/bin/voila $(NB) --no-browser --Voila.ip=127.0.0.1 --port=$(VOILA_PORT) \
		--MappingKernelManager.cull_idle_timeout=600 --MappingKernelManager.cull_interval=60 $(VOILA_ARGS)

## Run the whole test suite: the unit tests and every notebook under nbval (small sizes) on TEST_WORKERS processes
## (pytest-xdist; each test file and each notebook stays on one worker), then the real-browser tests one after
## another with the machine to themselves (each starts JupyterLab, a kernel and Chromium). Fails if either part fails.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	rc=0; \
	WB_FAST=1 $(OFFLINE) $(PY) -m pytest tests notebooks --ignore=tests/e2e --nbval-lax --nbval-cell-timeout=300 \
		--timeout=900 -q -rs -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) || rc=1; \
	WB_FAST=1 $(OFFLINE) $(PY) -m pytest tests/e2e --timeout=900 -q -rs $(PYTEST_ARGS) || rc=1; \
	exit $$rc

unit: $(STAMP)
	WB_FAST=1 $(OFFLINE) $(PY) -m pytest tests --ignore=tests/e2e -q $(PYTEST_ARGS)

notebooks: $(STAMP)
	WB_FAST=1 $(OFFLINE) $(PY) -m pytest notebooks --nbval-lax --nbval-cell-timeout=300 --timeout=900 -q

e2e: $(STAMP) browser
	WB_FAST=1 $(OFFLINE) $(PY) -m pytest tests/e2e -q -rs

## Debian's Chromium for the browser tests and static figure export (never a browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      chromium fonts-dejavu-core >/dev/null) || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "chromium is missing and cannot be installed here: browser tests will be skipped"; fi; }

## Train the model family into data/models and its scoring grid into data/grid (a GPU: about 20 minutes;
## see workbench/family/recipe.py).
models: $(STAMP)
	$(OFFLINE) $(PY) -m workbench.family --out data/models --grid data/grid

## Benchmarks (not tests): write bench/results/*.md and *.json.
bench: $(STAMP)
	$(OFFLINE) $(PY) bench/bench_train.py
	$(OFFLINE) $(PY) bench/bench_lr.py
	$(OFFLINE) $(PY) bench/bench_attention_widget.py
	$(OFFLINE) $(PY) bench/bench_routing.py
	$(OFFLINE) $(PY) bench/bench_scoring.py
	$(OFFLINE) $(PY) bench/bench_grid.py

## Refresh the pinned constraints from the current environment.
## The gpu extra (pip install -e '.[gpu]' on a CUDA machine) is pinned too, though a CPU environment lacks it.
GPU_PINS := liger-kernel==0.8.5
lock:
	$(PY) -m pip freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+.*/torch==\1/' > requirements-lock.txt
	for p in $(GPU_PINS); do grep -qi "^$${p%%==*}==" requirements-lock.txt || echo "$$p" >> requirements-lock.txt; done

clean:
	rm -rf $(VENV) artifacts .pytest_cache
