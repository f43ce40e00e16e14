"""On a distributed Airflow (PostgreSQL, Redis, CeleryExecutor), clips survive killed workers and triggerers.

One DAG run creates ``CLIPS`` clips (mapped, deferrable), waits for them in two triggerers and
downloads them into S3 (moto) from two Celery workers. While it runs, the test SIGKILLs:

A. a triggerer that holds waiting clips: its triggers move to the other triggerer;
B1. a worker while its create request is at the API and the answer has not come back (the sandbox
   holds the first create): the retry finds the job by the intent the task saved and resumes it;
B2. a worker while a create task is between its create (answered, audio_id saved in the task state
   store) and its end: the retry resumes that clip;
C. a worker while it downloads: the retry runs on the other worker and the object lands once.

So the sandbox sees exactly ``CLIPS`` creates, one per text.

Everything is checked from outside: the metadata database, the sandbox's request log and the bucket.
"""

from __future__ import annotations

import collections
import math
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from distributed.cluster import (
    FAST_FAILOVER,
    WORKER_CONCURRENCY,
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

from airflow_provider_pixverse.operators.pixverse import AUDIO_ID_STATE_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

DAG_FILE = Path(__file__).resolve().parent / "dags" / "pixverse_distributed.py"
DAG_ID = "pixverse_distributed"
CLIPS = int(os.environ.get("PIXVERSE_DISTRIBUTED_CLIPS", "100"))  # fewer only to try changes out quickly
BUCKET = "pixverse-distributed"
LIST_PAGE_SIZE = 50  # the connection's list_page_size: its default
PREFIX = "speech/"
EMAIL = "distributed@example.com"  # the connection's extra "email": the account every create uses
POLL_INTERVAL = 5.0  # the operators' poll_interval
QUEUED_SECONDS, GENERATING_SECONDS = 5.0, 25.0  # the sandbox's clock: a clip is final 30 s after its create
STALL_SECONDS = 60.0  # the delay faults that hold a request open until the test kills its worker
# B1: the first create is held this long before the sandbox makes the job (the worker is killed
# meanwhile); shorter than the heartbeat timeout, so the job exists when the retry looks for it.
CREATE_STALL_SECONDS = 8.0
CREATE_PATH = "/speech/create"
MIN_TRIGGERS_AT_KILL = 8  # the busier triggerer is killed once it runs at least this many triggers
RUN_TIMEOUT = 720.0


@dataclass(frozen=True)
class Numbering:
    """How the sandbox will number the DAG's clips: read from a clip seeded before the run.

    Like the real API, the sandbox ends an audio_id with a number counting up, and numbers media files
    by an asset id counting up; the ``k``-th create of the run gets ``first + k`` of each.
    """

    probe_id: str
    first: int
    first_asset: int

    @classmethod
    def probe(cls, sandbox: SandboxClient) -> Numbering:
        clip = sandbox.control(
            "POST", "/clips", json={"text": "Numbering probe.", "email": EMAIL, "status": "COMPLETED"}
        )
        match = re.search(r"(\d+)$", clip["audio_id"])
        assert match, f"the sandbox's audio_id {clip['audio_id']!r} does not end with a number"
        return cls(clip["audio_id"], int(match.group(1)) + 1, int(clip["asset_id"]) + 1)

    def audio_id(self, k: int) -> str:
        """The audio_id of the ``k``-th clip the run creates."""
        return re.sub(r"\d+$", str(self.first + k), self.probe_id)

    def media_mark(self, k: int) -> str:
        """What the media path of the ``k``-th clip contains."""
        return f"/{self.first_asset + k}.mp3"


def text_index(body: str) -> int:
    """The map index named by the text in a create request's body."""
    match = re.search(r"Clip (\d+) of the distributed run", body)
    assert match, f"not a create of the test DAG: {body[:200]!r}"
    return int(match.group(1))


def map_index_of(prompt: str) -> int | None:
    """The map index a clip's text names (see clip_text in the DAG); None for a text not of the DAG."""
    match = re.match(r"Clip (\d+) ", prompt)
    return int(match.group(1)) if match else None


class Run:
    """The DAG run, the components and the three kill scenarios, stepped by one monitoring loop."""

    def __init__(
        self, cluster: Cluster, db: Database, sandbox: SandboxClient, s3: Any, numbering: Numbering, run_id: str
    ) -> None:
        self.cluster, self.db, self.sandbox, self.s3, self.run_id = cluster, db, sandbox, s3, run_id
        self.numbering = numbering
        self.triggerer = Kill("triggerer")
        self.sent = Kill("create sent")
        self.create = Kill("create answered")
        self.download = Kill("download")
        self.workers_started = 2
        # B holds the check that follows the last create (no create can come after it); C the media of
        # the clip created halfway.
        self.create_mark = numbering.audio_id(CLIPS - 1)
        self.download_mark = numbering.media_mark(CLIPS // 2)

    # what the database says

    def tis(self) -> dict[tuple[str, int], tuple[Any, ...]]:
        """(task_id, map_index) -> (state, try_number, hostname, start_date, end_date)."""
        rows = self.db.rows(
            "SELECT task_id, map_index, state, try_number, hostname, start_date, end_date FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s",
            DAG_ID,
            self.run_id,
        )
        return {(r[0], r[1]): r[2:] for r in rows}

    def ti(self, task_id: str, map_index: int) -> tuple[Any, ...]:
        """One task instance: (state, try_number, hostname, start_date, end_date)."""
        return self.tis()[(task_id, map_index)]

    def run_state(self) -> str:
        """The DAG run's state."""
        rows = self.db.rows("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", DAG_ID, self.run_id)
        return str(rows[0][0])

    def triggerer_jobs(self) -> dict[str, int]:
        """Running triggerer name -> its job id."""
        return self.db.running_jobs("TriggererJob")

    def triggers_of(self, job_id: int) -> dict[int, int]:
        """Trigger id -> the create map index it waits for, for the triggers a triggerer job runs."""
        rows = self.db.rows(
            "SELECT t.id, ti.map_index FROM trigger t JOIN task_instance ti ON ti.trigger_id = t.id "
            "WHERE t.triggerer_id = %s AND ti.dag_id = %s AND ti.run_id = %s",
            job_id,
            DAG_ID,
            self.run_id,
        )
        return {int(r[0]): int(r[1]) for r in rows}

    def unsaved_running_creates(self, exclude: int) -> list[int]:
        """Running create tasks with no audio_id in the task state store yet (a kill now could cost a create)."""
        rows = self.db.rows(
            "SELECT ti.map_index FROM task_instance ti WHERE ti.dag_id = %s AND ti.run_id = %s "
            "AND ti.task_id = 'create' AND ti.state = 'running' AND ti.map_index <> %s AND NOT EXISTS ("
            "SELECT 1 FROM task_state_store s WHERE s.dag_id = ti.dag_id AND s.run_id = ti.run_id "
            "AND s.task_id = ti.task_id AND s.map_index = ti.map_index AND s.key = %s)",
            DAG_ID,
            self.run_id,
            exclude,
            AUDIO_ID_STATE_KEY,
        )
        return [int(r[0]) for r in rows]

    def worker(self, name: str) -> Any:
        """The worker process called ``name``."""
        return self.cluster.process(name)

    def _fault_taken(self, mark: str) -> bool:
        return not any(f.get("path_contains") == mark for f in self.sandbox.pending_faults())

    def _map_index_of_clip(self, k: int) -> int:
        clip = self.sandbox.control("GET", f"/clips/{self.numbering.audio_id(k)}")
        map_index = map_index_of(clip["prompt"])
        assert map_index is not None, clip
        return map_index

    # A: a triggerer with waiting clips

    def step_triggerer(self) -> None:
        kill = self.triggerer
        if kill.killed_at is None:
            jobs = self.triggerer_jobs()
            if set(jobs) != {"triggerer-1", "triggerer-2"}:
                return
            # The busier of the two (how the triggerers share the triggers is up to their race).
            held_by = {name: self.triggers_of(job) for name, job in jobs.items()}
            victim, heir = sorted(held_by, key=lambda name: len(held_by[name]), reverse=True)
            held = held_by[victim]
            kill.notes["most_held"] = max(kill.notes.get("most_held", 0), len(held))
            if len(held) < min(MIN_TRIGGERS_AT_KILL, CLIPS // 4):
                return
            kill.victim, kill.resumed_on, kill.task = victim, heir, f"{len(held)} waiting creates"
            kill.notes |= {"held": held, "dead_job": jobs[victim], "heir_job": jobs[heir]}
            self.cluster.retire(self.worker(victim))
            kill.killed_at = time.time()
            beat = self.db.rows("SELECT latest_heartbeat FROM job WHERE id = %s", jobs[victim])[0][0]
            kill.notes["last_heartbeat"] = epoch(beat)
            return
        if kill.detected_at is None:
            held = kill.notes["held"]
            rows = self.db.rows("SELECT id, triggerer_id FROM trigger WHERE id = ANY(%s)", list(held))
            owners = {int(r[0]): r[1] for r in rows}
            if any(owner == kill.notes["dead_job"] for owner in owners.values()):
                return
            moved = [trigger_id for trigger_id, owner in owners.items() if owner == kill.notes["heir_job"]]
            kill.detected_at = time.time()
            kill.notes["moved"] = {trigger_id: held[trigger_id] for trigger_id in moved}

    def replace_worker(self) -> None:
        """Start a new worker, so that two run again."""
        self.workers_started += 1
        name = f"worker-{self.workers_started}"
        self.cluster.start_airflow(name, worker_args(name))

    # B1: a worker whose create is at the API, its answer not back

    def step_sent(self) -> None:
        kill = self.sent
        if kill.killed_at is not None:
            self.follow_retry(kill, "create")
            return
        if not self._fault_taken(CREATE_PATH):
            return
        creates = [r for r in self.sandbox.requests() if r["method"] == "POST" and CREATE_PATH in r["raw_path"]]
        held = min(creates, key=lambda r: r["at"])  # the fault holds the first create to arrive
        assert held["status"] is None, f"the held create was answered before the kill: {held['status']}"
        map_index = text_index(held["body"])
        kill.task, kill.notes["map_index"], kill.notes["sent_at"] = f"create[{map_index}]", map_index, held["at"]
        state, try_number, hostname, *_ = self.ti("create", map_index)
        assert (state, try_number) == ("running", 1), f"{kill.task} is {state} (try {try_number}) at the kill"
        kill.victim = str(hostname)
        self.cluster.retire(self.worker(kill.victim))
        kill.killed_at = time.time()
        assert kill.killed_at < held["at"] + CREATE_STALL_SECONDS, "the kill came after the held create was answered"
        self.replace_worker()

    # B2: a worker between a create and the end of that task

    def step_create(self) -> None:
        kill = self.create
        if kill.killed_at is None:
            if "map_index" not in kill.notes:
                if not self._fault_taken(self.create_mark):
                    return
                # The last create was answered and its task is in the check that follows, held by the fault.
                map_index = self._map_index_of_clip(CLIPS - 1)
                kill.notes["map_index"] = map_index
                kill.task = f"create[{map_index}]"
            map_index = kill.notes["map_index"]
            state, try_number, hostname, *_ = self.ti("create", map_index)
            assert (state, try_number) == ("running", 1), f"{kill.task} is {state} (try {try_number}) at the kill"
            # Every other create this worker runs must have saved its audio_id first: all creates were
            # answered (this one was the last), so killing then costs no create.
            if self.unsaved_running_creates(exclude=map_index):
                return
            kill.victim = str(hostname)
            self.cluster.retire(self.worker(kill.victim))
            kill.killed_at = time.time()
            # Capacity back to two workers; the retry goes to whichever has a free slot.
            self.replace_worker()
            return
        self.follow_retry(kill, "create")

    # C: a worker in the middle of a download

    def step_download(self) -> None:
        kill = self.download
        if kill.killed_at is None:
            if "map_index" not in kill.notes:
                if not self._fault_taken(self.download_mark):
                    return
                map_index = self._map_index_of_clip(CLIPS // 2)
                kill.notes["map_index"] = map_index
                kill.task = f"download[{map_index}]"
                # Hold every other media request, so that no download of the victim is between its first
                # byte written and its object published when the SIGKILL lands (see docs/deploying.md).
                self.sandbox.add_fault("delay", target="media", count=-1, seconds=10, path_contains="/media/")
            map_index = kill.notes["map_index"]
            state, try_number, hostname, *_ = self.ti("download", map_index)
            assert (state, try_number) == ("running", 1), f"{kill.task} is {state} (try {try_number}) at the kill"
            if not self._downloads_settled():
                return
            kill.victim = str(hostname)
            self.cluster.retire(self.worker(kill.victim))
            kill.killed_at = time.time()
            self.sandbox.control("DELETE", "/faults")
            return
        self.follow_retry(kill, "download")

    def _downloads_settled(self) -> bool:
        """Every answered media request has its object published, and no temporary object is in the bucket."""
        name_of = {urlsplit(c["url"]).path: c["name"] for c in self.sandbox.listing() if c.get("url")}
        answered = {
            api_path(r["raw_path"]) for r in self.sandbox.requests() if r["kind"] == "media" and r["status"] is not None
        }
        keys = {o["Key"] for o in list_objects(self.s3, BUCKET)}
        if any(".part" in key for key in keys):
            return False
        return all(f"{PREFIX}{name_of[path]}" in keys for path in answered if path in name_of)

    def follow_retry(self, kill: Kill, task_id: str) -> None:
        """Note when the killed try was failed, and which worker runs the next one."""
        state, try_number, hostname, *_ = self.ti(task_id, kill.notes["map_index"])
        if kill.detected_at is None and (state != "running" or try_number > 1):
            kill.detected_at = time.time()
        if not kill.resumed_on and try_number > 1 and state in ("running", "deferred", "success") and hostname:
            kill.resumed_on = str(hostname)

    @property
    def kills(self) -> list[Kill]:
        return [self.triggerer, self.sent, self.create, self.download]


@pytest.mark.distributed
@pytest.mark.timeout(900)
def test_clips_survive_killed_workers_and_triggerer(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    with cluster_run("pixverse-distributed-", DAG_FILE, capsys) as cluster:
        database = cluster.start_postgres()
        broker = cluster.start_redis()
        sandbox = cluster.start_sandbox(QUEUED_SECONDS, GENERATING_SECONDS)
        # B: the check right after the last create; C: the media of one clip. Each request is held open
        # until the test has killed the worker that sent it.
        numbering = Numbering.probe(sandbox)
        sandbox.add_fault("delay", path_contains=CREATE_PATH, seconds=CREATE_STALL_SECONDS)
        sandbox.add_fault("delay", path_contains=numbering.audio_id(CLIPS - 1), seconds=STALL_SECONDS)
        sandbox.add_fault(
            "delay", target="media", path_contains=numbering.media_mark(CLIPS // 2), seconds=STALL_SECONDS
        )
        endpoint = cluster.start_moto()
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        # With versions kept, "landed once" is countable: one version per object.
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

        cluster.configure_airflow(
            database,
            broker,
            {
                **FAST_FAILOVER,
                **cluster.connection_json(endpoint),
                "PIXVERSE_DISTRIBUTED_CLIPS": str(CLIPS),
                "PIXVERSE_DISTRIBUTED_BUCKET": BUCKET,
                "PIXVERSE_DISTRIBUTED_POLL_INTERVAL": str(POLL_INTERVAL),
            },
        )
        db = cluster.migrate()
        cluster.start_components(DAG_ID)
        set_up = time.monotonic() - started

        run = Run(cluster, db, sandbox, s3, numbering, cluster.start_run(DAG_ID))
        run_started = time.monotonic()

        deadline = run_started + RUN_TIMEOUT
        state = "queued"
        while True:
            dead = [p.name for p in cluster.live if not p.alive()]
            assert not dead, f"{dead} exited during the run:\n{cluster.tails()}"
            run.step_triggerer()
            run.step_sent()
            run.step_create()
            run.step_download()
            state = run.run_state()
            if state in ("success", "failed"):
                break
            late = time.monotonic() > deadline
            assert not late, f"the run is still {state} after {RUN_TIMEOUT:.0f} s:\n{cluster.tails()}"
            time.sleep(0.5)
        ran = time.monotonic() - run_started
        # A retry may have ended between two looks: one more settles who took it.
        for kill, task_id in ((run.sent, "create"), (run.create, "create"), (run.download, "download")):
            if kill.killed_at is not None:
                run.follow_retry(kill, task_id)

        # Every task instance succeeded.
        tis = run.tis()
        not_ok = {f"{t}[{i}]": v[0] for (t, i), v in tis.items() if v[0] != "success"}
        assert state == "success" and not not_ok, f"run {state}; not successful: {not_ok}\n{cluster.tails()}"
        assert sorted(tis) == sorted((t, i) for t in ("create", "download") for i in range(CLIPS)), sorted(tis)
        most_held = run.triggerer.notes.get("most_held", 0)
        assert run.triggerer.killed_at is not None, f"no triggerer ever ran enough triggers to kill (most: {most_held})"
        for kill in run.kills:
            assert kill.killed_at is not None, f"the {kill.name} kill never happened"
            assert kill.detected_at is not None, f"nothing followed the {kill.name} kill"
        history = {
            (r[0], r[1], r[2]): r[3:]
            for r in db.rows(
                "SELECT task_id, map_index, try_number, hostname, state FROM task_instance_history "
                "WHERE dag_id = %s AND run_id = %s",
                DAG_ID,
                run.run_id,
            )
        }

        requests_seen = sandbox.requests()
        clips = {c["audio_id"]: c for c in sandbox.listing() if map_index_of(c["prompt"]) is not None}
        by_index = {map_index_of(c["prompt"]): c for c in clips.values()}

        # Exactly one create per clip: CLIPS creates in all, one per text.
        creates = [r for r in requests_seen if r["method"] == "POST" and api_path(r["raw_path"]).endswith("/create")]
        assert len(creates) == CLIPS, f"{len(creates)} creates for {CLIPS} clips"
        per_text = collections.Counter(text_index(r["body"]) for r in creates)
        assert per_text == collections.Counter(range(CLIPS)), {i: n for i, n in per_text.items() if n != 1}
        assert len(clips) == CLIPS and sorted(by_index) == list(range(CLIPS)), sorted(by_index)

        # A: the dead triggerer's waits moved: each restarted on the heir (its trigger log says so) and completed.
        moved: dict[int, int] = run.triggerer.notes["moved"]
        assert moved, f"none of {run.triggerer.victim}'s triggers was taken over by {run.triggerer.resumed_on}"
        killed_at = run.triggerer.killed_at
        assert killed_at is not None
        restarts = []
        for map_index in moved.values():
            folder = f"task_id=create/map_index={map_index}"
            restarted = trigger_started(cluster.home / "logs", folder, run.triggerer.notes["heir_job"], killed_at)
            assert restarted, f"create[{map_index}]'s trigger never started on {run.triggerer.resumed_on}"
            restarts.append(restarted - killed_at)

        def retried_elsewhere(kill: Kill, task_id: str, resumed: Callable[[dict[str, Any]], bool]) -> tuple[int, float]:
            """The try that succeeded and how long after the kill its first request matching ``resumed`` came."""
            map_index = kill.notes["map_index"]
            _, tries, host, *_ = tis[(task_id, map_index)]
            assert tries >= 2, f"{kill.task} succeeded in try {tries}: the kill did not hit it"
            assert history[(task_id, map_index, 1)][0] == kill.victim, history[(task_id, map_index, 1)]
            assert host != kill.victim, f"{kill.task} retried on the killed {host}"
            assert kill.killed_at is not None
            first = min((r["at"] for r in requests_seen if r["at"] > kill.killed_at and resumed(r)), default=None)
            assert first is not None, f"{kill.task}'s retry sent nothing about its clip"
            return tries, first - kill.killed_at

        def gets_clip_of(map_index: int) -> Callable[[dict[str, Any]], bool]:
            path = f"/v2/pixverse/speech/{by_index[map_index]['audio_id']}"
            return lambda r: r["method"] == "GET" and api_path(r["raw_path"]) == path

        # B1: the create whose answer never came back was found again, not sent again.
        tries_s, resumed_s = retried_elsewhere(run.sent, "create", gets_clip_of(run.sent.notes["map_index"]))
        # B2: the create killed after its answer resumed the clip the state store named.
        assert by_index[run.create.notes["map_index"]]["audio_id"] == numbering.audio_id(CLIPS - 1)
        tries_b, resumed_b = retried_elsewhere(run.create, "create", gets_clip_of(run.create.notes["map_index"]))
        # C: the killed download ran again on another worker (the object landing once is checked below).
        tries_c, resumed_c = retried_elsewhere(
            run.download, "download", lambda r: r["kind"] == "media" and run.download_mark in r["raw_path"]
        )

        # The bucket: CLIPS objects, each the sandbox's bytes, each written once, nothing temporary left.
        objects = list_objects(s3, BUCKET)
        keys = sorted(o["Key"] for o in objects)
        assert not [k for k in keys if ".part" in k], f"temporary objects left: {keys}"
        expected = {f"{PREFIX}{c['name']}": c for c in clips.values()}
        assert keys == sorted(expected), f"bucket holds {len(keys)} objects, expected {len(expected)}"
        for key, clip in expected.items():
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert body == sandbox.media(clip["url"]), f"{key} differs from the sandbox's media"
        versions = object_versions(s3, BUCKET)
        written_twice = {k: n for k, n in versions.items() if k in expected and n != 1}
        assert not written_twice, f"objects written more than once: {written_twice}"

        # Requests per clip, within the bound docs/deploying.md gives.
        polls_bound = math.ceil((QUEUED_SECONDS + GENERATING_SECONDS) / (0.9 * POLL_INTERVAL)) + 2
        gets: dict[int, int] = {}
        over = {}
        for map_index, clip in by_index.items():
            clip_path = f"/v2/pixverse/speech/{clip['audio_id']}"
            gets[map_index] = sum(
                1 for r in requests_seen if r["method"] == "GET" and api_path(r["raw_path"]) == clip_path
            )
            bound = 2 * tis[("create", map_index)][1] + tis[("download", map_index)][1] + polls_bound
            if gets[map_index] > bound:
                over[map_index] = (gets[map_index], bound)
        assert not over, f"clips over the request bound (GETs, bound): {over}"
        # GETs beyond the operators' own (2 per create try, 1 per download try): a trigger's look at a clip
        # the shared listing did not show. Polling per clip would make about one per interval per clip.
        own_gets = sum(max(0, n - 2 * tis[("create", i)][1] - tis[("download", i)][1]) for i, n in gets.items())
        # Polling each clip would make about one per interval per clip (hundreds here); a clip misses the
        # shared listing only when its trigger joined while a round was under way.
        assert own_gets <= CLIPS // 4, f"{own_gets} GETs of clips by triggers: the listing is not shared"
        media_gets = sum(1 for r in requests_seen if r["kind"] == "media")
        api_calls = [r for r in requests_seen if r["kind"] == "api"]
        # The shared poll: one listing round per poll interval per triggerer (two at most), each of at
        # most 2 x the pages the waiting clips fill + 2 pages; and one listing per retried create at most
        # (a create whose answer was lost is looked for in the account's newest clips).
        lists = [r for r in api_calls if api_path(r["raw_path"]).rstrip("/") == "/v2/pixverse/speech"]
        rounds = [r for r in lists if parse_qs(urlsplit(r["raw_path"]).query).get("offset", ["0"]) == ["0"]]
        list_span = lists[-1]["at"] - lists[0]["at"] if lists else 0.0
        retried_creates = sum(1 for i in range(CLIPS) if tis[("create", i)][1] > 1)
        rounds_budget = 2 * (math.floor(list_span / POLL_INTERVAL) + 1) + retried_creates
        pages_budget = len(rounds) * (2 * math.ceil(CLIPS / LIST_PAGE_SIZE) + 2)
        assert len(rounds) <= rounds_budget, f"{len(rounds)} listing rounds in {list_span:.0f} s"
        assert len(lists) <= pages_budget, f"{len(lists)} listing pages in {len(rounds)} rounds"
        # Everything else (voices, models...) comes out of the per-clip budget.
        budget = (
            len(creates)
            + len(lists)
            + sum(2 * tis[("create", i)][1] + tis[("download", i)][1] + polls_bound for i in range(CLIPS))
        )
        other_api = len(api_calls) - len(creates) - len(lists) - sum(gets.values())
        assert len(api_calls) <= budget, f"{len(api_calls)} API calls ({other_api} of other kinds); budget {budget}"

        retried = sorted(f"{t}[{i}]" for (t, i), v in tis.items() if v[1] > 1)
        total = time.monotonic() - started
        lines = [
            f"distributed run: {CLIPS} clips; wall {total:.0f} s (set-up {set_up:.0f} s, DAG run {ran:.0f} s); "
            f"CeleryExecutor, PostgreSQL, Redis, 2 workers x {WORKER_CONCURRENCY} at a time ({run.workers_started} "
            "started in all: one replaces each worker killed in B1 and B2), 2 triggerers",
            f"A triggerer kill: {run.triggerer.victim} SIGKILLed running {len(run.triggerer.notes['held'])} triggers; "
            f"{len(moved)} reassigned to {run.triggerer.resumed_on} "
            f"{run.triggerer.detected_at - killed_at:.1f} s after the kill (its last heartbeat "
            f"{killed_at - run.triggerer.notes['last_heartbeat']:.1f} s before it; seen by looking every 0.5 s); "
            f"their triggers restarted there {min(restarts):.1f}-{max(restarts):.1f} s after the kill "
            f"(median {statistics.median(restarts):.1f} s); every wait completed",
            f"B1 create in flight: {run.sent.victim} SIGKILLed "
            f"{run.sent.killed_at - run.sent.notes['sent_at']:.1f} s after {run.sent.task}'s create reached the API "
            f"(answer held {CREATE_STALL_SECONDS:.0f} s, never received); try 1 failed by heartbeat timeout "
            f"{run.sent.detected_at - run.sent.killed_at:.1f} s after the kill; try {tries_s} found the job by its "
            f"intent and resumed it on {run.sent.resumed_on} {resumed_s:.1f} s after the kill (no second create)",
            f"B2 create answered: {run.create.victim} SIGKILLed while {run.create.task} held its new clip "
            f"(audio_id saved, check in flight); try 1 failed by heartbeat timeout "
            f"{run.create.detected_at - run.create.killed_at:.1f} s after the kill; try {tries_b} resumed the clip "
            f"on {run.create.resumed_on} {resumed_b:.1f} s after the kill (GET, no create); "
            f"creates in all: {len(creates)}, one per text",
            f"C download kill: {run.download.victim} SIGKILLed while {run.download.task} fetched its MP3; "
            f"try 1 failed {run.download.detected_at - run.download.killed_at:.1f} s after the kill; "
            f"try {tries_c} fetched it again on {run.download.resumed_on} {resumed_c:.1f} s "
            f"after the kill; {len(keys)} objects, each written once, no temporary object",
            f"requests: {len(creates)} creates, GETs per clip min {min(gets.values())} / median "
            f"{statistics.median(gets.values()):.0f} / max {max(gets.values())} (bound 2 x create tries + download "
            f"tries + {polls_bound}), {own_gets} of them by triggers",
            f"shared listing: {len(rounds)} rounds, {len(lists)} pages in {list_span:.0f} s (budget {rounds_budget} "
            f"rounds, {pages_budget} pages); {other_api} other API calls; {media_gets} media GETs",
            f"tasks retried: {len(retried)} ({', '.join(retried)})",
        ]
        with capsys.disabled():
            print("\n" + "\n".join(lines), flush=True)
        (cluster.root / "summary.txt").write_text("\n".join(lines) + "\n")
