# The two commands of the README, plus the benchmarks. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
DATA ?= hokusai-data
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2

# SKIP_INSTALL=1 serves from $(VENV) as it is (an environment made by other means).
SKIP_INSTALL ?=

.PHONY: serve test suite lint bench compat-env test-compat test-installed

$(VENV)/bin/python:
	@echo "==> Creating a virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)

# Environments are filled by uv, which took 20 s where pip took 2 min for the
# first `make test` install on the CI machine kind, and resolved the same
# versions. It comes from PyPI into $(VENV) itself: nothing is needed beforehand.
$(VENV)/bin/uv: | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet uv

# --compile-bytecode, as pip does: with PYTHONDONTWRITEBYTECODE set (as on the CI
# machine kind) every process would otherwise compile MLflow's sources again.
UV_INSTALL = $(VENV)/bin/uv pip install --compile-bytecode --python

# Serving needs the package and its install_requires only; tests and benchmarks
# add their extras (a superset, so installing them marks serving installed too).
# uv's lines are the progress.
$(VENV)/.installed-serve: setup.cfg pyproject.toml entry_points.txt | $(VENV)/bin/uv
	@echo "==> Installing mlflow-hokusai and what serving needs into $(VENV)"
	$(UV_INSTALL) $(VENV)/bin/python -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml entry_points.txt | $(VENV)/bin/uv
	@echo "==> Installing mlflow-hokusai with its test and benchmark extras into $(VENV)"
	$(UV_INSTALL) $(VENV)/bin/python -e ".[test,bench]"
	touch $@ $(VENV)/.installed-serve

# Embedded defaults: SQLite and content-addressed local artifacts (hokusai+file)
# under ./$(DATA), the session secret and the audit spool with them. A busy
# PORT fails at once; the server's log goes to $(DATA)/server.log and the
# terminal shows the URL and, the first time, an admin key once the server
# answers (mlflow_hokusai/serve.py). Ctrl+C stops it within seconds.
serve: $(if $(SKIP_INSTALL),,$(VENV)/.installed-serve)
	$(VENV)/bin/hokusai serve --data $(DATA) --host $(HOST) --port $(PORT) --workers $(WORKERS)

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
CHROMIUM ?= /usr/bin/chromium

# Model evaluation runs in bubblewrap's sandbox (README: Sandbox).
BWRAP ?= /usr/bin/bwrap

# The whole suite on .venv's MLflow, then MLflow's contract and the smoke tests on
# the other supported minor release (README: MLflow compatibility).
PREVIOUS_MLFLOW ?= 3.16.1

# Test files run in TEST_PROCESSES pytest-xdist processes, each file whole in one
# (its module-scoped servers and its order kept). Two, for the 2-core CI machine:
# the suite is bound by CPU, and the shared PostgreSQL allows 100 connections.
TEST_PROCESSES ?= 2

# Lint and the compat run go beside the suite (lint is mypy on one core for
# about a minute, the compat run mostly waits on its install and its servers,
# while the suite leaves about a tenth of the CPU idle), each printing its
# output whole when done; the suite prints as it goes. Either failing fails.
test: $(CHROMIUM) $(BWRAP) $(VENV)/.installed-test
	$(MAKE) --no-print-directory -j2 --output-sync=target lint test-compat \
		MLFLOW_VERSION=$(PREVIOUS_MLFLOW) & \
	beside=$$!; $(MAKE) --no-print-directory suite; suite=$$?; wait $$beside && exit $$suite

suite: $(VENV)/.installed-test
	$(VENV)/bin/pytest -n $(TEST_PROCESSES) --dist loadfile

# ruff on the whole tree, then mypy on the package (settings in pyproject.toml).
# mypy knows nothing of setup.cfg's package_dir (plugins/ is installed as
# mlflow_hokusai.plugins) nor of the editable install's import hook, so it checks
# a tree of links laid out as installed; its messages name files by that layout.
TYPECHECK_TREE ?= build/typecheck

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	rm -rf $(TYPECHECK_TREE)/mlflow_hokusai && mkdir -p $(TYPECHECK_TREE)/mlflow_hokusai
	ln -s $(CURDIR)/mlflow_hokusai/* $(TYPECHECK_TREE)/mlflow_hokusai/
	ln -s $(CURDIR)/plugins $(TYPECHECK_TREE)/mlflow_hokusai/plugins
	cd $(TYPECHECK_TREE) && $(abspath $(VENV))/bin/mypy --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.mypy_cache

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

$(BWRAP):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap

bench: $(VENV)/.installed-test
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python -m benchmarks.$$(basename $$b .py) || exit 1; done

# The contract with MLflow's internals (mlflow_hokusai/mlflow_compat.py) and a few
# end-to-end smoke tests, against one MLflow release in a virtual environment of
# its own: `make test-compat MLFLOW_VERSION=3.16.1`. Run it for each minor release
# setup.cfg declares (README: MLflow compatibility).
MLFLOW_VERSION ?= 3.17.2
COMPAT_VENV ?= .venv-mlflow-$(MLFLOW_VERSION)
COMPAT_SMOKE ?= tests/plugins/store/test_version_owners.py \
	"tests/plugins/store/test_registry_index.py::test_owners_are_recorded_and_readable" \
	tests/plugins/store/test_run_principal.py

compat-env: $(COMPAT_VENV)/.installed

$(COMPAT_VENV)/.installed: setup.cfg pyproject.toml entry_points.txt | $(VENV)/bin/uv
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(UV_INSTALL) $(COMPAT_VENV)/bin/python --quiet -e ".[test]" "mlflow==$(MLFLOW_VERSION)"
	touch $@

test-compat: compat-env
	$(COMPAT_VENV)/bin/pytest -q tests/core/test_mlflow_compat.py $(COMPAT_SMOKE)

# The suite from a plain (non-editable) install of this checkout, in a virtual
# environment of its own, as a packager would run it: the tests come from the
# checkout, the package from site-packages (setup.cfg's --import-mode=append).
# `make test-installed INSTALLED_TESTS=tests/plugins/auth/test_units.py` runs a part of it.
INSTALLED_VENV ?= .venv-installed
INSTALLED_TESTS ?=

test-installed: $(CHROMIUM) $(BWRAP) | $(VENV)/bin/uv
	test -x $(INSTALLED_VENV)/bin/python || $(PYTHON) -m venv $(INSTALLED_VENV)
	$(UV_INSTALL) $(INSTALLED_VENV)/bin/python --quiet ".[test]"
	$(INSTALLED_VENV)/bin/pytest $(INSTALLED_TESTS)
