"""On a distributed Airflow, one corpus task survives a killed worker, triggerer, scheduler and a database restart.

One ``PixVerseBatchTextToSpeechOperator`` task speaks ``ITEMS`` distinct short texts over two
accounts whose job limits are 3 and 5 (the sandbox enforces the same limits) into a folder of S3
(moto), on CeleryExecutor with PostgreSQL and Redis, two workers, two triggerers, a scheduler, an
api-server and a dag-processor. While the corpus runs the test, in this order, each at a moment it
observes (the sandbox's request log and faults, the metadata database, the trigger logs):

1. SIGKILLs the worker running the task while the task writes an item (the sandbox holds the
   download of the next MP3 once the corpus is under way) and starts a replacement: the task's
   retry runs on another worker;
2. SIGKILLs the triggerer holding the task's trigger while the task is deferred, its clips in
   flight (the clips of that window take ``SLOW_GENERATING_SECONDS``, so the trigger is mid-wait):
   the other triggerer takes it;
3. SIGKILLs the scheduler while the task is deferred, and starts a new one;
4. stops PostgreSQL at once (``pg_ctl -m immediate``) while the task writes an item, and starts it
   again on the same port and data directory.

Then, all from outside: the task succeeded; every item's object is byte-identical to the media of
the sandbox's clip of its text; exactly one accepted create per text (429 busy refusals counted and
reported); no account ever had more jobs in flight than its limit (the sandbox's high-water mark);
the manifest lists every item as done. Only the operator's public interface is relied on (its
arguments, the objects and manifest it writes, the requests it sends), not how it schedules its
rounds, so the test holds whether the task resumes once per window or far less often.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg2
import pytest
from distributed.cluster import (
    FAST_FAILOVER,
    HEARTBEAT_TIMEOUT,
    Cluster,
    Database,
    Kill,
    SandboxClient,
    api_path,
    cluster_run,
    epoch,
    list_objects,
    object_versions,
    s3_client,
    trigger_started,
    worker_args,
)

from airflow_provider_pixverse.sandbox.forms import parse_fields

DAG_FILE = Path(__file__).resolve().parent / "dags" / "pixverse_distributed_corpus.py"


def _dag_module() -> ModuleType:
    """The DAG file as a module: its corpus, accounts and names are the test's too (written once, there)."""
    spec = importlib.util.spec_from_file_location("pixverse_distributed_corpus_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DAG = _dag_module()
DAG_ID, TASK_ID, BUCKET, PREFIX = DAG.DAG_ID, DAG.TASK_ID, DAG.BUCKET, DAG.PREFIX
ACCOUNTS: dict[str, int] = dict(DAG.ACCOUNTS)
ITEMS = int(os.environ.get("PIXVERSE_CORPUS_ITEMS", "300"))  # fewer only to try changes out quickly
assert ITEMS >= 20, "the kills are placed at fractions of the corpus: give it at least 20 items"
CORPUS: dict[str, str] = DAG.corpus(ITEMS)
POLL_INTERVAL = 1.0  # the operator's poll_interval
QUEUED_SECONDS, GENERATING_SECONDS = 0.5, 1.5  # the sandbox's clock: a clip is final 2 s after its create
SLOW_GENERATING_SECONDS = 25.0  # the clips of the window whose triggerer is killed (longer than a failover)
MIN_WAIT_LEFT = 15.0  # the triggerer is killed while its trigger waits this long at least for a slow clip
WORKER_HOLD_SECONDS = 30.0  # the download held until the test has killed its worker
POSTGRES_HOLD_SECONDS = 8.0  # the download held while PostgreSQL restarts
# Where in the corpus (accepted creates / ITEMS) each fault may come, at the earliest; each also waits
# for the one before it to be over (the work went on after it).
AT_WORKER, AT_TRIGGERER, AT_SCHEDULER, AT_POSTGRES = 0.15, 0.35, 0.55, 0.75
LOOK_EVERY = 0.25  # seconds between two looks of the monitoring loop
RUN_TIMEOUT = 600.0
SETTINGS = {
    **FAST_FAILOVER,
    # A new scheduler adopts the dead one's tasks once that one's heartbeat is this old (default 30 s),
    # looking this often (default 300 s).
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
}


def create_text(request: dict[str, Any]) -> str:
    """The text a logged create request asked for."""
    fields = parse_fields(request["body"].encode(), request["headers"].get("content-type"))
    return str(fields.get("text"))


def is_create(request: dict[str, Any]) -> bool:
    """Whether a logged request is a create."""
    return request["method"] == "POST" and api_path(request["raw_path"]).endswith("/speech/create")


def first_after(requests: list[dict[str, Any]], after: float, accepted_create: bool = False) -> float | None:
    """When the first request (or accepted create) of the task came after ``after``."""
    times = [
        r["at"]
        for r in requests
        if r["at"] > after and (not accepted_create or (is_create(r) and r["outcome"] == "accepted"))
    ]
    return min(times, default=None)


class CorpusRun:
    """The DAG run, watched from outside, and the four faults, stepped one after the other by one loop."""

    def __init__(self, cluster: Cluster, db: Database, sandbox: SandboxClient, run_id: str) -> None:
        self.cluster, self.db, self.sandbox, self.run_id = cluster, db, sandbox, run_id
        self.worker = Kill("worker")
        self.triggerer = Kill("triggerer")
        self.scheduler = Kill("scheduler")
        self.postgres = Kill("postgres")
        self.workers_started = 2
        self.ti: dict[str, Any] = {}
        self.accepted = 0
        self.triggers_seen: set[int] = set()  # one per deferral of the task

    @property
    def kills(self) -> list[Kill]:
        return [self.worker, self.triggerer, self.scheduler, self.postgres]

    # looking

    def look(self) -> None:
        """One look at the task instance (the database) and the creates (the sandbox)."""
        self.accepted = self.sandbox.create_outcomes()["accepted"]
        try:
            rows = self.db.rows(
                "SELECT ti.state, ti.try_number, ti.hostname, ti.trigger_id, t.triggerer_id, t.created_date, "
                "ti.start_date, ti.end_date FROM task_instance ti LEFT JOIN trigger t ON t.id = ti.trigger_id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
                DAG_ID,
                self.run_id,
                TASK_ID,
            )
        except psycopg2.Error:
            return  # the database is restarting: look again next time
        if not rows:
            return
        state, try_number, hostname, trigger_id, triggerer_id, trigger_created, start, end = rows[0]
        self.ti = {
            "state": state,
            "try": try_number,
            "host": hostname or "",
            "trigger_id": trigger_id,
            "triggerer_id": triggerer_id,
            "trigger_created": epoch(trigger_created),
            "start": epoch(start),
            "end": epoch(end),
        }
        if state == "deferred" and trigger_id is not None:
            self.triggers_seen.add(int(trigger_id))

    def fraction(self) -> float:
        return self.accepted / ITEMS

    def running_on(self) -> str | None:
        """The worker the task runs on now, if it runs."""
        return self.ti.get("host") if self.ti.get("state") == "running" and self.ti.get("host") else None

    def held_media(self, after: float) -> dict[str, Any] | None:
        """The download the media fault holds, once it was taken (the first media request since ``after``)."""
        if any(f["target"] == "media" and f["kind"] == "delay" for f in self.sandbox.pending_faults()):
            return None
        media = [r for r in self.sandbox.requests() if r["kind"] == "media" and r["at"] >= after]
        return min(media, key=lambda r: r["at"]) if media else None

    def ran_again(self, kill: Kill) -> bool:
        """The task ran again after the deferral a fault hit: it runs, or it is over, or deferred anew."""
        trigger = self.ti.get("trigger_id")
        return (
            bool(self.running_on())
            or self.ti.get("state") in ("success", "failed")
            or (trigger is not None and trigger != kill.notes["trigger"])
        )

    def went_on(self, kill: Kill) -> bool:
        """The corpus got on after a fault: a create was accepted since, or the task is over."""
        return self.accepted > kill.notes["accepted"] or self.ti.get("state") in ("success", "failed")

    # 1: the worker, while the task writes an item

    def step_worker(self) -> bool:
        kill = self.worker
        if kill.killed_at is None:
            if "held_since" not in kill.notes:
                if self.fraction() < AT_WORKER:
                    return False
                kill.notes["held_since"] = time.time()
                self.sandbox.add_fault("delay", target="media", path_contains="/media/", seconds=WORKER_HOLD_SECONDS)
                return False
            held = self.held_media(kill.notes["held_since"])
            host = self.running_on()
            if held is None or host is None:
                return False
            assert held["status"] is None, f"the held download was answered before the kill: {held['status']}"
            assert self.ti["try"] == 1, f"the task is in try {self.ti['try']} at the worker kill"
            kill.victim, kill.task = host, f"{TASK_ID} try {self.ti['try']}"
            kill.notes |= {"accepted": self.accepted, "held": api_path(held["raw_path"]), "held_at": held["at"]}
            self.cluster.retire(self.cluster.process(host))
            kill.killed_at = time.time()
            self.workers_started += 1
            name = f"worker-{self.workers_started}"
            self.cluster.start_airflow(name, worker_args(name))
            kill.notes["replacement"] = name
            return False
        if kill.detected_at is None and self.ti.get("try", 1) > 1:
            kill.detected_at = time.time()  # the killed try was failed and the retry scheduled
        if not kill.resumed_on and self.ti.get("try", 1) > 1 and self.running_on():
            kill.resumed_on = self.ti["host"]
            kill.notes["resumed_at"] = time.time()
        return bool(kill.resumed_on) and self.went_on(kill)

    # 2: the triggerer holding the task's trigger, while the clips it waits for generate

    def step_triggerer(self) -> bool:
        kill = self.triggerer
        if kill.killed_at is None:
            if "slow_since" not in kill.notes:
                if self.fraction() < AT_TRIGGERER:
                    return False
                kill.notes |= {"slow_since": time.time(), "accepted_before_slow": self.accepted}
                self.sandbox.set_clock(QUEUED_SECONDS, SLOW_GENERATING_SECONDS)
                return False
            if self.accepted > kill.notes.get("accepted_seen", kill.notes["accepted_before_slow"]):
                # A slow clip was created (by the task or, later, by its trigger) by now at the latest.
                kill.notes |= {"accepted_seen": self.accepted, "slow_created": time.time()}
            if "slow_created" not in kill.notes:
                return False
            # Mid-wait: the newest slow clip has at least MIN_WAIT_LEFT to go, longer than a failover takes.
            slow_final = kill.notes["slow_created"] + QUEUED_SECONDS + SLOW_GENERATING_SECONDS
            if time.time() > slow_final - MIN_WAIT_LEFT:
                return False  # too late in this wait: the next slow clip opens the next chance
            jobs = {job: name for name, job in self.db.running_jobs("TriggererJob").items()}
            job = self.ti.get("triggerer_id")
            created = self.ti.get("trigger_created")
            if self.ti.get("state") != "deferred" or job not in jobs or created is None:
                return False
            folder, trigger = f"task_id={TASK_ID}", self.ti["trigger_id"]
            started = trigger_started(self.cluster.home / "logs", folder, job, created - 1, trigger_id=trigger)
            if started is None:
                return False  # assigned, not running yet
            heirs = [name for other, name in jobs.items() if other != job]
            assert heirs, f"no other triggerer runs: {jobs}"
            kill.victim, kill.task = jobs[job], f"trigger {self.ti['trigger_id']}"
            kill.notes |= {"accepted": self.accepted, "dead_job": job, "trigger": self.ti["trigger_id"]}
            kill.notes["in_flight"] = self.accepted - kill.notes["accepted_before_slow"]  # slow clips made so far
            kill.notes["wait_left"] = slow_final - time.time()
            self.cluster.retire(self.cluster.process(kill.victim))
            kill.killed_at = time.time()
            self.sandbox.set_clock(QUEUED_SECONDS, GENERATING_SECONDS)  # the clips in flight stay slow
            return False
        if kill.detected_at is None:
            rows = self.db.rows("SELECT triggerer_id FROM trigger WHERE id = %s", kill.notes["trigger"])
            assert rows, f"trigger {kill.notes['trigger']} is gone before any triggerer was seen taking it over"
            owner = rows[0][0]
            if owner is None or owner == kill.notes["dead_job"]:
                return False  # still the dead one's, or let go of and not taken yet
            kill.detected_at = time.time()
            names = {job: name for name, job in self.db.running_jobs("TriggererJob").items()}
            kill.resumed_on = names.get(owner, f"triggerer job {owner}")
            kill.notes["heir_job"] = owner
        if "fired_at" not in kill.notes and self.ti.get("trigger_id") != kill.notes["trigger"]:
            kill.notes["fired_at"] = time.time()  # the trigger fired: the task left that deferral
        if "resumed_at" not in kill.notes and self.ran_again(kill):
            kill.notes["resumed_at"] = time.time()
        return "resumed_at" in kill.notes and self.went_on(kill)

    # 3: the scheduler, while the task is deferred

    def step_scheduler(self) -> bool:
        kill = self.scheduler
        if kill.killed_at is None:
            if self.fraction() < AT_SCHEDULER or self.ti.get("state") != "deferred":
                return False
            kill.victim = "scheduler"
            kill.task = f"{TASK_ID} deferred (trigger {self.ti['trigger_id']})"
            kill.notes |= {"accepted": self.accepted, "trigger": self.ti["trigger_id"]}
            self.cluster.retire(self.cluster.process("scheduler"))
            kill.killed_at = time.time()
            self.cluster.start_airflow("scheduler-2", ["scheduler", "--skip-serve-logs"])
            kill.resumed_on = "scheduler-2"
            return False
        if kill.detected_at is None and "scheduler-2" in self.db.running_jobs("SchedulerJob"):
            kill.detected_at = time.time()  # the new scheduler's job runs
        if "resumed_at" not in kill.notes and self.ran_again(kill):
            kill.notes["resumed_at"] = time.time()
        return kill.detected_at is not None and "resumed_at" in kill.notes and self.went_on(kill)

    # 4: PostgreSQL, while the task writes an item

    def step_postgres(self) -> bool:
        kill = self.postgres
        if kill.killed_at is None:
            if "held_since" not in kill.notes:
                if self.fraction() < AT_POSTGRES:
                    return False
                kill.notes["held_since"] = time.time()
                self.sandbox.add_fault("delay", target="media", path_contains="/media/", seconds=POSTGRES_HOLD_SECONDS)
                return False
            held = self.held_media(kill.notes["held_since"])
            host = self.running_on()
            if held is None or host is None:
                return False
            kill.victim, kill.task = "postgres", f"try {self.ti['try']} on {host} downloaded"
            kill.notes |= {"accepted": self.accepted, "held": api_path(held["raw_path"]), "try": self.ti["try"]}
            stopped, accepting = self.cluster.restart_postgres()
            kill.killed_at, kill.detected_at = stopped, accepting
            kill.resumed_on = self.cluster.postmaster.name if self.cluster.postmaster else ""
            return False
        return self.went_on(kill)

    def step(self) -> None:
        """Advance the first fault not over yet."""
        for kill, step in (
            (self.worker, self.step_worker),
            (self.triggerer, self.step_triggerer),
            (self.scheduler, self.step_scheduler),
            (self.postgres, self.step_postgres),
        ):
            if kill.notes.get("over"):
                continue
            if step():
                kill.notes["over"] = time.time()
            return


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_corpus_survives_kills_and_a_database_restart(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with cluster_run("pixverse-corpus-", DAG_FILE, capsys) as cluster:
        database = cluster.start_postgres()
        broker = cluster.start_redis()
        # Every account at 3 jobs at once, the second at 5: the operator is given the same limits.
        limits = sorted(set(ACCOUNTS.values()))
        sandbox = cluster.start_sandbox(QUEUED_SECONDS, GENERATING_SECONDS, max_jobs=limits[0])
        for email, limit in ACCOUNTS.items():
            sandbox.set_max_jobs(limit, email=email)
        endpoint = cluster.start_moto()
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        # With versions kept, "written once" is countable: one version per object.
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        cluster.configure_airflow(
            database,
            broker,
            {
                **SETTINGS,
                **cluster.connection_json(endpoint),
                "PIXVERSE_CORPUS_ITEMS": str(ITEMS),
                "PIXVERSE_CORPUS_BUCKET": BUCKET,
                "PIXVERSE_CORPUS_POLL_INTERVAL": str(POLL_INTERVAL),
            },
        )
        db = cluster.migrate()
        cluster.start_components(DAG_ID)
        set_up = time.monotonic() - started

        run = CorpusRun(cluster, db, sandbox, cluster.start_run(DAG_ID))
        run_started = time.time()
        deadline = time.monotonic() + RUN_TIMEOUT
        while True:
            dead = [p.name for p in cluster.live if not p.alive()]
            assert not dead, f"{dead} exited during the run:\n{cluster.tails()}"
            run.look()
            if run.ti.get("state") in ("success", "failed"):
                break
            run.step()
            pending = next((kill for kill in run.kills if not kill.notes.get("over")), None)
            assert time.monotonic() < deadline, (
                f"the task is still {run.ti.get('state')} after {RUN_TIMEOUT:.0f} s, {run.accepted} of {ITEMS} "
                f"creates accepted; the fault under way: {pending}\n{cluster.tails()}"
            )
            time.sleep(LOOK_EVERY)
        ended = time.time()
        run.look()
        for _ in run.kills:  # a fault whose aftermath ended with the task: settled by one more step each
            run.step()

        # The task succeeded, after every fault, and its retry ran elsewhere than the killed worker.
        assert run.ti["state"] == "success", f"the task ended {run.ti['state']}\n{cluster.tails()}"
        for kill in run.kills:
            assert kill.killed_at is not None, f"the {kill.name} fault never happened: {kill}"
            assert kill.notes.get("over"), f"the work did not go on after the {kill.name} fault: {kill}"
        tries = {
            int(r[0]): (str(r[1] or ""), str(r[2]))
            for r in db.rows(
                "SELECT try_number, hostname, state FROM task_instance_history "
                "WHERE dag_id = %s AND run_id = %s AND task_id = %s",
                DAG_ID,
                run.run_id,
                TASK_ID,
            )
        }
        tries[int(run.ti["try"])] = (run.ti["host"], run.ti["state"])
        assert tries[1][0] == run.worker.victim, f"try 1 ran on {tries[1][0]}, not the killed {run.worker.victim}"
        assert run.worker.resumed_on and run.worker.resumed_on != run.worker.victim, run.worker
        failed_tries = {n: v for n, v in tries.items() if v[1] != "success"}
        # Strict: the killed worker's try is the only one that may fail; any other failure is the operator's
        # (or Airflow's) to explain: the report names it.
        assert sorted(failed_tries) == [1], f"tries that did not succeed: {failed_tries} (all tries: {tries})"

        requests_seen = sandbox.requests()
        creates = [r for r in requests_seen if is_create(r)]
        outcomes = collections.Counter(r["outcome"] for r in creates)
        counted = {outcome: n for outcome, n in sandbox.create_outcomes().items() if n}
        assert dict(outcomes) == counted, f"the request log's creates {dict(outcomes)}, the sandbox's count {counted}"
        accepted = collections.Counter(create_text(r) for r in creates if r["outcome"] == "accepted")
        busy = [r for r in creates if r["outcome"] == "busy"]
        refused = [r for r in creates if r["outcome"] == "refused"]
        # Paid once: exactly one accepted create per distinct text, nothing else accepted.
        twice = {text: n for text, n in accepted.items() if n != 1}
        assert not twice, f"texts created more than once: {twice}"
        assert set(accepted) == set(CORPUS.values()), (
            f"{len(set(CORPUS.values()) - set(accepted))} texts never created, "
            f"{len(set(accepted) - set(CORPUS.values()))} unknown texts created"
        )
        assert not refused, f"creates refused (neither accepted nor busy): {[r['status'] for r in refused]}"

        # Within the limits: the sandbox's high-water mark of jobs in flight, per account.
        high_water = {email: sandbox.jobs_high_water(email) for email in ACCOUNTS}
        over = {email: (n, ACCOUNTS[email]) for email, n in high_water.items() if n > ACCOUNTS[email]}
        assert not over, f"accounts over their job limit (high water, limit): {over}"

        # The clips: one per text, over both accounts, every one COMPLETED; text -> clip.
        clip_of: dict[str, dict[str, Any]] = {}
        per_account: dict[str, int] = {}
        for email in ACCOUNTS:
            clips = sandbox.listing(email)
            per_account[email] = len(clips)
            for clip in clips:
                assert clip["prompt"] not in clip_of, f"two clips of {clip['prompt']!r}"
                clip_of[clip["prompt"]] = clip
        assert sorted(clip_of) == sorted(CORPUS.values()), f"{len(clip_of)} clips for {ITEMS} texts"
        not_done = {c["audio_id"]: c["audio_status_name"] for c in clip_of.values() if not c.get("url")}
        assert not not_done, f"clips not COMPLETED: {not_done}"
        assert all(per_account.values()), f"an account got no work: {per_account}"

        # The bucket: an MP3 per item, each the sandbox's bytes of its text's clip, written once; the manifest.
        keys = sorted(o["Key"] for o in list_objects(s3, BUCKET))
        manifest_key = f"{PREFIX}manifest.jsonl"
        expected = sorted([f"{PREFIX}{name}.mp3" for name in CORPUS] + [manifest_key])
        assert keys == expected, (
            f"the bucket holds {len(keys)} objects, expected {len(expected)}; "
            f"unexpected {sorted(set(keys) - set(expected))[:10]}, missing {sorted(set(expected) - set(keys))[:10]}"
        )
        media_bytes = 0
        for name, text in CORPUS.items():
            body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{name}.mp3")["Body"].read()
            assert body == sandbox.media(clip_of[text]["url"]), f"{name}.mp3 differs from its clip's media"
            media_bytes += len(body)
        versions = object_versions(s3, BUCKET)
        written_twice = {k: n for k, n in versions.items() if k != manifest_key and n != 1}
        assert not written_twice, f"objects written more than once: {written_twice}"
        manifest = [
            json.loads(line)
            for line in s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read().decode().splitlines()
            if line.strip()
        ]
        by_name = {entry["name"]: entry for entry in manifest}
        assert len(manifest) == ITEMS and sorted(by_name) == sorted(CORPUS), f"manifest of {len(manifest)} lines"
        not_listed_done = {n: e["status"] for n, e in by_name.items() if e["status"] != "done"}
        assert not not_listed_done, f"items the manifest does not list as done: {not_listed_done}"
        wrong_clip = [n for n, e in by_name.items() if e["audio_ids"] != [clip_of[CORPUS[n]]["audio_id"]]]
        assert not wrong_clip, f"items whose manifest names another clip: {wrong_clip[:10]}"

        # The triggerer kill: the trigger the dead triggerer held was taken by the other one, which fired it.
        t = run.triggerer
        assert t.resumed_on and t.resumed_on != t.victim, f"trigger {t.notes['trigger']} was not taken over: {t}"

        # The report. Deferrals and resumes as the task's own logs (one per try, appended) tell them.
        task_logs = sorted((cluster.home / "logs").glob(f"dag_id={DAG_ID}/run_id=*/task_id={TASK_ID}/attempt=*.log"))
        logged = [log.read_text(errors="replace") for log in task_logs if ".trigger." not in log.name]
        deferred_logged = sum(text.count("Pausing task as DEFERRED") for text in logged)
        executions = sum(text.count('"::group::Pre Execute"') for text in logged)
        db_errors = {
            process.name: process.log.read_text(errors="replace").count("OperationalError")
            for process in cluster.airflow
        }
        makespan = (run.ti["end"] or ended) - run_started
        total = time.monotonic() - started

        def after(kill: Kill, at: float | None) -> str:
            return "never" if at is None or kill.killed_at is None else f"{at - kill.killed_at:.1f} s"

        tries_text = "; ".join(f"{n}: {state}, last on {host}" for n, (host, state) in sorted(tries.items()))
        w, t, s, p = run.kills
        assert w.killed_at and t.killed_at and s.killed_at and p.killed_at
        lines = [
            f"distributed corpus: {ITEMS} texts in one {TASK_ID} task over {len(ACCOUNTS)} accounts (limits "
            f"{', '.join(f'{e} {n}' for e, n in ACCOUNTS.items())}); wall {total:.0f} s (set-up {set_up:.0f} s, "
            f"makespan {makespan:.0f} s from the run's start to the task's end); clips final "
            f"{QUEUED_SECONDS + GENERATING_SECONDS:g} s after their create",
            f"creates: {outcomes.get('accepted', 0)} accepted (one per text), {len(busy)} busy (429), "
            f"{len(refused)} refused; clips per account {per_account}; jobs high water {high_water}",
            f"task: {len(tries)} tries ({tries_text}); "
            f"deferred {deferred_logged} times and ran {executions} times ({executions - len(tries)} resumes) by "
            f"its logs; {len(run.triggers_seen)} deferrals seen in the database",
            f"1 worker: {w.victim} SIGKILLed while the task (try 1) downloaded {w.notes['held']} "
            f"({w.notes['accepted']} creates accepted); try 1 failed after {after(w, w.detected_at)} "
            f"(heartbeat timeout {HEARTBEAT_TIMEOUT} s); try 2 ran on {w.resumed_on} after "
            f"{after(w, w.notes.get('resumed_at'))}; its first request after "
            f"{after(w, first_after(requests_seen, w.killed_at))}, next accepted create after "
            f"{after(w, first_after(requests_seen, w.killed_at, accepted_create=True))}",
            f"2 triggerer: {t.victim} SIGKILLed holding trigger {t.notes['trigger']} (the task deferred, "
            f"{t.notes['in_flight']} clips of {QUEUED_SECONDS + SLOW_GENERATING_SECONDS:g} s made, the newest "
            f"{t.notes['wait_left']:.1f} s from final); "
            f"the trigger moved to {t.resumed_on} after {after(t, t.detected_at)} and fired after "
            f"{after(t, t.notes.get('fired_at'))}; the task ran again after {after(t, t.notes.get('resumed_at'))}; "
            f"next accepted create after {after(t, first_after(requests_seen, t.killed_at, accepted_create=True))}",
            f"3 scheduler: SIGKILLed while the task was deferred ({s.notes['accepted']} creates accepted); "
            f"scheduler-2 running after {after(s, s.detected_at)}; the task ran again after "
            f"{after(s, s.notes.get('resumed_at'))}; next accepted create after "
            f"{after(s, first_after(requests_seen, s.killed_at, accepted_create=True))}",
            f"4 postgres: stopped (immediate) while {p.task} {p.notes['held']} ({p.notes['accepted']} creates "
            f"accepted, the download held {POSTGRES_HOLD_SECONDS:g} s); accepting again after "
            f"{after(p, p.detected_at)}; next accepted create after "
            f"{after(p, first_after(requests_seen, p.killed_at, accepted_create=True))}; OperationalErrors logged "
            f"by {({name: n for name, n in db_errors.items() if n}) or 'no component'}",
            f"bucket: {ITEMS} MP3s ({media_bytes} bytes), each its clip's bytes, written once; manifest "
            f"{len(manifest)} lines, all done; media GETs {sum(1 for r in requests_seen if r['kind'] == 'media')}, "
            f"API calls {sum(1 for r in requests_seen if r['kind'] == 'api')}",
        ]
        with capsys.disabled():
            print("\n" + "\n".join(lines), flush=True)
        (cluster.root / "summary.txt").write_text("\n".join(lines) + "\n")
