"""In a real triggerer: a clip that completes starts a DAG run through PixVerseNewSpeechTrigger (an AssetWatcher)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from e2e.airflow_processes import (
    STARTUP_TIMEOUT,
    AirflowApi,
    AirflowProcess,
    airflow_env,
    free_port,
    run_airflow,
    stop_all,
    wait_for,
    wait_until_healthy,
)

from airflow_provider_pixverse.sandbox import PixVerseSandbox

if TYPE_CHECKING:
    from collections.abc import Callable

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "pixverse_e2e_new_speech.py"
DAG_ID = "pixverse_e2e_new_speech"
ACCOUNT = "watched@example.com"
STEP_TIMEOUT = 120.0


def _runs(api: AirflowApi) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = api.json("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
    assert all(run["state"] != "failed" for run in runs), runs
    return runs


def _clip_of(api: AirflowApi, run_id: str) -> dict[str, Any]:
    xcom = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/record/xcomEntries/return_value")
    value = xcom["value"]
    return json.loads(value) if isinstance(value, str) else dict(value)


def _dag_ready(api: AirflowApi) -> bool:
    errors = api.json("GET", "/importErrors")["import_errors"]
    assert not errors, f"the test DAG does not import: {errors}"
    return api.call("GET", f"/dags/{DAG_ID}").status_code == 200


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_a_completed_clip_starts_a_dag_run(tmp_path: Path) -> None:
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    api_port = free_port()
    sandbox = PixVerseSandbox().start()
    started: list[AirflowProcess] = []
    try:
        # Final before the watcher starts: never announced.
        before = sandbox.add_clip(text="Done long ago.", email=ACCOUNT, status="COMPLETED")["audio_id"]
        running = sandbox.add_clip(text="Ready soon.", email=ACCOUNT, ready_after=3600)["audio_id"]
        env = airflow_env(home, dags, api_port, {"AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json()})
        run_airflow(["db", "migrate"], env, logs / "db-migrate.log")

        def start(name: str, args: list[str]) -> AirflowProcess:
            process = AirflowProcess(name, args, env, logs)
            started.append(process.start())
            return process

        def until(what: str, check: Callable[[], Any], timeout: float = STARTUP_TIMEOUT) -> Any:
            return wait_for(what, check, timeout=timeout, processes=started)

        def after_rounds(rounds: int) -> None:
            """Wait until the watcher has listed the account ``rounds`` more times."""
            target = sandbox.request_counts()["list"] + rounds
            until(f"{rounds} more rounds of the watcher", lambda: sandbox.request_counts()["list"] >= target)

        start("api-server", ["api-server"])
        start("scheduler", ["scheduler", "--skip-serve-logs"])
        start("dag-processor", ["dag-processor"])
        start("triggerer", ["triggerer", "--skip-serve-logs"])
        api = AirflowApi(f"http://127.0.0.1:{api_port}")
        wait_until_healthy(api.base_url, started, ("scheduler", "dag_processor", "triggerer"))
        until(f"the DAG {DAG_ID} to be parsed", lambda: _dag_ready(api))
        api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        # The watcher is running once it has listed the account.
        until("the watcher's first look", lambda: sandbox.request_counts()["list"] >= 1, timeout=STEP_TIMEOUT)
        after_rounds(2)  # nothing ended since it started: no run
        assert _runs(api) == []

        sandbox.finish_clip(running)
        finished = time.monotonic()
        (run,) = until("a run started by the clip", lambda: _runs(api), timeout=STEP_TIMEOUT)
        started_after = time.monotonic() - finished
        until("the run to succeed", lambda: _runs(api)[0]["state"] == "success", timeout=STEP_TIMEOUT)
        clip = _clip_of(api, run["dag_run_id"])
        assert clip["audio_id"] == running and clip["audio_status_name"] == "COMPLETED" and clip["url"]
        assert before != running
        after_rounds(3)  # the same clip is not announced twice
        assert len(_runs(api)) == 1
        print(f"\nA DAG run started {started_after:.1f} s after the clip completed (poll interval 1 s)")
    finally:
        stop_all(started)
        sandbox.stop()
