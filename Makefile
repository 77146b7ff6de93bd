# make demo  - set up .venv and run the whole system on bundled data
# make test  - set up .venv and run the whole test suite
# make setup - the set-up alone (idempotent; fast when already done)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: setup demo test lint bench clean

setup: $(STAMP) $(BIN)/lmplz

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found; install Python 3.11 (or run make PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
	@$(BIN)/python -c "import apache_beam, kenlm, tokenizers, jieba, webdataset, torch, typer" \
	  || { echo "setup: the Python install is incomplete (see pip output above)"; exit 1; }
	@touch $(STAMP)

$(BIN)/lmplz: scripts/build_kenlm.sh | $(STAMP)
	bash scripts/build_kenlm.sh $(VENV)

demo: setup
	bash scripts/demo.sh $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python benchmarks/bench_phrases.py

clean:
	rm -rf out .pytest_cache
