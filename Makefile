# Two commands on a fresh machine: `make demo` (the example DAG end to end against the
# local sandbox) and `make test` (the whole suite). Both set up .venv first.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: install demo test test-matrix test-airflow-2.11 test-airflow-3.0 lint docs bench dist clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) "apache-airflow==$(AIRFLOW_VERSION)" -e . \
		--group test --group dev --group docs
	touch $(STAMP)

# `make demo` needs the runtime only: Airflow, this package (the sandbox ships in it) and mutagen, with
# which the demo describes the MP3. Its own stamp: it skips the test stack that `make install` adds.
DEMO_STAMP := $(VENV)/.installed-demo-$(AIRFLOW_VERSION)

$(DEMO_STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) "apache-airflow==$(AIRFLOW_VERSION)" -e . mutagen
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) scripts/demo.py

test: install
	$(PY) -m pytest tests $(PYTEST_ARGS)

# Version matrix. `make test` runs the newest Airflow (AIRFLOW_VERSION, in .venv); `make test-matrix`
# runs the oldest supported (2.11) and the first 3.x (3.0), each in its own .venv-airflow-<version>.
#   2.11: the whole suite with `-m "not e2e"` -- the e2e tests start `airflow api-server`, the 3.x
#         triggerer/dag-processor set-up and a wheel install, none of which 2.11 has -- and without
#         tests/packaging: twine>=7 (Metadata 2.5) needs rich>=14, which 2.11's FAB provider rules
#         out; the distribution does not depend on the Airflow version and `make test` checks it.
#   3.0:  a smoke run, SMOKE_TESTS: the provider loads through ProvidersManager, the example DAGs
#         parse, and one dag.test() runs create -> wait -> download end to end against the sandbox.
# No constraints files: the pins are versions that resolve and work with that Airflow (the providers
# at their current releases; 3.0's execution API and ObjectStoragePath need the fastapi/cadwyn and
# universal-pathlib of its day).
AIRFLOW_2_11 ?= 2.11.2
AIRFLOW_3_0 ?= 3.0.6
PROVIDER_PINS := "apache-airflow-providers-common-compat==1.23.0" "apache-airflow-providers-http==6.3.0" \
	"apache-airflow-providers-amazon==9.39.0"
MATRIX_PINS_$(AIRFLOW_2_11) := $(PROVIDER_PINS)
MATRIX_PINS_$(AIRFLOW_3_0) := $(PROVIDER_PINS) "fastapi>=0.116,<0.117" "cadwyn>=5.4,<5.5" \
	"universal-pathlib>=0.2.6,<0.3"
SMOKE_TESTS := tests/integration/test_provider_loads.py \
	tests/integration/test_example_dags.py::test_examples_parse_without_errors \
	tests/integration/test_example_dags.py::test_create_wait_download_to_local_storage

# One virtual environment per Airflow version; the stamp makes re-runs skip the install.
.venv-airflow-%/.installed: pyproject.toml Makefile
	test -x $(@D)/bin/python || $(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(@D)/bin/uv pip install --quiet --python $(@D)/bin/python "apache-airflow==$*" $(MATRIX_PINS_$*) -e . --group test
	touch $@

test-matrix: test-airflow-2.11 test-airflow-3.0

# 2.11 also runs tests/legacy_ui (marker legacy_ui): its FAB webserver's connection form in headless Chromium
# (Debian's /usr/bin/chromium; the test fails without it). Airflow 3 does not collect that folder.
test-airflow-2.11: .venv-airflow-$(AIRFLOW_2_11)/.installed
	.venv-airflow-$(AIRFLOW_2_11)/bin/python -m pytest tests -m "not e2e or legacy_ui" --ignore=tests/packaging \
		$(PYTEST_ARGS)

test-airflow-3.0: .venv-airflow-$(AIRFLOW_3_0)/.installed
	.venv-airflow-$(AIRFLOW_3_0)/bin/python -m pytest $(SMOKE_TESTS) $(PYTEST_ARGS)

# A distributed Airflow on this machine (tests/distributed, never part of `make test`): PostgreSQL, Redis,
# CeleryExecutor with two workers, two triggerers, the sandbox and moto, with faults injected mid-run. Two runs:
# test_distributed_run.py (100 clips, mapped create and download tasks; workers and a triggerer killed) and
# test_distributed_corpus.py (300 texts in one PixVerseBatchTextToSpeechOperator task over two accounts; a worker,
# a triggerer and the scheduler killed, PostgreSQL restarted), about 6 and 7 minutes on a 2-core machine
# (13 minutes for both, measured).
# Debian's postgresql and redis-server are installed when missing; Airflow's celery and postgres extras
# go into .venv (the `distributed` dependency group pins celery<5.7).
.PHONY: test-distributed
test-distributed: install
	{ command -v redis-server && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql redis-server; }
	$(UV) pip install --quiet --python $(PY) "apache-airflow[celery,postgres]==$(AIRFLOW_VERSION)" -e . \
		--group test --group dev --group distributed
	PIXVERSE_DISTRIBUTED=1 $(PY) -m pytest tests/distributed -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check airflow_provider_pixverse tests example_dags scripts bench docs/conf.py
	$(VENV)/bin/ruff format --check airflow_provider_pixverse tests example_dags scripts bench docs/conf.py
	$(VENV)/bin/mypy

# The documentation site (docs/, Sphinx with MyST), warnings as errors: a broken cross-reference, a
# missing page or an example-DAG marker that is gone fails the build. No network (no intersphinx).
docs: install
	rm -rf docs/_build
	$(VENV)/bin/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html

# Benchmarks: never part of `make test` (smoke runs are); writes BENCHMARKS.md. The corpus benchmark
# (bench/corpus.py) runs an Airflow on PostgreSQL: Debian's postgresql is installed when missing, and
# Airflow's postgres extra into .venv. At the full sizes it takes hours on 2 cores (most of it the 1,000
# mapped tasks): `python bench/report.py --only corpus` runs it again alone, `bench/corpus.py --help` its sizes.
bench: install
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; }
	$(UV) pip install --quiet --python $(PY) "apache-airflow[postgres]==$(AIRFLOW_VERSION)" -e . \
		--group test --group dev --group docs
	$(PY) bench/report.py

dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*
	$(VENV)/bin/pyroma --min 10 dist/*.tar.gz

clean:
	rm -rf $(VENV) .venv-airflow-* .demo .pytest_cache .mypy_cache .ruff_cache docs/_build
