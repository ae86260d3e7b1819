# The README's two set-up commands are `make run` and `make test`; both work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DRAW2DIGIT_DATA_DIR ?= $(abspath ../shared/data/mnist)
export DRAW2DIGIT_PENDIGITS_DIR ?= $(abspath ../shared/data/pendigits)
.PHONY: run test test-fast figures screenshots chromium postgresql container-tools lint format bench bench-api bench-page bench-scale bench-why benchmarks bench-voila evaluate train train-twin voila lab notebooks clean

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

test: $(VENV)/.installed-test chromium postgresql container-tools  ## install what the tests need, lint, run the whole suite and the lessons
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	$(BIN)/pytest -m notebook --nbval --nbval-sanitize-with=notebooks/sanitize.cfg --nbval-current-env notebooks

# The loop to run while working: unit, API and store tests on SQLite; no browser, container, notebook or training.
test-fast: $(VENV)/.installed-test  ## lint, then the fast part of the suite (a few minutes on 2 cores)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -m "not slow and not training and not browser and not container and not postgres" -q

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
	$(BIN)/python -m benchmarks.bench_api

bench-page: $(VENV)/.installed-test chromium  ## what a person waits for on the page: answer after the pen lifts, first "Show why"
	$(BIN)/python -m benchmarks.page_timings

benchmarks: $(VENV)/.installed-test  ## run the benchmarks and keep what they print in docs/benchmarks/
	mkdir -p docs/benchmarks
	$(BIN)/draw2digit bench --compare-keras | tee docs/benchmarks/bench.txt
	$(BIN)/python -m benchmarks.bench_api | tee docs/benchmarks/bench-api.txt
	$(BIN)/python -m benchmarks.bench_scale | tee docs/benchmarks/bench-scale.txt
	$(BIN)/python -m benchmarks.saliency_agreement | tee docs/benchmarks/bench-why.txt

bench-why: $(VENV)/.installed-train  ## "Show why" (occlusion, served) against integrated gradients (TensorFlow)
	$(BIN)/python -m benchmarks.saliency_agreement

bench-scale: $(VENV)/.installed-test  ## locust on loopback: one process against --workers processes
	$(BIN)/python -m benchmarks.bench_scale

bench-voila: $(VENV)/.installed-test chromium  ## Voila: memory per visitor, time to the first prediction, preheated kernels
	$(BIN)/python -m benchmarks.voila_users

evaluate: $(VENV)/.installed-train  ## held-out writers' pen digits, numbers and learning online (twin), then the shipped model: MNIST, figures
	$(BIN)/draw2digit evaluate --model models/heldout-twin --pen --numbers 300 --personal --save models/heldout-twin/evaluation.json
	$(BIN)/draw2digit evaluate --figures models/figures --redrawn 3000 --ablation

# A stopped run resumes from its last finished epoch; a finished stage is skipped.
train: $(VENV)/.installed-train  ## the shipped model from recipes/shipped.toml (both stages), then its calibration
	$(BIN)/draw2digit train --recipe recipes/shipped.toml --quiet
	$(BIN)/draw2digit calibrate --model runs/full

train-twin: $(VENV)/.installed-train  ## its twin without the held-out and tuning writers, from recipes/twin.toml
	$(BIN)/draw2digit train --recipe recipes/twin.toml --quiet
	$(BIN)/draw2digit calibrate --model runs/twin

figures: $(VENV)/.installed-test  ## the README's figures table, from the model cards and saved evaluations
	$(BIN)/draw2digit report

screenshots: $(VENV)/.installed-test chromium  ## remake the README's screenshots (the browser tests take them)
	$(BIN)/pytest -q tests/test_browser.py tests/test_voila.py
	cp test-artifacts/*.png docs/

voila: $(VENV)/.installed-notebooks  ## the drawing notebook as a standalone app on 127.0.0.1:8866
	$(BIN)/draw2digit voila

lab: $(VENV)/.installed-notebooks  ## JupyterLab on the lesson notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 --allow-root

notebooks: $(VENV)/.installed-test  ## rebuild the notebooks from notebooks/build.py and run them (outputs committed)
	$(BIN)/python notebooks/build.py
	cd notebooks && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace 01_train.ipynb 02_evaluate.ipynb 03_real_drawings.ipynb 04_draw.ipynb

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
