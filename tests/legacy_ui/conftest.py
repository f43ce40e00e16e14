"""Tests of what Airflow 2.x alone has: its FAB webserver and the Python connection-form hooks.

``make test-airflow-2.11`` runs them. Under Airflow 3 this folder is not collected (neither skipped nor
run): the FAB webserver is gone there, and tests/e2e/test_ui_browser.py checks 3.x's connection form.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest

AIRFLOW_MAJOR = int(version("apache-airflow").split(".")[0])

collect_ignore_glob = [] if AIRFLOW_MAJOR == 2 else ["test_*.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "legacy_ui: Airflow 2.x connection form (FAB webserver, get_ui_field_behaviour); make test-airflow-2.11",
    )
