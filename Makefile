# Two commands on a fresh machine: `make demo` (the example DAG end to end against the
# local sandbox) and `make test` (the whole suite). Both set up .venv first.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: install demo test lint bench dist clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,dev]"
	touch $(STAMP)

demo: install
	$(PY) scripts/demo.py

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check airflow_provider_pixverse tests example_dags scripts
	$(VENV)/bin/ruff format --check airflow_provider_pixverse tests example_dags scripts
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/parse.py --json bench/results-parse.json
	$(PY) bench/download.py --json bench/results-download.json
	$(PY) bench/triggers.py --json bench/results-triggers.json

dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
