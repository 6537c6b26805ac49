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

# A persistent XLA compilation cache for repeated local runs of unit, x64 and nbval: compiled programs
# are kept under the user's cache folder, one folder per pinned JAX version. `make bench` clears it so
# that benchmark compile times stay honest; `make test XLA_CACHE=` runs without it.
JAX_PIN := $(shell sed -n 's/^jax==//p' constraints.txt 2>/dev/null)
XLA_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/taylorlib/xla-jax$(JAX_PIN)
XLA_ENV = $(if $(XLA_CACHE),JAX_COMPILATION_CACHE_DIR=$(XLA_CACHE) JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0,)
# The unit and x64 tiers compile with XLA's CPU backend at optimization level 0. Compilation is 70-80% of their
# time (measured per test with jax.monitoring), and level 0 compiles 4-7x faster: the same HLO programs, with
# less LLVM optimization of the machine code, so values agree to round-off and the tests' tolerances (set in
# units of round-off) are unchanged. nbval, the chapters and the benchmarks keep the default level; TEST_XLA_FLAGS=
# runs the tests at the default level too.
TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0
TEST_ENV = $(XLA_ENV) XLA_FLAGS="$(strip $(XLA_FLAGS) $(TEST_XLA_FLAGS))"

BROWSER_STAMP := $(VENV)/.browser-$(HASH)
OLDEST_VENV := _build/oldest-venv

.PHONY: all install test test-slow unit x64 typecheck nbval book notebooks data bench bench-quick lint format upgrade clean \
	colab-cell colab-check browser-check oldest-check serve figures

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
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The unit tests and the library's doctests run with taylorlib's type annotations (jaxtyping shapes and dtypes,
# and every other hint) checked at call time by beartype (PEP 484 numeric tower: an int passes for a float),
# through jaxtyping's import hook. Test runs only: users never get the hook. Bad-input tests use
# helpers.raises, which under the hook also accepts the checker's TypeCheckError when it names the argument.
# `make unit TYPECHECK=` runs without the hook; `make typecheck` runs only the doctests under it.
TYPECHECKER := beartype.beartype(conf=beartype.BeartypeConf(is_pep484_tower=True))
TYPECHECK ?= --jaxtyping-packages=taylorlib,$(TYPECHECKER)
TYPECHECK_ARG = $(if $(TYPECHECK),"$(TYPECHECK)",)

# Exactness tests marked x64 run once, in the x64 pass, with float64 enabled globally. Tests marked browser
# drive chromium and run in `make browser-check`.
unit: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -n $(JOBS) --dist worksteal -m "not x64 and not browser and not slow" $(TYPECHECK_ARG) --durations=15

typecheck: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) -m "not x64" "--jaxtyping-packages=taylorlib,$(TYPECHECKER)" taylorlib

# The few inherently slow tests (marked slow: convex relaxations, float32 slope fits, chapter-3 mutation
# runs); CI runs them after make test.
test-slow: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -q -n $(JOBS) -m "slow and not x64 and not browser" --durations=15 tests

x64: $(STAMP)
	$(TEST_ENV) JAX_ENABLE_X64=1 $(PY) -m pytest -q -n $(JOBS) --dist worksteal -m x64 --durations=10 tests

nbval: $(STAMP)
	$(XLA_ENV) $(PY) -m pytest -q -n $(JOBS) --dist loadfile -o addopts="-p no:cacheprovider" --nbval \
	  --nbval-current-env \
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
	rm -rf $(XLA_CACHE)
	$(PY) -m benchmarks

bench-quick: $(STAMP)
	@if [ -f benchmarks/__main__.py ]; then $(PY) -m benchmarks --quick --strict; else echo "no benchmarks yet"; fi

upgrade:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --upgrade -e ".[book,test,dev,browser]"
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -f $(VENV)/.installed-*; touch $(VENV)/.installed-$$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
	$(MAKE) notebooks

# ---- the reader's book (issue 18) ------------------------------------------------------------------------
# Write tools/colab_cell.py into the first cell of every chapter (source only; outputs and counts stay).
colab-cell: $(STAMP)
	$(PY) tools/colab.py write

# Every chapter on an emulated fresh Colab runtime (tools/colab.py; ~1 min per chapter plus the stack).
colab-check: $(STAMP)
	$(PY) tools/colab.py check

# The unit tests against the oldest versions pyproject.toml allows (constraints-oldest.txt pins them).
oldest-check:
	rm -rf $(OLDEST_VENV)
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q -c constraints-oldest.txt -e ".[test,book]"
	$(OLDEST_VENV)/bin/python -m pip list 2>/dev/null | grep -E -i "^(jax|jaxlib|numpy|optax|jaxtyping|tqdm) "
	$(OLDEST_VENV)/bin/python -m pytest -q -n $(JOBS) -m "not x64 and not browser" tests
	JAX_ENABLE_X64=1 $(OLDEST_VENV)/bin/python -m pytest -q -n $(JOBS) -m x64 tests

$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e ".[browser]"
	rm -f $(VENV)/.browser-*
	touch $@

# Build the book, then open every page in headless chromium (tools/browser_check.py; BROWSER_FLAGS=--allow-scroll
# reports content that scrolls sideways inside its box without failing). Installs Debian's
# chromium and chromium-driver if missing (as root, e.g. in CI).
browser-check: $(BROWSER_STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "== installing chromium and chromium-driver (Debian)"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; }
	$(PY) -m pytest -q -p no:cacheprovider -m browser tests/test_browser_check.py
	$(MAKE) book
	$(PY) tools/browser_check.py $(BROWSER_FLAGS)

# Read the built book offline at http://127.0.0.1:8000 (opening _build/html/index.html directly works too).
serve:
	$(PYTHON) -m http.server --bind 127.0.0.1 --directory _build/html 8000

# The landing-page and performance-page figures (book/figures/*.png) from the library and the benchmarks.
figures: $(STAMP)
	$(PY) tools/figures.py

clean:
	rm -rf _build .pytest_cache
