"""The built distributions: they pass `twine check`, and the wheel works when installed for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from dist_build import REPO, run

# Clips finish at once: the example polls every 10 s, as a user's DAG would.
SANDBOX_ARGS = ("--port", "0", "--queued-seconds", "0", "--generating-seconds", "0")


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    built = sorted(path.name for path in dist.iterdir())
    assert any(name.endswith(".whl") for name in built) and any(name.endswith(".tar.gz") for name in built)
    result = run(sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir())
    assert result.stdout.count("PASSED") == 2


def test_the_version_comes_from_one_place(dist: Path) -> None:
    source = (REPO / "airflow_provider_pixverse" / "__init__.py").read_text()
    version = re.search(r'__version__ = "([^"]+)"', source)
    assert version is not None
    (wheel,) = dist.glob("*.whl")
    assert wheel.name.startswith(f"airflow_provider_pixverse-{version.group(1)}-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert f"Version: {version.group(1)}" in metadata
    assert "License-Expression: Apache-2.0" in metadata or "License: Apache-2.0" in metadata
    assert "airflow_provider_pixverse/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert "provider_info = airflow_provider_pixverse.get_provider_info:get_provider_info" in entry_points
    # The sandbox's pytest plugin is enabled by the user's conftest or `-p`, never by an entry point.
    assert "[pytest11]" not in entry_points and "pytest_plugin" not in entry_points


@pytest.mark.e2e
def test_the_installed_wheel_runs_the_example_dag(dist: Path, tmp_path: Path) -> None:
    """A fresh virtual environment, the wheel (not editable), the example DAG against the sandbox."""
    import airflow

    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    run(uv, "pip", "install", "--quiet", "--python", python, f"apache-airflow=={airflow.__version__}", wheel, "mutagen")
    # Run from outside the repository, so only the installed wheel can be imported.
    where = run(python, "-c", "import airflow_provider_pixverse as p; print(p.__file__)", cwd=tmp_path).stdout
    assert str(venv) in where and str(REPO) not in where

    sandbox = subprocess.Popen(
        [python, "-m", "airflow_provider_pixverse.sandbox", *SANDBOX_ARGS],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert sandbox.stdout is not None
        fields = dict(part.split("=", 1) for part in sandbox.stdout.readline().split()[1:])
        with tempfile.TemporaryDirectory() as home:
            dags = Path(home) / "dags"
            dags.mkdir()
            (dags / "example_pixverse_speech.py").write_text(
                (REPO / "example_dags" / "example_pixverse_speech.py").read_text()
            )
            env = {
                "PATH": os.environ["PATH"],
                "HOME": os.environ.get("HOME", home),
                "AIRFLOW_HOME": home,
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": json.dumps(
                    {"conn_type": "pixverse", "host": fields["url"], "password": fields["token"]}
                ),
            }
            airflow_cli = [venv / "bin" / "airflow"]
            run(*airflow_cli, "db", "migrate", env=env, cwd=tmp_path)
            providers = run(*airflow_cli, "providers", "list", "-o", "json", env=env, cwd=tmp_path).stdout
            assert "airflow-provider-pixverse" in providers
            out = tmp_path / "speech"
            conf = json.dumps({"destination": f"file://{out}/"})
            run(*airflow_cli, "dags", "test", "example_pixverse_speech", "--conf", conf, env=env, cwd=tmp_path)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    (mp3,) = out.iterdir()
    info = run(python, "-c", f"from mutagen.mp3 import MP3; print(MP3({str(mp3)!r}).info.length)", cwd=tmp_path).stdout
    assert float(info) > 0.5
