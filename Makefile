# make setup - .venv from requirements.lock (exact versions, hashes), the project editable, KenLM's tools
# make test  - set up, then ruff format --check, ruff check and the whole test suite
# make demo  - set up, then run the whole system on bundled data (writes out/demo/)
# make lock  - refresh requirements.lock from pyproject.toml (keeps pins; make lock UPGRADE=1 bumps them all)
# make lint  - ruff format --check and ruff check;   make bench - benchmarks/bench_phrases.py
# make clean - delete out/ (the demo's outputs too) and caches
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock
STAMP  := $(VENV)/.installed
DEMO_OUT ?= out/demo
# pip notes about index folders of this machine's pip configuration that do not exist: not about this project
PIP_NOISE := grep -v "is ignored: it is neither a file nor a directory" || true
# the lock's pip entry (pip==VERSION and its hashes)
LOCKED_PIP := awk '/^pip==/ { keep = 1; print; next } keep && /^ / { print; next } { keep = 0 }' $(LOCK)

.PHONY: setup demo test lint lock bench clean

# pip's install and KenLM's build run side by side (-j2); the venv's pip is the lock's own (hash-checked), so the
# install never replaces the pip that build_kenlm.sh downloads the KenLM source with.
setup:
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(BIN)/lmplz

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found; install Python 3.11 (or run make PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r <($(LOCKED_PIP)) 2>&1 | { $(PIP_NOISE); }

# --no-compile: modules are byte-compiled when first imported (pip's compiling of every file took ~30 s)
$(STAMP): pyproject.toml $(LOCK) scripts/check_install.py | $(BIN)/python
	$(BIN)/python -m pip install -q --no-compile --require-hashes -r $(LOCK) 2>&1 | { $(PIP_NOISE); }
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | { $(PIP_NOISE); }
	$(BIN)/python scripts/check_install.py $(LOCK)
	@touch $(STAMP)

$(BIN)/lmplz: scripts/build_kenlm.sh | $(BIN)/python
	bash scripts/build_kenlm.sh $(VENV)

lock: $(BIN)/pip-compile
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) --output-file $(LOCK) pyproject.toml
	$(BIN)/python scripts/check_install.py --lock-only $(LOCK)

$(BIN)/pip-compile: | $(BIN)/python
	$(BIN)/python -m pip install -q pip-tools

demo: setup
	bash scripts/demo.sh $(DEMO_OUT)

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/bench_phrases.py

clean:
	rm -rf out .pytest_cache .ruff_cache .hypothesis
