"""In a real triggerer: a deferred sensor survives its triggerer being SIGKILLed and restarted."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from e2e.airflow_processes import AirflowProcess, airflow_env, free_port, run_airflow, wait_for

from airflow_provider_pixverse.sandbox import PixVerseSandbox

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "pixverse_e2e_triggerer.py"
DAG_ID = "pixverse_e2e_triggerer"
TASK_ID = "wait_for_speech"
POKE_INTERVAL = 5.0  # the DAG's sensor poke_interval
STARTUP_TIMEOUT = 90.0


class RestApi:
    """The Airflow REST API v2 (the simple auth manager in all-admins mode needs no token)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request to ``/api/v2{path}``."""
        return self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=10, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body; fail on an error status."""
        response = self.call(method, path, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def ti_state(self, run_id: str) -> str | None:
        """The sensor task instance's state."""
        return self.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}")["state"]


def _clip_polls(sandbox: PixVerseSandbox, audio_id: str) -> list[float]:
    """When the sandbox answered a GET of this clip, oldest first."""
    return [
        r.at
        for r in sandbox.requests
        if r.kind == "api" and r.method == "GET" and unquote(r.raw_path).endswith(f"/speech/{audio_id}")
    ]


def _finish_clip(sandbox: PixVerseSandbox, audio_id: str) -> None:
    """Make a clip COMPLETED from now on (the control surface has no route for it)."""
    clip = sandbox.state.get(audio_id)
    clip.queued_seconds = clip.generating_seconds = 0.0


def _dag_ready(api: RestApi) -> bool:
    """Whether the DAG is parsed; an import error fails at once."""
    errors = api.json("GET", "/importErrors")["import_errors"]
    assert not errors, f"the test DAG does not import: {errors}"
    return api.call("GET", f"/dags/{DAG_ID}").status_code == 200


@pytest.mark.e2e
@pytest.mark.timeout(280)
def test_deferred_sensor_survives_triggerer_sigkill(tmp_path: Path) -> None:
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    api_port = free_port()
    sandbox = PixVerseSandbox().start()
    processes: list[AirflowProcess] = []
    try:
        # The clip stays GENERATING until the test finishes it, after the triggerer restart.
        audio_id = sandbox.add_clip(text="Wait for me across a triggerer restart.", ready_after=3600)["audio_id"]
        env = airflow_env(home, dags, api_port, {"AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json()})
        run_airflow(["db", "migrate"], env, logs / "db-migrate.log")
        for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
            processes.append(AirflowProcess(name, [name], env, logs).start())
        api = RestApi(f"http://127.0.0.1:{api_port}")

        def running(what: str, check: Any, timeout: float = STARTUP_TIMEOUT) -> Any:
            return wait_for(what, check, timeout=timeout, processes=[p for p in processes if p.alive()] or processes)

        running("the api-server", lambda: api.call("GET", "/monitor/health").ok)
        running(f"the DAG {DAG_ID} to be parsed", lambda: _dag_ready(api))
        api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        run_id = api.json(
            "POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"audio_id": audio_id}}
        )["dag_run_id"]

        running("the sensor to defer", lambda: api.ti_state(run_id) == "deferred")
        # One check from the worker, then at least one poll from inside the triggerer.
        running("the trigger's first poll", lambda: len(_clip_polls(sandbox, audio_id)) >= 2, timeout=30)
        triggerer = processes[-1]
        killed = triggerer.kill(signal.SIGKILL)
        killed_at = time.time()
        assert not triggerer.alive()
        assert api.ti_state(run_id) == "deferred", "the task left `deferred` although its trigger was killed"
        polls_before_restart = len(_clip_polls(sandbox, audio_id))

        time.sleep(2)
        assert len(_clip_polls(sandbox, audio_id)) == polls_before_restart, f"something still polls after {killed}"
        restarted = AirflowProcess("triggerer-2", ["triggerer"], env, logs).start()
        processes.append(restarted)
        restarted_at = time.time()
        # The new triggerer takes the trigger over once the dead one's heartbeat is stale.
        running(
            "the restarted triggerer to poll the clip",
            lambda: any(at > restarted_at for at in _clip_polls(sandbox, audio_id)),
            timeout=60,
        )
        _finish_clip(sandbox, audio_id)
        finished_at = time.time()

        def run_state() -> str | None:
            state = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            assert state != "failed", f"the run failed:\n{restarted.tail()}"
            return state if state == "success" else None

        running("the run to succeed", run_state, timeout=60)
        xcom = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries/return_value")
        clip = json.loads(xcom["value"]) if isinstance(xcom["value"], str) else xcom["value"]
        assert clip["audio_id"] == audio_id
        assert clip["audio_status"] == 1, clip
        assert clip["audio_status_name"] == "COMPLETED"
        assert clip["file_size"] > 0

        polls = _clip_polls(sandbox, audio_id)
        after_finish = [at for at in polls if at >= finished_at]
        assert len(after_finish) == 1, f"the trigger went on polling after it saw COMPLETED: {after_finish}"
        # 1 check before deferring; each trigger start polls at once, then every POKE_INTERVAL s.
        waited = (killed_at - polls[1]) + (finished_at - restarted_at)
        ceiling = 1 + 2 + waited / POKE_INTERVAL + 1
        assert len(polls) <= ceiling, f"{len(polls)} GETs of the clip in {waited:.1f} s of polling"
        print(
            f"\nGETs of the clip: {len(polls)} (minimum with one restart: 3; before the kill: "
            f"{polls_before_restart}; deferred-and-polling time {waited:.1f} s, poke_interval {POKE_INTERVAL} s)"
        )
    finally:
        for process in reversed(processes):
            process.kill(signal.SIGTERM, grace=5)
        sandbox.stop()
