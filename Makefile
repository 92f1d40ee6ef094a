# VisionLab: `make run` starts the whole stack, `make test` runs the whole suite.
# Both set everything up first on a fresh Debian/Ubuntu machine (root installs the Debian
# packages it needs; anyone else is told the one command to run).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Extras installed into the virtualenv: the CPU build of TensorFlow by default.
# A GPU worker host: make run EXTRAS=gpu,dev
EXTRAS ?= cpu,dev
# make test runs the suite in this many processes, each with its own Redis, worker and database;
# a test file stays in one process. Most tests wait on a worker, so two help even on two cores.
TEST_PROCESSES ?= 2
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

# Settings people keep in .env (see .env.example) apply to `make run` as well.
ifneq (,$(wildcard .env))
include .env
export $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' .env)
endif

.PHONY: run test install python-deps system-deps browser-deps lint bench clean

run: install system-deps
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0
	@$(PY) manage.py bootstrap
	@$(PY) manage.py runstack

test: install system-deps browser-deps
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory python-deps
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "VisionLab needs Python 3.11 or newer; this is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Debian packages: a tool is installed only when missing, and only root installs.
define need_deb
	@if ! $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing $(2) from Debian packages..."; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	  else \
	    echo "VisionLab needs $(2). Install it with: sudo apt-get install $(2)"; exit 1; \
	  fi; \
	fi
endef

python-deps:
	$(call need_deb,$(PYTHON) -c 'import ensurepip; import venv',python3-venv)

system-deps:
	$(call need_deb,command -v redis-server,redis-server)

browser-deps:
	$(call need_deb,command -v chromium,chromium)

lint: install
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports

bench: install system-deps
	$(PY) bench/job_roundtrip.py
	$(PY) bench/ingest.py
	$(PY) bench/overhead.py
	$(PY) bench/features.py
	$(PY) bench/load.py
	$(PY) bench/captioning.py
	$(PY) bench/experiments.py
	$(PY) bench/sweeps.py
	$(PY) bench/export.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
