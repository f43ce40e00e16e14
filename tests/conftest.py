"""Test-wide set-up: a throw-away Airflow home, made before anything imports Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_HOME = REPO / ".airflow-test"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
# dag.test() runs only DAGs that a bundle holds: the examples users copy, and the tests' own.
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(REPO / folder), "refresh_interval": 0},
        }
        for name, folder in (("pixverse_examples", "example_dags"), ("pixverse_test_dags", "tests/dags"))
    ]
)
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An Airflow metadata database (SQLite), migrated once per machine and Airflow version."""
    import airflow

    stamp = AIRFLOW_HOME / f".migrated-{airflow.__version__}"
    if not stamp.exists():
        AIRFLOW_HOME.mkdir(exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
        )
        stamp.touch()
    return AIRFLOW_HOME
