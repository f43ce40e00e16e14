"""Test-wide set-up: a throw-away Airflow home, made before anything imports Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import boto3
import pytest

REPO = Path(__file__).resolve().parent.parent
# One home per Airflow version: the matrix venvs (make test-matrix) must not share a database or airflow.cfg.
AIRFLOW_HOME = REPO / ".airflow-test" / version("apache-airflow")

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "example_dags")
# dag.test() runs only DAGs that a bundle holds (3.x): the examples users copy, and the tests' own.
# Airflow 2.11 has no bundles and ignores this unknown section.
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

# The sandbox fixtures (pixverse_sandbox, pixverse_airflow_home): asked for, as a user's conftest does.
pytest_plugins = ["airflow_provider_pixverse.sandbox.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An Airflow metadata database (SQLite), migrated once per machine and Airflow version."""
    import airflow

    stamp = AIRFLOW_HOME / f".migrated-{airflow.__version__}"
    if not stamp.exists():
        AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
        )
        stamp.touch()
    return AIRFLOW_HOME


@pytest.fixture(autouse=True)
def _triggers_fire_when_ready(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process a trigger's event goes to its task at once: no settle time.

    The settle time (``_api.capacity.SETTLE_SECONDS``) keeps a trigger from firing seconds after its
    task deferred, which a real scheduler may mishandle (see there); the triggers run here by the
    tests and ``dag.test()`` have no scheduler. Airflow's own processes (the e2e and distributed
    suites) keep it. A test marked ``real_settle`` keeps it too.
    """
    if request.node.get_closest_marker("real_settle") is None:
        from airflow_provider_pixverse._api import capacity

        monkeypatch.setattr(capacity, "SETTLE_SECONDS", 0.0)


S3_CONN_ID = "aws_pixverse_test"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 endpoint: moto in server mode on loopback."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh bucket, with the Airflow AWS connection ``aws_pixverse_test`` pointing at it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{S3_CONN_ID.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    s3 = boto3.resource("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = s3.create_bucket(Bucket=f"speech-{uuid.uuid4().hex[:12]}")
    yield bucket
