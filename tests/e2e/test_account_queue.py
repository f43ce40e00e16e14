"""In a real Airflow (3.3, scheduler, triggerer, LocalExecutor): 24 creates on an account that runs 3 jobs at once.

Every create beyond the account's limit is refused busy (429, no job made); the task waits, deferred, in
the account's queue in the triggerer, and creates once a job ends. Every task succeeds, exactly 24 creates
are accepted, never more than 3 jobs run at once, and the makespan (first accepted create to the last task's
success) stays within 1.5x the ideal: ceil(24 / 3) clips one after another.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

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

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "pixverse_e2e_busy.py"
DAG_ID = "pixverse_e2e_busy"
TASK_ID = "speak"
CLIPS = 24
MAX_JOBS = 3
QUEUED_SECONDS, GENERATING_SECONDS = 1.0, 19.0
CLIP_SECONDS = QUEUED_SECONDS + GENERATING_SECONDS
IDEAL = math.ceil(CLIPS / MAX_JOBS) * CLIP_SECONDS
MAX_RATIO = 1.5
PARALLELISM = 8


def _count(api: AirflowApi, run_id: str, *states: str) -> int:
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
    body = api.json("GET", path, params={"state": list(states), "task_id": TASK_ID, "limit": 1})
    return int(body["total_entries"])


def _succeeded(api: AirflowApi, run_id: str) -> int:
    """How many tasks succeeded; one that failed (or is up for retry) fails the test at once."""
    failed = _count(api, run_id, "failed", "upstream_failed", "up_for_retry")
    assert not failed, f"{failed} task instances failed"
    return _count(api, run_id, "success")


def _dag_ready(api: AirflowApi) -> bool:
    errors = api.json("GET", "/importErrors")["import_errors"]
    assert not errors, f"the test DAG does not import: {errors}"
    return bool(api.call("GET", f"/dags/{DAG_ID}").status_code == 200)


@pytest.mark.e2e
@pytest.mark.timeout(1500)
def test_24_creates_on_a_3_job_account_queue_for_capacity_and_all_succeed(tmp_path: Path) -> None:
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    api_port = free_port()
    sandbox = PixVerseSandbox(
        queued_seconds=QUEUED_SECONDS, generating_seconds=GENERATING_SECONDS, max_jobs=MAX_JOBS
    ).start()
    started: list[AirflowProcess] = []
    try:
        env = airflow_env(
            home,
            dags,
            api_port,
            {
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json(),
                "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
            },
        )
        run_airflow(["db", "migrate"], env, logs / "db-migrate.log")
        for name, args in (
            ("api-server", ["api-server"]),
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer", "--skip-serve-logs"]),
        ):
            started.append(AirflowProcess(name, args, env, logs).start())
        api = AirflowApi(f"http://127.0.0.1:{api_port}")
        wait_until_healthy(api.base_url, started, ("scheduler", "dag_processor", "triggerer"))
        wait_for("the DAG to be parsed", lambda: _dag_ready(api), timeout=STARTUP_TIMEOUT, processes=started)
        api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        run_id = api.json("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})["dag_run_id"]
        wait_for(
            f"all {CLIPS} tasks to succeed",
            lambda: _succeeded(api, run_id) == CLIPS,
            timeout=1200,
            processes=started,
            interval=1.0,
        )
        done_at = time.time()

        outcomes = sandbox.create_outcomes()
        accepted = [r for r in sandbox.requests if r.endpoint == "create" and r.status == 200]
        makespan = done_at - accepted[0].at
        ratio = makespan / IDEAL
        print(
            f"\n{CLIPS} creates on a {MAX_JOBS}-job account, clips of {CLIP_SECONDS:.0f} s: creates {outcomes}, "
            f"at most {sandbox.jobs_high_water()} jobs at once; makespan {makespan:.1f} s from the first accepted "
            f"create to the last success, ideal {IDEAL:.0f} s: {ratio:.2f}x; "
            f"requests {sandbox.request_counts()}"
        )
        assert outcomes["accepted"] == CLIPS, outcomes  # one create per task: a refusal made no job
        assert outcomes["refused"] == 0, outcomes
        assert outcomes["busy"] >= 1, "the account never refused a create: the test did not meet the limit"
        assert sandbox.jobs_high_water() == MAX_JOBS
        clips = sandbox.state.listing(None, 10 * CLIPS, 0)["data"]
        assert len(clips) == len({clip["prompt"] for clip in clips}) == CLIPS, "a text was created twice"
        assert ratio <= MAX_RATIO, f"makespan {makespan:.1f} s is {ratio:.2f}x the ideal {IDEAL:.0f} s"
    finally:
        stop_all(started)
        sandbox.stop()
