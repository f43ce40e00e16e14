"""In a real triggerer: a deferred sensor survives its triggerer being SIGKILLed and restarted."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import pytest
from e2e.airflow_processes import (
    STARTUP_TIMEOUT,
    AirflowApi,
    AirflowProcess,
    airflow_env,
    free_port,
    run_airflow,
    still_running,
    stop_all,
    wait_for,
    wait_until_healthy,
)

from airflow_provider_pixverse.sandbox import PixVerseSandbox

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_pixverse.sandbox.records import RecordedRequest

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "pixverse_e2e_triggerer.py"
DAG_ID = "pixverse_e2e_triggerer"
TASK_ID = "wait_for_speech"
TRIGGER_CLASSPATH = "airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechTrigger"
POKE_INTERVAL = 5.0  # the DAG's sensor poke_interval
STEP_TIMEOUT = 120.0  # one step once Airflow is up (a defer, a poll, a take-over): seconds when idle


def _clip_polls(sandbox: PixVerseSandbox, audio_id: str) -> list[float]:
    """When the sandbox answered a look at this clip, oldest first.

    A look is a GET of the clip by id, or a listing of its account: on Airflow 3.3 the triggers of
    one account share one listing per interval and GET a clip by id only when the listing misses it.
    """
    account = audio_id.split("-pixverse:", 1)[1].rsplit("-speech:", 1)[0]

    def looks_at_it(r: RecordedRequest) -> bool:
        path, _, query = r.raw_path.partition("?")
        if r.endpoint == "get":
            return unquote(path).endswith(f"/speech/{audio_id}")
        return r.endpoint == "list" and parse_qs(query).get("email", [account]) == [account]

    return [r.at for r in sandbox.requests if looks_at_it(r)]


def _ti(api: AirflowApi, run_id: str) -> dict[str, Any]:
    """The sensor's task instance."""
    ti: dict[str, Any] = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}")
    return ti


def _ti_if(api: AirflowApi, run_id: str, state: str) -> dict[str, Any] | None:
    """The sensor's task instance when it is in ``state``; a failed run fails at once."""
    ti = _ti(api, run_id)
    assert ti["state"] not in ("failed", "upstream_failed"), f"the sensor ended {ti['state']}"
    return ti if ti["state"] == state else None


def _run_state(api: AirflowApi, run_id: str) -> str:
    """The run's state; a failed run fails at once."""
    state = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
    assert state != "failed", f"the run {run_id} failed"
    return str(state)


def _phase_line(phases: dict[str, float]) -> str:
    """Seconds from one phase to the next, for the summary line."""
    names = list(phases)
    return "phases: " + ", ".join(f"{b} +{phases[b] - phases[a]:.1f} s" for a, b in itertools.pairwise(names))


def _dag_ready(api: AirflowApi) -> bool:
    """Whether the DAG is parsed; an import error fails at once."""
    errors = api.json("GET", "/importErrors")["import_errors"]
    assert not errors, f"the test DAG does not import: {errors}"
    return api.call("GET", f"/dags/{DAG_ID}").status_code == 200


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_deferred_sensor_survives_triggerer_sigkill(tmp_path: Path) -> None:
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    api_port = free_port()
    phases: dict[str, float] = {"start": time.monotonic()}
    sandbox = PixVerseSandbox().start()
    started: list[AirflowProcess] = []  # everything, for the teardown
    live: list[AirflowProcess] = []  # what must stay up: a wait fails at once when one of these exits
    try:
        # The clip stays GENERATING until the test finishes it, after the triggerer restart.
        audio_id = sandbox.add_clip(text="Wait for me across a triggerer restart.", ready_after=3600)["audio_id"]
        env = airflow_env(home, dags, api_port, {"AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json()})
        run_airflow(["db", "migrate"], env, logs / "db-migrate.log")
        phases["migrated"] = time.monotonic()

        def start(name: str, args: list[str]) -> AirflowProcess:
            process = AirflowProcess(name, args, env, logs)
            started.append(process)
            live.append(process.start())
            return process

        def until(what: str, check: Callable[[], Any], timeout: float = STARTUP_TIMEOUT) -> Any:
            return wait_for(what, check, timeout=timeout, processes=live)

        start("api-server", ["api-server"])
        start("scheduler", ["scheduler", "--skip-serve-logs"])
        start("dag-processor", ["dag-processor"])
        triggerer = start("triggerer", ["triggerer", "--skip-serve-logs"])
        api = AirflowApi(f"http://127.0.0.1:{api_port}")
        wait_until_healthy(api.base_url, live, ("scheduler", "dag_processor", "triggerer"))
        until(f"the DAG {DAG_ID} to be parsed", lambda: _dag_ready(api))
        phases["parsed"] = time.monotonic()
        api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        run = api.json("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {"audio_id": audio_id}})
        run_id = run["dag_run_id"]

        deferred = until("the sensor to defer", lambda: _ti_if(api, run_id, "deferred"))
        trigger = deferred["trigger"]
        assert trigger["classpath"] == TRIGGER_CLASSPATH, trigger
        # One check from the worker, then the trigger's first poll from inside the triggerer.
        until("the trigger's first poll", lambda: len(_clip_polls(sandbox, audio_id)) >= 2, timeout=STEP_TIMEOUT)
        first_owner = until("the trigger's triggerer", lambda: _ti(api, run_id)["trigger"]["triggerer_id"])

        phases["deferred"] = time.monotonic()
        live.remove(triggerer)
        killed = triggerer.kill()
        killed_at = time.time()
        assert not still_running(killed), f"the triggerer's processes outlived SIGKILL: {still_running(killed)}"
        polls_before_restart = len(_clip_polls(sandbox, audio_id))
        time.sleep(2)
        assert _ti(api, run_id)["state"] == "deferred", "the task left `deferred` while no triggerer ran"
        assert len(_clip_polls(sandbox, audio_id)) == polls_before_restart, "the clip is polled with no triggerer"

        start("triggerer-2", ["triggerer", "--skip-serve-logs"])
        restarted_at = time.time()
        # The new triggerer takes the same trigger over once the dead one's heartbeat is stale.
        taken_over = until(
            "the restarted triggerer to take the trigger over",
            lambda: _ti(api, run_id)["trigger"]["triggerer_id"] not in (None, first_owner),
            timeout=STEP_TIMEOUT,
        )
        assert taken_over
        phases["taken over"] = time.monotonic()
        assert _ti(api, run_id)["trigger"]["id"] == trigger["id"], "the trigger was re-created, not resumed"
        until(
            "the restarted triggerer to poll the clip",
            lambda: any(at > restarted_at for at in _clip_polls(sandbox, audio_id)),
            timeout=STEP_TIMEOUT,
        )
        sandbox.finish_clip(audio_id)
        finished_at = time.time()
        until("the run to succeed", lambda: _run_state(api, run_id) == "success", timeout=STEP_TIMEOUT)
        phases["success"] = time.monotonic()

        xcom = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries/return_value")
        clip = json.loads(xcom["value"]) if isinstance(xcom["value"], str) else xcom["value"]
        assert clip["audio_id"] == audio_id
        assert clip["audio_status"] == 1, clip
        assert clip["audio_status_name"] == "COMPLETED"
        assert clip["file_size"] > 0

        polls = _clip_polls(sandbox, audio_id)
        assert len([at for at in polls if at >= finished_at]) <= 1, "the trigger polled on after it saw COMPLETED"
        # The fewest possible here: the check before deferring, the first poll of each of the two triggerers,
        # and the poll that sees COMPLETED. Each trigger polls at once, then once every POKE_INTERVAL (+1 slack).
        minimum = 4
        polling = (killed_at - polls[1]) + (finished_at - restarted_at)
        ceiling = minimum + int(polling / POKE_INTERVAL) + 1
        assert len(polls) <= ceiling, f"{len(polls)} looks at the clip in {polling:.1f} s of polling"
        print(
            f"\nlooks at the clip (GETs by id, listings of its account): {len(polls)} "
            f"({polls_before_restart} before the kill; minimum {minimum}; "
            f"ceiling for {polling:.1f} s of polling every {POKE_INTERVAL:.0f} s: {ceiling})\n" + _phase_line(phases)
        )
    finally:
        stop_all(started)
        sandbox.stop()
