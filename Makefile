# The two commands of the README, plus the benchmarks. Each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
DATA ?= hokusai-data
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2

.PHONY: serve test bench

$(VENV)/.installed: setup.cfg pyproject.toml entry_points.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test,bench]"
	touch $@

# Embedded defaults: SQLite and content-addressed local artifacts (hokusai+file)
# under ./$(DATA); a first admin
# key is created and printed once if no key exists yet; open the URL and log in with it.
# The browser session secret is made once, kept with the data, readable by you only;
# the audit spool lives with the data too (not in a temp dir a reboot may empty).
serve: $(VENV)/.installed
	mkdir -p $(DATA)
	$(VENV)/bin/hokusai keys bootstrap --database-uri sqlite:///$(abspath $(DATA))/mlflow.db
	test -s $(DATA)/session-secret || (umask 077 && $(PYTHON) -c \
	  "import secrets; print(secrets.token_urlsafe(32))" > $(DATA)/session-secret)
	HOKUSAI_SESSION_SECRET=$$(cat $(DATA)/session-secret) \
	HOKUSAI_AUDIT_SPOOL_DIR=$(abspath $(DATA))/audit-spool \
	$(VENV)/bin/mlflow server --app-name hokusai --host $(HOST) --port $(PORT) \
	  --workers $(WORKERS) --backend-store-uri sqlite:///$(abspath $(DATA))/mlflow.db \
	  --artifacts-destination hokusai+file://$(abspath $(DATA))/artifacts

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
CHROMIUM ?= /usr/bin/chromium

test: $(VENV)/.installed $(CHROMIUM)
	$(VENV)/bin/pytest

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python -m benchmarks.$$(basename $$b .py) || exit 1; done
