"""In a real triggerer (Airflow 3.3): 200 waiting clips of one account share one listing per interval.

200 mapped creates defer to :class:`PixVerseSpeechTrigger`; the triggerer runs them as one shared-stream
group (connection, account, poll interval). From the outside, in the sandbox's request log, that is one
round of list calls per interval, ``ceil(waiting / 100)`` pages a round, and no GET per clip. The triggerer
is SIGKILLed mid-wait; another one takes the triggers over, forms the group again, and every task succeeds.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
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

DAG_FILE = Path(__file__).resolve().parent.parent / "dags" / "pixverse_e2e_shared.py"
DAG_ID = "pixverse_e2e_shared"
TASK_ID = "speak"
CLIPS = 200  # the DAG's mapped creates
POLL_INTERVAL = 5.0  # the DAG's poll_interval: one round of the group per interval
PAGE_SIZE = 100  # the page the provider asks for (the connection sets no other; the API documents 50 by default)
TRIGGER_CLASSPATH = "airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechTrigger"
# A round's pages go out back to back (milliseconds apart); rounds are POLL_INTERVAL apart.
ROUND_GAP = 2.0
ROUNDS_PER_WINDOW = 2  # complete rounds watched in each window of the wait
# 200 tasks through PARALLELISM slots: ~1.5 s a task with the machine to itself, 3 s at a load of 15.
DEFER_TIMEOUT = 900.0
RESUME_TIMEOUT = 450.0  # 100 tasks resuming, at the same pace
STEP_TIMEOUT = 180.0  # one step once Airflow is up: a take-over, a few rounds
# Worker slots: enough to keep the two cores busy with task start-up, few enough not to thrash them.
PARALLELISM = 8
# GETs by id allowed in a window of the wait: a trigger that subscribes while a round is in flight may get
# a snapshot listed before it joined and look its clip up once. The standalone path makes 200 a round.
GET_SLACK = CLIPS // 20


@dataclass(frozen=True)
class Window:
    """A stretch of the wait, and what the sandbox saw from the triggerer during it."""

    name: str
    start: float
    end: float
    waiting: int  # clips the group waits for throughout
    rounds: list[list[float]]  # list calls of each round that started and ended inside the window
    lists: int  # every list call inside the window
    gets: int  # every GET by id inside the window

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def line(self) -> str:
        pages = [len(r) for r in self.rounds]
        return (
            f"{self.name}: {self.seconds:.1f} s, {self.waiting} waiting, {len(self.rounds)} rounds of {pages} "
            f"list calls, {self.lists} list calls, {self.gets} GETs by id"
        )


def _times(sandbox: PixVerseSandbox, endpoint: str) -> list[float]:
    """When the sandbox received requests for ``endpoint`` (list, get, create), oldest first."""
    return sorted(r.at for r in sandbox.requests if r.endpoint == endpoint)


def _rounds(list_times: list[float]) -> list[list[float]]:
    """List calls grouped into the group's rounds: a gap of ROUND_GAP or more starts a new round."""
    rounds: list[list[float]] = []
    for at in list_times:
        if rounds and at - rounds[-1][-1] < ROUND_GAP:
            rounds[-1].append(at)
        else:
            rounds.append([at])
    return rounds


def _complete_rounds(sandbox: PixVerseSandbox, after: float) -> list[list[float]]:
    """Rounds that started after ``after`` and are over (no page for ROUND_GAP)."""
    now = time.time()
    return [r for r in _rounds(_times(sandbox, "list")) if r[0] >= after and r[-1] < now - ROUND_GAP]


def _polled_for(sandbox: PixVerseSandbox, after: float, rounds: int) -> bool:
    """Whether the triggerer polled through ``rounds`` intervals after ``after``.

    That is ``rounds`` complete rounds of list calls, or, if the triggers poll some other way, any
    list call or GET later than ``rounds`` intervals after ``after`` (the budget check then says how).
    """
    if len(_complete_rounds(sandbox, after)) >= rounds:
        return True
    later = after + rounds * POLL_INTERVAL + ROUND_GAP
    return any(r.at >= later for r in sandbox.requests if r.endpoint in ("list", "get"))


def _window(sandbox: PixVerseSandbox, name: str, start: float, end: float, waiting: int) -> Window:
    lists = [at for at in _times(sandbox, "list") if start <= at < end]
    rounds = [r for r in _rounds(_times(sandbox, "list")) if r[0] >= start and r[-1] < end]
    gets = [at for at in _times(sandbox, "get") if start <= at < end]
    return Window(name, start, end, waiting, rounds, len(lists), len(gets))


def _check(window: Window) -> None:
    """The request budget of a window of the wait, from the sandbox's log.

    While ``w`` clips wait, the group lists the account newest first and stops once it has seen them
    all: the account holds just these clips, so a round is ceil(w / 100) pages, and the last one
    reaches the oldest waiting clip. At most one round starts per interval (+1 for where the window
    cuts the schedule). A clip the listing shows needs no GET by id: at most GET_SLACK fallbacks, where
    the standalone path (one GET per clip per interval) would make ``w`` a round.
    """
    pages = math.ceil(window.waiting / PAGE_SIZE)
    max_rounds = math.floor(window.seconds / POLL_INTERVAL) + 1
    assert window.gets <= GET_SLACK, f"GETs by id while every clip is listed: {window.line()}"
    assert len(window.rounds) >= ROUNDS_PER_WINDOW, f"fewer rounds of list calls than intervals: {window.line()}"
    assert max(len(r) for r in window.rounds) == pages, f"rounds are not {pages} pages: {window.line()}"
    assert window.lists <= max_rounds * pages, f"more than {max_rounds} x {pages} list calls: {window.line()}"


def _cpu_seconds(process: AirflowProcess) -> tuple[float, float]:
    """CPU time of a running component itself, and of its descendants (reaped ones included)."""
    own = descendants = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(process.pid)
        t = root.cpu_times()
        own, descendants = t.user + t.system, t.children_user + t.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = child.cpu_times()
                descendants += t.user + t.system + t.children_user + t.children_system
    return own, descendants


def _tis(api: AirflowApi, run_id: str) -> list[dict[str, Any]]:
    """Every mapped task instance of the run (the api-server's page limit is raised for this)."""
    body = api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
    tis: list[dict[str, Any]] = [ti for ti in body["task_instances"] if ti["task_id"] == TASK_ID]
    return tis


def _count(api: AirflowApi, run_id: str, *states: str) -> int:
    """How many task instances of the run are in one of ``states`` (a count query: the list stays on the server)."""
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances"
    body = api.json("GET", path, params={"state": list(states), "task_id": TASK_ID, "limit": 1})
    return int(body["total_entries"])


def _in_state(api: AirflowApi, run_id: str, state: str) -> int:
    """How many task instances are in ``state``; one that failed fails the test at once."""
    failed = _count(api, run_id, "failed", "upstream_failed", "up_for_retry")
    assert not failed, f"{failed} task instances failed: {_states(api, run_id)}"
    return _count(api, run_id, state)


def _states(api: AirflowApi, run_id: str) -> dict[str, int]:
    """How many task instances are in each state (the whole list: for the checks, not for polling)."""
    counts: dict[str, int] = {}
    for ti in _tis(api, run_id):
        counts[str(ti["state"])] = counts.get(str(ti["state"]), 0) + 1
    return counts


def _triggerers(api: AirflowApi, run_id: str) -> dict[int | None, int]:
    """How many of the run's deferred tasks each triggerer runs (None: not assigned yet)."""
    owners: dict[int | None, int] = {}
    for ti in _tis(api, run_id):
        assert ti["state"] == "deferred", f"map index {ti['map_index']} left deferred: {ti['state']}"
        assert ti["trigger"]["classpath"] == TRIGGER_CLASSPATH, ti["trigger"]
        owner = ti["trigger"]["triggerer_id"]
        owners[owner] = owners.get(owner, 0) + 1
    return owners


def _assigned(api: AirflowApi, run_id: str) -> set[int]:
    """The triggerers that run the run's triggers, once every trigger has one (else an empty set)."""
    owners = _triggerers(api, run_id)
    return set() if None in owners else {owner for owner in owners if owner is not None}


def _taken_over(api: AirflowApi, run_id: str, old: int) -> bool:
    """Whether one triggerer other than ``old`` runs every trigger of the run."""
    owners = _triggerers(api, run_id)
    return len(owners) == 1 and None not in owners and old not in owners


def _dag_ready(api: AirflowApi) -> bool:
    """Whether the DAG is parsed; an import error fails at once."""
    errors = api.json("GET", "/importErrors")["import_errors"]
    assert not errors, f"the test DAG does not import: {errors}"
    return bool(api.call("GET", f"/dags/{DAG_ID}").status_code == 200)


def _log_problems(process: AirflowProcess) -> list[str]:
    """Lines of a triggerer's log that report an error."""
    if not process.log.exists():
        return []
    return [
        line
        for line in process.log.read_text(errors="replace").splitlines()
        if "Traceback" in line or "[error" in line.lower() or " ERROR " in line or '"level": "error"' in line
    ]


@pytest.mark.e2e
@pytest.mark.timeout(2400)
def test_shared_polling_of_200_clips_survives_triggerer_sigkill(tmp_path: Path) -> None:
    home, dags, logs = tmp_path / "airflow_home", tmp_path / "dags", tmp_path / "logs"
    for folder in (home, dags, logs):
        folder.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    api_port = free_port()
    phases: dict[str, float] = {"start": time.monotonic()}
    # Clips stay GENERATING until the test finishes them: across several rounds and the kill.
    # No job limit: 200 jobs in flight at once is what this test is about (test_account_queue.py is the limit's).
    sandbox = PixVerseSandbox(queued_seconds=1.0, generating_seconds=3600.0, max_jobs=None).start()
    started: list[AirflowProcess] = []  # everything, for the teardown
    live: list[AirflowProcess] = []  # what must stay up: a wait fails at once when one of these exits
    try:
        env = airflow_env(
            home,
            dags,
            api_port,
            {
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json(),
                "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
                "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
            },
        )
        run_airflow(["db", "migrate"], env, logs / "db-migrate.log")
        phases["migrated"] = time.monotonic()

        def start(name: str, args: list[str]) -> AirflowProcess:
            process = AirflowProcess(name, args, env, logs)
            started.append(process)
            live.append(process.start())
            return process

        def until(what: str, check: Callable[[], Any], timeout: float = STEP_TIMEOUT, interval: float = 0.5) -> Any:
            return wait_for(what, check, timeout=timeout, processes=live, interval=interval)

        start("api-server", ["api-server"])
        start("scheduler", ["scheduler", "--skip-serve-logs"])
        start("dag-processor", ["dag-processor"])
        triggerer = start("triggerer", ["triggerer", "--skip-serve-logs"])
        api = AirflowApi(f"http://127.0.0.1:{api_port}")
        wait_until_healthy(api.base_url, live, ("scheduler", "dag_processor", "triggerer"))
        until(f"the DAG {DAG_ID} to be parsed", lambda: _dag_ready(api), timeout=STARTUP_TIMEOUT)
        phases["parsed"] = time.monotonic()
        api.json("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        run_id = api.json("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None})["dag_run_id"]

        # 1. Every task creates its clip, looks at it once (a GET) and defers.
        until(
            f"all {CLIPS} tasks to defer",
            lambda: _in_state(api, run_id, "deferred") == CLIPS,
            timeout=DEFER_TIMEOUT,
            interval=2.0,
        )
        all_deferred_at = time.time()
        phases["all deferred"] = time.monotonic()
        counts = sandbox.request_counts()
        assert counts["create"] == CLIPS, counts
        first_looks = counts["get"]
        clips = sandbox.state.listing(None, 10 * CLIPS, 0)["data"]  # the account's clips, newest first
        assert len(clips) == CLIPS, f"the account holds {len(clips)} clips"
        owners = until("the triggerer to run every trigger", lambda: _assigned(api, run_id))
        assert len(owners) == 1, f"the triggers are spread over triggerers {owners}"
        (first_owner,) = owners

        # 2. The group's rounds while all 200 wait: ceil(200 / 100) list calls each, one round per interval.
        until(
            f"{ROUNDS_PER_WINDOW} rounds of the group after the last deferral",
            lambda: _polled_for(sandbox, all_deferred_at, ROUNDS_PER_WINDOW),
        )

        # 3. SIGKILL the triggerer mid-wait; another one takes the triggers over and forms the group again.
        cpu = {"triggerer": _cpu_seconds(triggerer)}
        live.remove(triggerer)
        killed = triggerer.kill()
        killed_at = time.time()
        phases["killed"] = time.monotonic()
        assert not still_running(killed), f"the triggerer's processes outlived SIGKILL: {still_running(killed)}"
        windows = [_window(sandbox, "triggerer 1", all_deferred_at, killed_at, CLIPS)]
        _check(windows[-1])
        triggerer_2 = start("triggerer-2", ["triggerer", "--skip-serve-logs"])
        until(
            f"the new triggerer to take all {CLIPS} triggers over",
            lambda: _taken_over(api, run_id, first_owner),
            interval=1.0,
        )
        taken_over_at = time.time()
        phases["taken over"] = time.monotonic()
        until("the new triggerer's first poll", lambda: _polled_for(sandbox, killed_at, 1))
        resumed_at = min(r.at for r in sandbox.requests if r.at >= killed_at and r.endpoint in ("list", "get"))
        until(
            f"{ROUNDS_PER_WINDOW} rounds of the new triggerer's group",
            lambda: _polled_for(sandbox, taken_over_at, ROUNDS_PER_WINDOW),
        )

        # 4. The oldest half ends: those tasks succeed, and the group pages only as far as the newest 100.
        oldest_first = [clip["audio_id"] for clip in reversed(clips)]
        half = CLIPS // 2
        finished_old_at = time.time()
        windows.append(_window(sandbox, "triggerer 2", taken_over_at, finished_old_at, CLIPS))
        _check(windows[-1])
        for audio_id in oldest_first[:half]:
            sandbox.finish_clip(audio_id)
        until(
            f"the {half} tasks of the oldest clips to succeed",
            lambda: _in_state(api, run_id, "success") == half,
            timeout=RESUME_TIMEOUT,
            interval=1.0,
        )
        half_done_at = time.time()
        phases["half succeeded"] = time.monotonic()
        assert _states(api, run_id) == {"success": half, "deferred": CLIPS - half}
        until(
            f"{ROUNDS_PER_WINDOW} rounds for the {CLIPS - half} clips still waiting",
            lambda: _polled_for(sandbox, half_done_at, ROUNDS_PER_WINDOW),
        )

        # 5. The rest ends; every task succeeds with its own clip.
        finished_rest_at = time.time()
        windows.append(_window(sandbox, "triggerer 2, half left", half_done_at, finished_rest_at, CLIPS - half))
        _check(windows[-1])
        for audio_id in oldest_first[half:]:
            sandbox.finish_clip(audio_id)
        until(
            f"all {CLIPS} tasks to succeed",
            lambda: _in_state(api, run_id, "success") == CLIPS,
            timeout=RESUME_TIMEOUT,
            interval=1.0,
        )
        until("the run to succeed", lambda: api.json("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"] == "success")
        phases["success"] = time.monotonic()
        assert _states(api, run_id) == {"success": CLIPS}
        seen = set()
        for ti in _tis(api, run_id):
            xcom = api.json(
                "GET",
                f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/xcomEntries/return_value",
                params={"map_index": ti["map_index"]},
            )
            clip = json.loads(xcom["value"]) if isinstance(xcom["value"], str) else xcom["value"]
            assert clip["audio_status_name"] == "COMPLETED", clip
            seen.add(clip["audio_id"])
        assert seen == set(oldest_first), "the tasks did not each return their own clip"

        cpu |= {p.name: _cpu_seconds(p) for p in live}
        cpu["pytest (sandbox, polling)"] = (sum(psutil.Process().cpu_times()[:2]), 0.0)
        after_deferral = sandbox.request_counts()
        triggerer_gets = after_deferral["get"] - first_looks
        assert triggerer_gets <= GET_SLACK, f"{triggerer_gets} GETs by id after every task had deferred"
        problems = _log_problems(triggerer) + _log_problems(triggerer_2)
        assert not problems, "the triggerers logged errors:\n" + "\n".join(problems[:40])
        print(
            "\n"
            + "\n".join(w.line() for w in windows)
            + f"\nrequests: {after_deferral}: {first_looks} GETs by id before every task had deferred"
            + f" ({CLIPS} first looks), {triggerer_gets} after"
            + f"\nkill -> all triggers on the new triggerer: {taken_over_at - killed_at:.1f} s;"
            + f" kill -> its first round: {resumed_at - killed_at:.1f} s"
            + "\nphases: "
            + ", ".join(f"{name} {at - phases['start']:.1f} s" for name, at in phases.items())
            + "\nCPU seconds: "
            + ", ".join(f"{name} {own:.0f} + {children:.0f} in children" for name, (own, children) in cpu.items())
        )
    finally:
        stop_all(started)
        sandbox.stop()
