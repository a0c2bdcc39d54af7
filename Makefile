# The two commands of the README: `make run` and `make test`. Only Python 3.11+ is needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WHEELHOUSE := build/wheelhouse
SOURCES := pyproject.toml clients/python/pyproject.toml $(shell find core providers plugins -name '*.py' -o -name '*.json' 2>/dev/null)

.PHONY: run test install wheelhouse format lint

run: $(VENV)/.installed
	$(BIN)/flashfusion --config flashfusion.toml serve

# The Jenkins provider is a separate package (plugins/jenkins): installed from its folder as
# a third party's would be, and tested as its own package after the main suite.
test: $(VENV)/.installed-test
	$(BIN)/pip install -q ./plugins/jenkins
	$(BIN)/pytest
	$(BIN)/pytest plugins/jenkins/tests

install: $(VENV)/.installed

# The checks .ci/run makes before the tests; `make format` lays the tree out as they expect.
lint: $(VENV)/.installed-test
	BIN=$(BIN) .ci/lint

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(VENV)/bin/pip:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# editable_mode=strict installs exactly what a wheel would, so a package missing from
# pyproject.toml fails here rather than in production.
$(VENV)/.installed: $(VENV)/bin/pip $(SOURCES)
	$(BIN)/pip install -q -e . --config-settings editable_mode=strict
	touch $@

# The light client (clients/python) is installed beside the server, editable as well.
$(VENV)/.installed-test: $(VENV)/bin/pip $(SOURCES) $(WHEELHOUSE)/.ready
	$(BIN)/pip install -q -e ".[test]" --config-settings editable_mode=strict
	$(BIN)/pip install -q -e ./clients/python --config-settings editable_mode=strict
	touch $@ $(VENV)/.installed

# What tests/test_client_package.py installs offline into a fresh venv: the light client's
# dependencies (httpx and its own) and the build backend its wheel is built with.
wheelhouse: $(WHEELHOUSE)/.ready

$(WHEELHOUSE)/.ready: $(VENV)/bin/pip clients/python/pyproject.toml
	$(BIN)/pip wheel -q -w $(WHEELHOUSE) ./clients/python "setuptools>=69" wheel
	touch $@
