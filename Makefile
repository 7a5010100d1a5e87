# Development tasks.  `make run` and `make test` work on a fresh clone: they
# create .venv, install the project and what the tests need, then act.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
CONFIG ?= etc/mrs.ini
TRIAL_JOBS ?= 2

.PHONY: run test lint typecheck unit install install-test system-deps sslyze demo bench bench-quick clean plugin-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

# Editable install in "compat" mode puts the source tree on sys.path through
# a .pth file, so Twisted's plugin scan finds twisted/plugins/mrs_plugin.py.
# The default editable mode hides that folder from the scan.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e . --config-settings editable_mode=compat
	$(MAKE) --no-print-directory plugin-cache
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test system-deps sslyze

# Rebuild Twisted's plugin cache; pip does not, and a stale dropin.cache is
# only a slower start, never a missing plugin.
plugin-cache:
	$(BIN)/python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"

system-deps:
	sh scripts/install-system-deps

# sslyze pins versions of cryptography that conflict with ours, so it
# lives in its own environment and the tests run it as a subprocess.
sslyze: .venv-sslyze/.installed

.venv-sslyze/.installed:
	$(PYTHON) -m venv .venv-sslyze
	.venv-sslyze/bin/python -m pip install --quiet --upgrade pip
	.venv-sslyze/bin/python -m pip install --quiet 'sslyze>=6'
	touch $@

run: install
	$(BIN)/twistd --nodaemon --pidfile= mrs --config $(CONFIG)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check mrs twisted tests bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy mrs

unit: install-test
	$(BIN)/trial -j$(TRIAL_JOBS) tests

test: install-test lint typecheck unit

demo: install
	$(BIN)/python -m mrs.demo

bench: install-test
	$(BIN)/python -m bench

bench-quick: install-test
	$(BIN)/python -m bench --quick

clean:
	rm -rf build dist *.egg-info _trial_temp* .mypy_cache .ruff_cache
