"""The pytest plugin: its fixture, in this run and in a fresh pytest run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import requests

import airflow_provider_pixverse

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

ROOT = Path(airflow_provider_pixverse.__file__).resolve().parent.parent


def test_fixture_runs_a_sandbox_and_sets_the_connection(pixverse_sandbox: PixVerseSandbox) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_PIXVERSE_DEFAULT"])
    assert conn == {"conn_type": "pixverse", "host": pixverse_sandbox.url, "password": pixverse_sandbox.token}
    answer = requests.get(
        f"{conn['host']}/v2/pixverse/speech/models",
        headers={"Authorization": f"Bearer {conn['password']}"},
        timeout=10,
    )
    assert answer.status_code == 200


def test_plugin_module_is_cheap_to_import() -> None:
    code = (
        "import sys, airflow_provider_pixverse.sandbox.pytest_plugin as p; print('sandbox.service' in str(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "False"


def test_plugin_in_a_fresh_pytest_run(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import os

            def test_it(pixverse_sandbox):
                assert pixverse_sandbox.url in os.environ["AIRFLOW_CONN_PIXVERSE_DEFAULT"]
                clip = pixverse_sandbox.add_clip(status="COMPLETED")
                assert clip["audio_status_final"]

            def test_env_restored():
                assert "AIRFLOW_CONN_PIXVERSE_DEFAULT" not in os.environ
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_PIXVERSE_DEFAULT"}
    env["PYTHONPATH"] = str(ROOT)
    plugin = ["-p", "no:pixverse_sandbox", "-p", "airflow_provider_pixverse.sandbox.pytest_plugin"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout


USER_DAG = """
import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_pixverse.operators.pixverse import PixVerseCreateSpeechOperator

with DAG("user_dag", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    PixVerseCreateSpeechOperator(task_id="create", text="Hi", voice_id="minimax_english_radiant_girl",
                                 wait_for_completion=False)
"""

USER_TESTS = """
import os
from pathlib import Path

from airflow import settings  # Airflow is imported while tests are collected, before any fixture runs

BEFORE = (os.environ["AIRFLOW_HOME"], settings.SQL_ALCHEMY_CONN)


def test_dag_test_runs(pixverse_sandbox, pixverse_airflow_home, pytestconfig):
    assert os.environ["AIRFLOW_HOME"] == str(pixverse_airflow_home.path)
    assert settings.SQL_ALCHEMY_CONN == pixverse_airflow_home.database_url
    home = str(pixverse_airflow_home.path)
    assert home in getattr(settings, "SQL_ALCHEMY_CONN_ASYNC", home)  # Airflow 3 only
    assert pixverse_airflow_home.dags_folder == pytestconfig.rootpath / "my_dags"
    dag_run = pixverse_airflow_home.get_dag("user_dag").test()
    assert dag_run.state == "success"
    assert [r.method for r in pixverse_sandbox.requests if r.kind == "api"] == ["POST"]


def test_each_test_gets_a_fresh_database(pixverse_airflow_home):
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        assert session.query(DagRun).count() == 0


def test_everything_is_put_back():
    assert (os.environ["AIRFLOW_HOME"], settings.SQL_ALCHEMY_CONN) == BEFORE
    assert not Path(BEFORE[0], "airflow.db").exists()
"""


def test_airflow_home_fixture_in_a_fresh_pytest_run(tmp_path: Path) -> None:
    """A user's project: Airflow already imported, a home of their own; dag.test() works, nothing leaks."""
    (tmp_path / "pytest.ini").write_text("[pytest]\npixverse_dags_folder = my_dags\n")
    (tmp_path / "my_dags").mkdir()
    (tmp_path / "my_dags" / "user_dag.py").write_text(USER_DAG)
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    user_home = tmp_path / "users-airflow-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_")}
    env.update(AIRFLOW_HOME=str(user_home), PYTHONPATH=str(ROOT))
    # A user's own database settings, which the fixture must override and then put back.
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{user_home}/airflow.db"
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = f"sqlite+aiosqlite:///{user_home}/airflow.db"
    plugin = ["-p", "no:pixverse_sandbox", "-p", "airflow_provider_pixverse.sandbox.pytest_plugin"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    assert "3 passed" in out.stdout
