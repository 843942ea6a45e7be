# Two commands for a new user: `make run` and `make test` (see README.md).
# Everything installs into .venv from PyPI; nothing outside this repository is needed.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
# Extras installed into the virtualenv (comma-separated), e.g. EXTRAS=dev,face.
EXTRAS ?= dev
# The suite runs on every core (at most 4 processes: each has its own database, Redis prefix and sandbox
# servers, tests/conftest.py); PYTEST_ARGS= (empty) runs it in one process.
PYTEST_ARGS ?= -n auto --maxprocesses 4
# Where `make demo` finds the API that `make run` started.
DEMO_BASE_URL ?= http://127.0.0.1:$(PORT)
export FLASK_APP := wsgi

.PHONY: help install run demo test test-postgres migrate seed bench lint clean screenshots

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/\$$(PORT)/$(PORT)/g' \
	  | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Reinstall only when the declared dependencies change.
STAMP  := $(VENV)/.installed-$(EXTRAS)
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $@

install: $(STAMP)  ## create .venv and install the project

migrate: install  ## apply database migrations (DATABASE_URL, SQLite by default)
	$(BIN)/flask db upgrade

seed: migrate  ## seed the demo catalogue and sandbox accounts (idempotent)
	$(BIN)/flask seed

run: seed  ## start the development sandbox and the API on 127.0.0.1:$(PORT); Ctrl-C stops everything
	$(BIN)/flask dev --port $(PORT)

demo: install  ## run the whole citizen journey over HTTP against `make run` (start it in another terminal first)
	$(BIN)/python -m demo.journey --base-url $(DEMO_BASE_URL)

test: install  ## run the whole test suite (DATABASE_URL / REDIS_URL select PostgreSQL / Redis)
	@test -x /usr/bin/chromium || echo "note: /usr/bin/chromium is absent, so the console's browser tests are skipped;" \
		"install it with: sudo apt-get install -y chromium fonts-wqy-microhei"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

screenshots: install  ## rewrite docs/screenshots/console-*.png from the console's browser tests (needs Chromium)
	CONSOLE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/console -k browser

bench: install  ## run the benchmarks under bench/ and print their figures
	$(BIN)/python bench/catalogue.py

lint: install  ## static checks: ruff, and the import layers of setup.cfg (import-linter)
	$(BIN)/ruff check app shared_data identity httpkit wechatkit tlog tests bench demo migrations
	$(BIN)/lint-imports

clean:  ## remove the virtualenv, the embedded database and caches
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
