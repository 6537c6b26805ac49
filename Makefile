# taylorlib: `make test` and `make book` bootstrap .venv from nothing (idempotent: a stamp keyed on
# pyproject.toml and constraints.txt skips the install on the second run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
CHAPTERS := $(sort $(wildcard book/[0-9]*.ipynb))
# pytest-xdist workers for unit, x64 and nbval (XLA compiles on one thread, so 2 workers use 2 cores).
JOBS ?= 2
export PYTHONHASHSEED := 0
export XLA_PYTHON_CLIENT_PREALLOCATE := false

.PHONY: all install test unit x64 nbval book notebooks data bench bench-quick lint format upgrade clean

all: test

$(STAMP): pyproject.toml constraints.txt
	@echo "== installing into $(VENV) (pinned by constraints.txt)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[book,test,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Exactness tests marked x64 run once, in the x64 pass, with float64 enabled globally.
unit: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) -m "not x64"

x64: $(STAMP)
	JAX_ENABLE_X64=1 $(PY) -m pytest -q -n $(JOBS) -m x64 tests

nbval: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile -o addopts="-p no:cacheprovider" --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg $(CHAPTERS)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "== book built: _build/html/index.html"

test: $(STAMP)
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) x64
	$(MAKE) nbval
	$(MAKE) bench-quick
	$(MAKE) book

notebooks: $(STAMP)
	for nb in $(CHAPTERS); do \
	  $(VENV)/bin/jupyter execute --inplace --timeout=600 $$nb || exit 1; \
	done

data: $(STAMP)
	for s in experiments/*.py; do echo "== $$s"; $(PY) $$s || exit 1; done

bench: $(STAMP)
	$(PY) -m benchmarks

bench-quick: $(STAMP)
	@if [ -f benchmarks/__main__.py ]; then $(PY) -m benchmarks --quick; else echo "no benchmarks yet"; fi

upgrade:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --upgrade -e ".[book,test,dev]"
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -f $(VENV)/.installed-*; touch $(VENV)/.installed-$$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
	$(MAKE) notebooks

clean:
	rm -rf _build .pytest_cache
