# Two commands do everything on a fresh machine:
#   make up     creates .venv and runs the product (embedded NATS, SQLite, all services)
#   make test   creates .venv and runs the default test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test test-slow schemas clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/ringlog up $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

schemas: $(STAMP)
	$(PY) -m schemas.generate
	$(PY) -m schemas.asyncapi

clean:
	rm -rf $(VENV)
