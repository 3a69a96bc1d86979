# SupportLens: `make demo` and `make test` work on a fresh machine with only Python 3.11.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test test-fast lint bench clean local-up local-down

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

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest tests/unit

lint: install
	$(BIN)/cfn-lint template.yaml

local-up: install
	$(BIN)/supportlens local up

local-down: install
	$(BIN)/supportlens local down

clean:
	-$(BIN)/supportlens local down
	rm -rf $(VENV) .supportlens out .pytest_cache
