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
