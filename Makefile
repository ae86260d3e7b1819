# The README's two set-up commands are `make run` and `make test`; both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DRAW2DIGIT_DATA_DIR ?= $(abspath ../shared/data/mnist)
export DRAW2DIGIT_PENDIGITS_DIR ?= $(abspath ../shared/data/pendigits)
# The shipped model: the MNIST-only model, fine-tuned on MNIST + real pen digits + "not a digit", taught by itself,
# served with int8 weights. The pen digits' strokes are bent twice as far as by default, every MNIST digit counts
# twice in the loss, and the non-digits include the extra fit-family shapes. It trains on all 30 writers with 5
# copies of each pen digit (about the twin's number of pen drawings); its twin (the same recipe without the
# held-out and tuning writers, 10 copies) is what every real-drawing figure is measured with.
# Each is trained in two runs: the recipe, then one more epoch at a fifth of its learning rate that adds digits
# as the number reader cuts them out of touching pairs (PIECES; docs/real-drawings.md).
RECIPE = --epochs 10 --learning-rate 1e-3 --warmup-epochs 0.5 --pen-copies 10 --non-digits 16000 \
         --init-from models/mnist-only --distill-from models/mnist-only --quantize \
         --pen-perturb 2 --mnist-class-weights 0:2,1:2,2:2,3:2,4:2,5:2,6:2,7:2,8:2,9:2 --extra-shapes
PIECES = --epochs 1 --learning-rate 2e-4 --warmup-epochs 0 --cut-pieces 10000

.PHONY: run test chromium postgresql container-tools lint format bench bench-api bench-page bench-scale bench-voila evaluate train train-twin voila lab notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs are stamped so that repeated runs cost nothing until pyproject.toml changes.
$(VENV)/.installed-app: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-train: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[train]"
	touch $@ $(VENV)/.installed-app

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[train,notebooks,postgres,test]"
	touch $@ $(VENV)/.installed-app $(VENV)/.installed-train $(VENV)/.installed-notebooks

$(VENV)/.installed-notebooks: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[train,notebooks]"
	touch $@ $(VENV)/.installed-app $(VENV)/.installed-train

run: $(VENV)/.installed-app  ## install the serving set (no TensorFlow), then serve the page and API with the shipped model on 127.0.0.1:5000
	$(BIN)/draw2digit serve

test: $(VENV)/.installed-test chromium postgresql container-tools  ## install what the tests need, lint, run the whole suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

# The browser tests drive Debian's chromium (Playwright's own browser download is not used).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: /usr/bin/chromium is missing (sudo apt-get install chromium); browser tests will skip (CI fails)"; \
	  fi; \
	fi

# The store's tests start their own throwaway PostgreSQL server from Debian's packages.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "note: PostgreSQL is missing (sudo apt-get install postgresql); its tests will skip (CI fails)"; \
	  fi; \
	fi

# The image test builds and runs the Containerfile with podman on a Debian-made base image.
container-tools:
	@if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null && ! [ -x /usr/sbin/debootstrap ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      podman runc catatonit debootstrap >/dev/null; \
	  else \
	    echo "note: podman/debootstrap are missing; the image test will skip (CI fails)"; \
	  fi; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: $(VENV)/.installed-train  ## latency/throughput of preprocessing + inference
	$(BIN)/draw2digit bench --compare-keras

bench-api: $(VENV)/.installed-test  ## /predict on loopback against a tutorial-style server
	$(BIN)/python benchmarks/bench_api.py

bench-page: $(VENV)/.installed-test chromium  ## what a person waits for on the page: answer after the pen lifts, first "Show why"
	$(BIN)/python benchmarks/page_timings.py

bench-scale: $(VENV)/.installed-test  ## locust on loopback: one process against --workers processes
	$(BIN)/python benchmarks/bench_scale.py

bench-voila: $(VENV)/.installed-test chromium  ## Voila: memory per visitor, time to the first prediction, preheated kernels
	$(BIN)/python benchmarks/voila_users.py

evaluate: $(VENV)/.installed-train  ## held-out writers' pen digits and numbers (twin), then the shipped model: MNIST, figures
	$(BIN)/draw2digit evaluate --model models/heldout-twin --pen --numbers 300
	$(BIN)/draw2digit evaluate --figures models/figures --redrawn 3000 --ablation

train: $(VENV)/.installed-train  ## the shipped model's training run, all 30 writers (see the README for its time on 2 CPU cores)
	$(BIN)/draw2digit train --out runs/full-base --quiet $(RECIPE) --pen-writers all --pen-copies 5
	$(BIN)/draw2digit train --out runs/full --quiet $(RECIPE) --pen-writers all --pen-copies 5 $(PIECES) --init-from runs/full-base
	$(BIN)/draw2digit calibrate --model runs/full

train-twin: $(VENV)/.installed-train  ## the same recipe without the held-out and tuning writers: models/heldout-twin
	$(BIN)/draw2digit train --out runs/twin-base --quiet $(RECIPE) --pen-writers fit
	$(BIN)/draw2digit train --out runs/twin --quiet $(RECIPE) --pen-writers fit $(PIECES) --init-from runs/twin-base
	$(BIN)/draw2digit calibrate --model runs/twin

voila: $(VENV)/.installed-notebooks  ## the drawing notebook as a standalone app on 127.0.0.1:8866
	$(BIN)/draw2digit voila

lab: $(VENV)/.installed-notebooks  ## JupyterLab on the lesson notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --allow-root

notebooks: $(VENV)/.installed-test  ## rebuild the notebooks from notebooks/build.py and run them (outputs committed)
	$(BIN)/python notebooks/build.py
	cd notebooks && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace 01_train.ipynb 02_evaluate.ipynb 03_draw.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
