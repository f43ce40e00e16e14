"""pytest plugin: the ``pixverse_sandbox`` and ``pixverse_airflow_home`` fixtures. Importing this module stays cheap.

``pixverse_sandbox`` starts a local stand-in for the API and points ``pixverse_default`` at it.
``pixverse_airflow_home`` gives a test a throw-away Airflow home with a migrated SQLite metadata
database, which ``dag.test()`` needs; on Airflow 3 ``dag.test()`` runs only DAGs found in the DAG
folder, set by the ini option ``pixverse_dags_folder`` (default ``dags``, under the rootdir).

Nothing loads it unasked: enable it in a ``conftest.py`` with
``pytest_plugins = ["airflow_provider_pixverse.sandbox.pytest_plugin"]``, or on the command line with
``pytest -p airflow_provider_pixverse.sandbox.pytest_plugin``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

CONN_ENV = "AIRFLOW_CONN_PIXVERSE_DEFAULT"
DAGS_FOLDER_INI = "pixverse_dags_folder"
_DB_FILE = "airflow.db"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ini option naming the folder of the DAG files under test."""
    parser.addini(
        DAGS_FOLDER_INI,
        "DAG folder for pixverse_airflow_home (dag.test() on Airflow 3 runs only DAGs found there); "
        "relative to the rootdir",
        default="dags",
    )


@pytest.fixture
def pixverse_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[PixVerseSandbox]:
    """A running sandbox with a short clock, set as the ``pixverse_default`` connection."""
    from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

    sandbox = PixVerseSandbox(queued_seconds=0.05, generating_seconds=0.1).start()
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json())
    try:
        yield sandbox
    finally:
        sandbox.stop()


@dataclass(frozen=True)
class PixVerseAirflowHome:
    """A throw-away Airflow home: ``path`` holds ``airflow.db``; ``dags_folder`` is what Airflow parses."""

    path: Path
    dags_folder: Path

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the metadata database."""
        return f"sqlite:///{self.path / _DB_FILE}"

    def get_dag(self, dag_id: str) -> Any:
        """Parse the DAG folder as Airflow would and return ``dag_id``; import errors fail the test."""
        try:
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow 2.11 and early 3.x
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

        bag = DagBag(dag_folder=str(self.dags_folder))
        if bag.import_errors:
            pytest.fail(f"DAG import errors in {self.dags_folder}: {bag.import_errors}", pytrace=False)
        dag = bag.get_dag(dag_id)
        if dag is None:
            pytest.fail(f"no DAG {dag_id!r} in {self.dags_folder} (found: {sorted(bag.dag_ids)})", pytrace=False)
        from airflow import __version__

        if int(__version__.split(".")[0]) < 3:
            # Airflow 2's dag.test() does not write the DAG to the database as its DAG processor
            # would, so asset aliases the DAG declares would be missing when a task emits through them.
            dag.sync_to_db()
        return dag


def _airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """The environment that points Airflow at ``home`` and ``dags_folder``."""
    bundle = {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(dags_folder), "refresh_interval": 0},
    }
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / _DB_FILE}",
        # Airflow 3 also opens the database asynchronously; a user's setting must not win here either.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"sqlite+aiosqlite:///{home / _DB_FILE}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        # Airflow 3: dag.test() runs DAGs that a bundle holds. Airflow 2 ignores this section.
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def _reconfigure_airflow() -> None:
    """Point an already imported Airflow at the database the environment now names."""
    if "airflow.settings" not in sys.modules:
        return  # Airflow reads the environment when it is first imported
    from airflow import settings

    settings.configure_vars()
    settings.reconfigure_orm()


@pytest.fixture(scope="session")
def _pixverse_migrated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home whose SQLite database is migrated, once per session; tests get copies."""
    home = tmp_path_factory.mktemp("pixverse-airflow-home-template")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(_airflow_env(home, home / "dags"))
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}", pytrace=False)
    return home


@pytest.fixture
def pixverse_airflow_home(
    request: pytest.FixtureRequest, _pixverse_migrated_home: Path, tmp_path: Path
) -> Iterator[PixVerseAirflowHome]:
    """A fresh Airflow home with a migrated SQLite database for this test, for ``dag.test()``.

    Sets ``AIRFLOW_HOME``, the database URL, the DAG folder (ini option ``pixverse_dags_folder``)
    and turns example DAGs off; works whether or not Airflow was already imported, and restores
    everything afterwards.
    """
    dags_folder = (request.config.rootpath / request.config.getini(DAGS_FOLDER_INI)).resolve()
    if not dags_folder.is_dir():
        warnings.warn(
            f"pixverse_airflow_home: no DAG folder at {dags_folder}; dag.test() on Airflow 3 runs only DAGs "
            f"found there (set {DAGS_FOLDER_INI} in your pytest configuration)",
            stacklevel=2,
        )
    home = tmp_path / "airflow-home"
    shutil.copytree(_pixverse_migrated_home, home)
    patch = pytest.MonkeyPatch()
    try:
        for name, value in _airflow_env(home, dags_folder).items():
            patch.setenv(name, value)
        _reconfigure_airflow()
        yield PixVerseAirflowHome(path=home, dags_folder=dags_folder)
    finally:
        patch.undo()
        _reconfigure_airflow()
