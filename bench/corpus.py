"""Corpus benchmark: the batch operator against the same texts as mapped ``PixVerseTextToSpeechOperator`` tasks.

The batch operator is ``PixVerseBatchTextToSpeechOperator``.

One Airflow on this machine, its components as separate processes as a deployment runs them: PostgreSQL
(Debian's server, the metadata database, so its CPU counts), ``api-server``, ``scheduler`` with
LocalExecutor (cheaper to run than Celery: no broker and no worker daemons; tasks are forked by the
scheduler's executor workers), ``dag-processor`` and ``triggerer``. The sandbox runs in a process of its
own (its CPU is reported apart, not counted as Airflow's), with two accounts whose job limits are 3 and
5. The runs, one after the other in the same Airflow, each writing to a fresh local folder (tmpfs):

1. ``mapped``: the first ``--mapped-items`` texts, one ``PixVerseTextToSpeechOperator`` task each
   (``expand_kwargs``; each text's account chosen in proportion to the limits, 3:5), at most
   ``--parallelism`` running at once; clips ready ``--clip-seconds`` after their create (10 s: see below).
2. ``batch``: ``--items`` texts (the mapped run's among them) in one ``PixVerseBatchTextToSpeechOperator``
   task over both accounts, the same clips.
3. ``batch, large``: ``--large-items`` texts in one batch task, clips ready at once
   (``--large-clip-seconds 0``): the operator's own cost at ten times the size, and the task's memory.

Measured over each run, from its trigger to the end of the DAG run: the CPU of every Airflow process
(each component's process tree, the processes that ended in it included: see ``bench/_process_meter.py``),
against the components' idle rate measured for ``--idle-seconds`` before the runs; the task processes'
CPU and peak RSS; the task instances and the rows PostgreSQL wrote (``pg_stat_database``); the API requests
the sandbox received (creates by outcome, listing pages, GETs, the rest, media apart); the makespan (the
DAG run's start to its end) against the ideal, items x clip time / (3 + 5).

    python bench/corpus.py [--items 1000] [--mapped-items 1000] [--large-items 10000] [--clip-seconds 10]
                           [--large-clip-seconds 0] [--poll-interval 2] [--parallelism 16] [--idle-seconds 20]
                           [--quick] [--json OUT] [--keep]

Clips take 10 s, not 3: on Airflow 3.3.2 a trigger that fires within about 5 s of its task's deferral
gets the resumed task failed by the scheduler (the supervisor of the try that deferred notices its
process's exit up to ``[workers] min_heartbeat_interval``, 5 s, late, and the executor's "success" of that
try is then taken for the resumed one: apache/airflow#66374; the provider's capacity trigger waits 10 s for
this reason). A clip's trigger fires once the clip is final, so clips of 10 s keep both operators clear of
it with Airflow's defaults.

stdout gets the report alone (tables, PASS/MISS lines); progress and the raw figures go to stderr, the
components' logs to the work folder (kept with ``--keep``). Needs Debian's ``postgresql`` package
(``apt-get install postgresql``) and psycopg2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))  # the e2e and distributed tests' process helpers

from _process_meter import ProcessMeter, delta  # noqa: E402
from _sandbox_process import SandboxProcess  # noqa: E402

VOICE = "minimax_english_radiant_girl"
ACCOUNTS = {"corpus-a@example.com": 3, "corpus-b@example.com": 5}
MAPPED_DAG, BATCH_DAG = "bench_corpus_mapped", "bench_corpus_batch"
AIRFLOW_PARTS = (
    "scheduler",
    "task supervisors",
    "task processes",
    "triggerer",
    "api-server",
    "dag-processor",
    "postgres",
)
# Settings of the e2e tests' environment that make Airflow faster than its defaults (and dearer when
# idle): a benchmark runs Airflow as deployed, with its defaults.
TEST_TUNING = (
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES",
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC",
    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD",
)
DB_POLL_SECONDS = 1.0  # how often the benchmark looks at the DAG run (the same while idle)
# PostgreSQL's backends flush their table counters within 10 s of going idle: the rows written are read
# this long after a run (and the idle rate's rows over the extra time taken off).
STATS_SETTLE_SECONDS = 11.0
LINEAR_TOLERANCE = 1.25  # "grows linearly": the task's CPU per item at the large size within this of the first's
API_ENDPOINTS = ("create", "list", "get", "models", "voices", "other")


def text_of(index: int, run: str = "m") -> str:
    """The ``index``-th text of a run: distinct, short (about 3 s of speech).

    Each run's texts differ by a one-letter tag (``m``apped, ``b``atch, ``l``arge), nothing else: the
    same length and shape for every run, and no run's lost-run search can take another run's clips
    (it takes a clip of the very same request made in the two minutes before).
    """
    return f"Corpus line {index:05d}{run}: a short sentence, spoken once."


def name_of(index: int) -> str:
    return f"item-{index:05d}"


def spread(count: int, limits: dict[str, int]) -> list[str]:
    """An account for each of ``count`` items, in proportion to the limits, interleaved (weighted round robin)."""
    total = sum(limits.values())
    current = dict.fromkeys(limits, 0)
    chosen = []
    for _ in range(count):
        for email, limit in limits.items():
            current[email] += limit
        email = max(current, key=lambda e: current[e])
        current[email] -= total
        chosen.append(email)
    return chosen


def busy_seconds() -> float:
    """CPU seconds the machine's cores have been busy since boot (every process's)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


BEGUN = time.time()


def log(message: str) -> None:
    print(f"# corpus: {time.time() - BEGUN:.0f} s: {message}", file=sys.stderr, flush=True)


@dataclass
class Idle:
    """The components' idle CPU rate (cores) and PostgreSQL's rows written per second, before the runs."""

    seconds: float
    cores: dict[str, float]
    rows_per_second: float
    sandbox_cores: float


@dataclass
class Run:
    kind: str  # mapped, batch, batch-large
    items: int
    clip_seconds: float
    state: str
    makespan: float  # the DAG run's start to its end
    window: float  # trigger to the end seen: the CPU is counted over this
    ideal: float
    cpu: dict[str, float]  # CPU seconds per component over the window (gross)
    idle_cpu: float  # the idle rate times the window, every component
    task_processes: int  # task processes started (a task's start and each resume)
    task_cpu_max: float  # the most CPU one task process spent
    peak_task_rss_mb: float  # the largest peak RSS of a task process
    task_instances: int
    tries: int
    db_rows: dict[str, int]  # inserted, updated, deleted
    db_rows_net: float  # their sum less the idle rate over the counters' extra window
    requests: dict[str, int]  # by endpoint, and creates by outcome (create_accepted, create_busy, ...)
    peak_jobs: dict[str, int]  # the most jobs in flight per account (from the accepted creates)
    slots_busy: float  # share of the accounts' job slots busy over the makespan
    sandbox_cpu: float
    machine_busy_cores: float
    observer_cpu: float  # this benchmark's own CPU over the window (its DB polls land in PostgreSQL's)
    written: int  # MP3s in the destination afterwards
    bound: str = ""
    mapped_parallelism: int = 0
    note: str = ""

    @property
    def airflow_cpu(self) -> float:
        return sum(self.cpu.get(part, 0.0) for part in AIRFLOW_PARTS)

    def per_item(self, value: float) -> float:
        return value / self.items if self.items else 0.0

    @property
    def api_requests(self) -> int:
        return sum(self.requests.get(endpoint, 0) for endpoint in API_ENDPOINTS)


def cannot_run() -> str | None:
    """Why this machine cannot run the benchmark (Airflow 3, PostgreSQL's server and psycopg2 it needs), or None."""
    from importlib.metadata import version

    if int(version("apache-airflow").split(".")[0]) < 3:
        return "it runs Airflow 3's api-server, dag-processor and triggerer"
    try:
        import psycopg2  # noqa: F401
        from distributed.cluster import postgres_bin

        postgres_bin()
    except (ImportError, AssertionError) as error:
        return f"it needs PostgreSQL's server and psycopg2 (`make bench` installs them): {error}"
    return None


# -- the Airflow under test ----------------------------------------------------------------------


class Bench:
    """The sandbox, PostgreSQL and Airflow's components, in a throw-away folder; the runs against them."""

    def __init__(self, args: argparse.Namespace) -> None:
        from distributed.cluster import Cluster

        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix="pixverse-bench-corpus-"))
        self.root.chmod(0o755)  # PostgreSQL runs as its own user (the benchmark may be root): it must enter
        shm = Path("/dev/shm")
        self.out = Path(tempfile.mkdtemp(prefix="pixverse-bench-corpus-", dir=shm if os.access(shm, os.W_OK) else None))
        self.dags = self.root / "dags"
        self.dags.mkdir()
        self.cluster = Cluster(self.root, self.dags)
        self.logs = self.cluster.logs
        self.sandbox: SandboxProcess | None = None
        self.airflow: list[Any] = []
        self.meter: ProcessMeter | None = None
        self.db: Any = None
        self.api_url = ""
        self.provider_path = ""

    # set-up

    def start(self) -> None:
        from distributed.cluster import Database
        from e2e.airflow_processes import AirflowProcess, airflow_env, free_port, run_airflow

        args = self.args
        queued = args.clip_seconds / 6
        self.sandbox = SandboxProcess(
            "--max-jobs", "3", "--queued-seconds", f"{queued}", "--generating-seconds", f"{args.clip_seconds - queued}"
        )
        for email, limit in ACCOUNTS.items():
            self.sandbox.control("POST", "/max_jobs", {"max_jobs": limit, "email": email})
        log(f"sandbox at {self.sandbox.url}; PostgreSQL starting")
        database = self.cluster.start_postgres()
        self.db = Database(f"host=127.0.0.1 port={self.cluster.pg_port} user=airflow dbname=airflow")

        self._write_texts(self.out / "texts", args.items, "b")
        if args.large_items:
            self._write_texts(self.out / "texts-large", args.large_items, "l")
        shutil.copy(REPO / "bench" / "_corpus_dag.py", self.dags / "bench_corpus_dags.py")
        accounts = spread(args.mapped_items, ACCOUNTS)
        settings = {
            "voice_id": VOICE,
            "poll_interval": args.poll_interval,
            "wait_timeout": 6 * 3600,
            "parallelism": args.parallelism,
            "accounts": ACCOUNTS,
            "mapped": [
                {"name": name_of(i), "text": text_of(i), "account": accounts[i]} for i in range(args.mapped_items)
            ],
        }
        (self.dags / "corpus_bench.json").write_text(json.dumps(settings))

        api_port = free_port()
        home = self.root / "airflow_home"
        home.mkdir()
        env = airflow_env(
            home,
            self.dags,
            api_port,
            {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": self.sandbox.connection_json(),
                "AIRFLOW__CORE__PARALLELISM": str(args.parallelism),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(args.parallelism),
                "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, args.mapped_items)),
                "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, args.mapped_items + 100)),
                # The DAG files never change: parsed once at the start, their parsing lands in no run.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
                "PYTHONPATH": str(REPO),  # this checkout's provider, whatever the virtualenv has installed
            },
        )
        for key in TEST_TUNING:
            env.pop(key, None)
        self.provider_path = self._provider_path(env)
        log(f"Airflow's processes import the provider from {self.provider_path}")
        run_airflow(["db", "migrate"], env, self.logs / "db-migrate.log", timeout=900)
        for name, command in (
            ("api-server", ["api-server"]),
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer", "--skip-serve-logs"]),
        ):
            self.airflow.append(AirflowProcess(name, command, env, self.logs).start())
        self.api_url = f"http://127.0.0.1:{api_port}"
        self._wait_ready()
        roots = {process.name: process.pid for process in self.airflow}
        roots["postgres"] = next(s.pid for s in self.cluster.servers if s.name == "postgres")
        self.meter = ProcessMeter(roots, interval=args.sample_interval).start()

    def _write_texts(self, folder: Path, count: int, run: str) -> None:
        folder.mkdir()
        for i in range(count):
            (folder / f"{name_of(i)}.txt").write_text(text_of(i, run))

    def _provider_path(self, env: dict[str, str]) -> str:
        import subprocess

        done = subprocess.run(
            [sys.executable, "-c", "import airflow_provider_pixverse as p; print(p.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        path = done.stdout.strip()
        if not Path(path).resolve().is_relative_to(REPO):
            raise SystemExit(f"Airflow's processes would import the provider from {path}, not from {REPO}")
        return path

    def _wait_ready(self) -> None:
        import requests
        from e2e.airflow_processes import STARTUP_TIMEOUT, NotYet, wait_for, wait_until_healthy

        wait_until_healthy(self.api_url, self.airflow, ("scheduler", "dag_processor", "triggerer"), timeout=600)

        def parsed() -> bool:
            errors = requests.get(f"{self.api_url}/api/v2/importErrors", timeout=60).json()["import_errors"]
            if errors:
                raise SystemExit(f"the benchmark's DAGs do not import: {errors}")
            for dag_id in (MAPPED_DAG, BATCH_DAG):
                if requests.get(f"{self.api_url}/api/v2/dags/{dag_id}", timeout=60).status_code != 200:
                    raise NotYet(f"{dag_id} not parsed yet")
            return True

        wait_for("the DAGs to be parsed", parsed, timeout=STARTUP_TIMEOUT, processes=self.airflow, interval=1.0)
        log("Airflow is up and the DAGs are parsed")

    # measuring

    def db_rows(self) -> dict[str, int]:
        row = self.db.rows(
            "SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = 'airflow'"
        )[0]
        return {"inserted": int(row[0]), "updated": int(row[1]), "deleted": int(row[2])}

    def _look(self, dag_id: str, run_id: str) -> tuple[Any, ...] | None:
        rows = self.db.rows(
            "SELECT state, start_date, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s", dag_id, run_id
        )
        return rows[0] if rows else None

    def idle(self, seconds: float) -> Idle:
        """The components' CPU rate and PostgreSQL's rows per second, idle, polled as during a run."""
        assert self.meter is not None and self.sandbox is not None
        time.sleep(min(10.0, seconds / 2))  # the start-up's last work (first heartbeats, the parse) settles
        rows0, sandbox0, first = self.db_rows(), self.sandbox.cpu_seconds(), self.meter.sample()
        end = first.at + seconds
        while time.time() < end:
            self._look(MAPPED_DAG, "not-a-run")
            time.sleep(DB_POLL_SECONDS)
        last = self.meter.sample()
        time.sleep(self.args.stats_settle)
        rows1 = self.db_rows()
        window = last.at - first.at
        spent = delta(first, last)
        rows = sum(rows1.values()) - sum(rows0.values())
        return Idle(
            window,
            {part: spent.get(part, 0.0) / window for part in AIRFLOW_PARTS},
            rows / (window + self.args.stats_settle),
            (self.sandbox.cpu_seconds() - sandbox0) / window,
        )

    def run(self, kind: str, items: int, clip_seconds: float, idle: Idle) -> Run:
        """Trigger one DAG run, wait for its end, and measure it."""
        import requests
        from e2e.airflow_processes import NotYet, wait_for

        assert self.meter is not None and self.sandbox is not None
        dag_id = MAPPED_DAG if kind == "mapped" else BATCH_DAG
        destination = self.out / kind
        destination.mkdir()
        conf: dict[str, str] = {"destination": f"file://{destination}"}
        if kind != "mapped":
            conf["texts"] = f"file://{self.out / ('texts-large' if kind == 'batch-large' else 'texts')}/"
        queued = clip_seconds / 6
        self.sandbox.control("POST", "/clock", {"queued_seconds": queued, "generating_seconds": clip_seconds - queued})
        self.sandbox.control("DELETE", "/requests")
        log(f"{kind}: {items} texts, clips of {clip_seconds:g} s")

        rows0, sandbox0, busy0, observer0 = self.db_rows(), self.sandbox.cpu_seconds(), busy_seconds(), own_cpu()
        first = self.meter.sample()
        answer = requests.post(
            f"{self.api_url}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}, timeout=60
        )
        answer.raise_for_status()
        run_id = answer.json()["dag_run_id"]

        def ended() -> tuple[Any, ...]:
            seen = self._look(dag_id, run_id)
            if seen is None or seen[0] not in ("success", "failed"):
                raise NotYet(f"the DAG run is {seen and seen[0]}")
            return seen

        timeout = 1800 + items * (10 if kind == "mapped" else 2) + items * clip_seconds
        state, started, finished = wait_for(
            f"{dag_id} to end", ended, timeout=timeout, processes=self.airflow, interval=DB_POLL_SECONDS
        )
        last = self.meter.sample()
        observer = own_cpu() - observer0
        sandbox_cpu, busy = self.sandbox.cpu_seconds() - sandbox0, busy_seconds() - busy0
        received = [
            r for r in self.sandbox.control("GET", "/requests") if r["endpoint"] != "control" and r["at"] >= first.at
        ]
        time.sleep(self.args.stats_settle)
        rows1 = self.db_rows()
        rows_window = time.time() - first.at

        makespan = (finished - started).total_seconds()
        window = last.at - first.at
        tasks = self.meter.tasks_between(first.at, last.at)
        instances = self.db.rows(
            "SELECT count(*), coalesce(sum(try_number), 0) FROM task_instance WHERE dag_id = %s AND run_id = %s",
            dag_id,
            run_id,
        )[0]
        rows = {key: rows1[key] - rows0[key] for key in rows1}
        run = Run(
            kind=kind,
            items=items,
            clip_seconds=clip_seconds,
            state=state,
            makespan=makespan,
            window=window,
            ideal=items * clip_seconds / sum(ACCOUNTS.values()),
            cpu=delta(first, last),
            idle_cpu=sum(idle.cores.values()) * window,
            task_processes=len(tasks),
            task_cpu_max=max((t.cpu for t in tasks), default=0.0),
            peak_task_rss_mb=max((t.peak_rss_mb for t in tasks), default=0.0),
            task_instances=int(instances[0]),
            tries=int(instances[1]),
            db_rows=rows,
            db_rows_net=sum(rows.values()) - idle.rows_per_second * max(rows_window - makespan, 0.0),
            requests=count_requests(received),
            peak_jobs=peak_jobs(received, clip_seconds),
            slots_busy=slots_busy(received, clip_seconds, makespan),
            sandbox_cpu=sandbox_cpu,
            machine_busy_cores=busy / window,
            observer_cpu=observer,
            written=len(list(destination.glob("*.mp3"))),
            mapped_parallelism=self.args.parallelism if kind == "mapped" else 0,
        )
        run.bound = bound(run, self.args.poll_interval)
        if state != "success" or run.written != items:
            run.note = f"the DAG run ended {state} with {run.written} of {items} MP3s written"
            log(f"{kind}: {run.note}; task logs under {self.root / 'airflow_home' / 'logs'}")
        shutil.rmtree(destination, ignore_errors=True)  # tmpfs: the next run's room
        self.sandbox.control("DELETE", "/requests")
        return run

    def stop(self) -> None:
        from e2e.airflow_processes import stop_all

        if self.meter is not None:
            self.meter.stop()
        stop_all(self.airflow, grace=10)
        with contextlib.suppress(Exception):
            if self.db is not None:
                self.db.close()
        self.cluster.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        shutil.rmtree(self.out, ignore_errors=True)
        if self.args.keep:
            log(f"kept the work folder (logs, Airflow home, PostgreSQL data): {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


# -- what the sandbox saw --------------------------------------------------------------------------


def count_requests(received: list[dict[str, Any]]) -> dict[str, int]:
    """Requests by endpoint (create, list, get, models, voices, media, other), and creates by outcome."""
    counts: dict[str, int] = {}
    for record in received:
        counts[record["endpoint"]] = counts.get(record["endpoint"], 0) + 1
        if record["endpoint"] == "create":
            key = f"create_{record['outcome']}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def _accepted(received: list[dict[str, Any]]) -> list[tuple[float, str]]:
    """(when, account) of each accepted create."""
    from airflow_provider_pixverse.sandbox.forms import parse_fields

    found = []
    for record in received:
        if record["endpoint"] == "create" and record["outcome"] == "accepted":
            headers = {key.lower(): value for key, value in record["headers"].items()}
            fields = parse_fields(record["body"].encode(), headers.get("content-type"))
            found.append((record["at"], str(fields.get("email") or "")))
    return found


def peak_jobs(received: list[dict[str, Any]], clip_seconds: float) -> dict[str, int]:
    """The most jobs in flight at once per account: each accepted create runs ``clip_seconds``."""
    events: dict[str, list[tuple[float, int]]] = {}
    for at, email in _accepted(received):
        events.setdefault(email, []).extend([(at, 1), (at + clip_seconds, -1)])
    peaks = {}
    for email, marks in events.items():
        running = peak = 0
        for _, step in sorted(marks, key=lambda mark: (mark[0], mark[1])):  # an end before a start at one instant
            running += step
            peak = max(peak, running)
        peaks[email] = peak
    return peaks


def slots_busy(received: list[dict[str, Any]], clip_seconds: float, makespan: float) -> float:
    """The share of the job slots busy over the makespan: accepted creates x clip time / (slots x makespan)."""
    if not clip_seconds or makespan <= 0:
        return 0.0
    return len(_accepted(received)) * clip_seconds / (sum(ACCOUNTS.values()) * makespan)


def bound(run: Run, poll_interval: float) -> str:
    """What set the run's pace: the job slots, one task process's CPU, the machine's CPU, or the waits between."""
    cores = os.cpu_count() or 1
    task_share = run.task_cpu_max / run.makespan if run.makespan else 0.0
    airflow, sandbox = run.airflow_cpu / run.window, run.sandbox_cpu / run.window
    others = max(run.machine_busy_cores - airflow - sandbox - run.observer_cpu / run.window, 0.0)
    if run.clip_seconds and run.slots_busy >= 0.85:
        return f"the accounts' job limits: their slots busy {run.slots_busy:.0%} of the run"
    if task_share >= 0.8:
        return f"the task's own CPU: its process busy {task_share:.0%} of a core"
    if run.machine_busy_cores >= 0.85 * cores:
        whose = f"Airflow {airflow:.2f}, the sandbox {sandbox:.2f}, other work on the machine {others:.2f}"
        mostly = ", mostly taken by other work" if others > airflow else ""
        return f"the machine's CPU{mostly}: {run.machine_busy_cores:.2f} of {cores} cores busy ({whose})"
    if not run.clip_seconds:  # nothing to wait for: one process's calls, one after another
        return (
            f"the task's round trips, one after another: its process busy {task_share:.0%} of a core, the rest "
            f"waiting for its calls (the sandbox, the api-server, PostgreSQL; {run.machine_busy_cores:.2f} of "
            f"{cores} cores busy)"
        )
    slots = f"slots busy {run.slots_busy:.0%}, " if run.clip_seconds else ""
    return (
        f"neither the job slots nor the CPU ({slots}{run.machine_busy_cores:.2f} of {cores} cores busy): "
        f"the waits between a clip's end and the next create (poll interval {poll_interval:g} s, then the "
        f"{'tasks resume' if run.kind == 'mapped' else 'task resumes'})"
    )


def short_bound(bound: str) -> str:
    """A few words of :func:`bound`'s answer, for the tables that do not spell it out."""
    for start, words in (
        ("the accounts' job limits", "the job limits"),
        ("the task's own CPU", "the task's CPU"),
        ("the machine's CPU, mostly", "the machine's CPU (other work)"),
        ("the machine's CPU", "the machine's CPU"),
        ("the task's round trips", "the task's round trips"),
        ("neither", "the waits between clips"),
    ):
        if bound.startswith(start):
            return words
    return bound


# -- the report ----------------------------------------------------------------------------------------


def verdicts(runs: list[Run]) -> list[tuple[str, bool | None, str, str]]:
    """Each target: its size, PASS (True) / MISS (False) / not judged (None), its name, the figures behind it."""
    by_kind = {run.kind: run for run in runs}
    mapped, batch, large = by_kind.get("mapped"), by_kind.get("batch"), by_kind.get("batch-large")
    lines: list[tuple[str, bool | None, str, str]] = []

    def ok(run: Run) -> bool:
        return run.state == "success" and run.written == run.items

    def failed(run: Run) -> str:
        return "" if ok(run) else f"; {run.kind}: {run.note}"

    if batch is not None and mapped is not None:
        ours, peer = batch.per_item(batch.airflow_cpu), mapped.per_item(mapped.airflow_cpu)
        net_ours = batch.per_item(batch.airflow_cpu - batch.idle_cpu)
        net_peer = mapped.per_item(mapped.airflow_cpu - mapped.idle_cpu)
        ratio = ours / peer if peer else math.inf
        sizes = (
            f"mapped at {mapped.items} texts (the first of the batch's {batch.items}), compared per item"
            if mapped.items != batch.items
            else f"both at {batch.items} texts"
        )
        lines.append(
            (
                f"N={batch.items}",
                ratio <= 0.05 and ok(batch) and ok(mapped),
                "CPU-seconds of every Airflow process per item, batch <= 0.05x mapped",
                f"{ratio:.3f}x ({ours:.3f} vs {peer:.3f} s per item; net of the idle rate "
                f"{net_ours:.3f} vs {net_peer:.3f} s, "
                f"{net_ours / net_peer if net_peer > 0 else math.inf:.3f}x); {sizes}{failed(batch)}{failed(mapped)}",
            )
        )
    for run in (batch, large):
        if run is None:
            continue
        label = f"N={run.items}"
        per = {key: run.per_item(run.requests.get(key, 0)) for key in API_ENDPOINTS}
        lines.append(
            (
                label,
                run.per_item(run.api_requests) <= 1.5 and ok(run),
                "API requests per item (creates, listing pages, GETs) <= 1.5",
                f"{run.per_item(run.api_requests):.2f} ({per['create']:.2f} creates, of which "
                f"{run.per_item(run.requests.get('create_busy', 0)):.2f} busy; {per['list']:.2f} listing pages; "
                f"{per['get']:.2f} GETs; {per['models'] + per['voices'] + per['other']:.2f} other); media "
                f"downloads apart, {run.per_item(run.requests.get('media', 0)):.2f}{failed(run)}",
            )
        )
        if run.clip_seconds:
            lines.append(
                (
                    label,
                    run.makespan <= 1.2 * run.ideal and ok(run),
                    "makespan <= 1.2x the ideal (items x clip time / (3 + 5))",
                    f"{run.makespan / run.ideal:.2f}x ({run.makespan:.0f} s vs {run.ideal:.0f} s = {run.items} x "
                    f"{run.clip_seconds:g} s / 8){failed(run)}",
                )
            )
        else:
            lines.append(
                (
                    label,
                    None,
                    "makespan <= 1.2x the ideal",
                    f"clips ready at once make the ideal 0 s: the makespan, {run.makespan:.0f} s "
                    f"({run.per_item(run.makespan) * 1000:.0f} ms per item), is Airflow's and the operator's own "
                    f"time (`--large-clip-seconds` judges it with clips that take time)",
                )
            )
    if large is not None:
        one = f"; a mapped task's own peak, one text: {mapped.peak_task_rss_mb:.0f} MB" if mapped else ""
        lines.append(
            (
                f"N={large.items}",
                large.peak_task_rss_mb < 200 and ok(large),
                "memory of the task < 200 MB",
                f"peak RSS {large.peak_task_rss_mb:.0f} MB, the largest of its {large.task_processes} task "
                f"process(es) (a task process is forked from its executor worker: the RSS counts the pages it "
                f"shares with it){one}{failed(large)}",
            )
        )
        if batch is not None:
            first, then = batch.per_item(batch.cpu["task processes"]), large.per_item(large.cpu["task processes"])
            growth = then / first if first else math.inf
            lines.append(
                (
                    f"N={large.items}",
                    growth <= LINEAR_TOLERANCE and ok(large) and ok(batch),
                    f"the operator's own CPU grows linearly (per item within {LINEAR_TOLERANCE:g}x of "
                    f"N={batch.items}'s)",
                    f"{growth:.2f}x: the task processes' CPU {then * 1000:.1f} ms per item at N={large.items} "
                    f"(clips ready at once) vs {first * 1000:.1f} ms at N={batch.items} "
                    f"(clips of {batch.clip_seconds:g} s){failed(large)}",
                )
            )
    return lines


def run_label(run: Run) -> str:
    if run.kind == "mapped":
        return f"mapped `PixVerseTextToSpeechOperator`, {run.mapped_parallelism} at once"
    return "batch `PixVerseBatchTextToSpeechOperator`" + (", clips ready at once" if not run.clip_seconds else "")


def format_report(data: dict[str, Any]) -> str:
    """The report, in Markdown: the setting, three tables, then PASS / MISS (or not judged) per target."""
    runs = [Run(**row) for row in data["runs"]]
    idle = Idle(**data["idle"])
    config = data["config"]
    mapped = next((r for r in runs if r.kind == "mapped"), None)
    batch = next((r for r in runs if r.kind == "batch"), None)
    smaller = (
        f" The mapped run is smaller than the batch's, {mapped.items} texts against {batch.items} (a mapped task "
        "costs Airflow seconds of CPU on this machine): every comparison is per item."
        if mapped and batch and mapped.items != batch.items
        else ""
    )
    lines = [
        f"One Airflow: PostgreSQL metadata database, `api-server`, `scheduler` (LocalExecutor, parallelism "
        f"{config['parallelism']}: cheaper to run than Celery, no broker and no worker daemons), `dag-processor` "
        f"and `triggerer`, each its own process, Airflow's defaults otherwise; the sandbox in a process of its "
        f"own (its CPU apart), two accounts with job limits 3 and 5; clips ready {config['clip_seconds']:g} s "
        f"after their create; poll interval {config['poll_interval']:g} s on both sides; each run writes to a "
        "fresh folder on tmpfs; the texts are the same but for a one-letter run tag (no run can take another's "
        f"clips), distinct and short ({len(text_of(0))} characters)."
        f"{smaller} CPU: every process of each component, those that ended included (user + system, the reaped "
        "children's too), from the run's trigger to its end; net: less the components' idle rate over that time "
        f"(measured idle for {idle.seconds:.0f} s before the runs: {sum(idle.cores.values()):.3f} cores in all, "
        + ", ".join(f"{part} {rate:.3f}" for part, rate in idle.cores.items() if rate >= 0.0005)
        + f"; PostgreSQL wrote {idle.rows_per_second:.1f} rows/s idle). Makespan: the DAG run's start to its "
        "end; ideal: items x clip time / 8 slots.",
        "",
        "| run | items | makespan s | ideal s | vs ideal | slots busy | Airflow CPU s / item (net) "
        "| task instances / item | task processes / item | DB rows / item | peak task RSS MB | bounded by |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        vs = f"{r.makespan / r.ideal:.2f}x" if r.ideal else "-"
        lines.append(
            f"| {run_label(r)} | {r.items} | {r.makespan:.0f} | {r.ideal:.0f} | {vs} "
            f"| {f'{r.slots_busy:.0%}' if r.clip_seconds else '-'} "
            f"| {r.per_item(r.airflow_cpu):.3f} ({r.per_item(r.airflow_cpu - r.idle_cpu):.3f}) "
            f"| {r.per_item(r.task_instances):.3f} | {r.per_item(r.task_processes):.3f} "
            f"| {r.per_item(r.db_rows_net):.1f} | {r.peak_task_rss_mb:.0f} | {r.bound} |"
        )
    lines += [
        "",
        "API requests per item, as the sandbox received them (creates: accepted / refused busy; media downloads "
        "are not API requests); the most jobs in flight per account (limits 3 and 5); the sandbox's CPU.",
        "",
        "| run | API requests / item | creates (busy) | listing pages | GETs | models, voices, other "
        "| media | most jobs at once | sandbox CPU s / item | bounded by |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in runs:
        other = sum(r.requests.get(key, 0) for key in ("models", "voices", "other"))
        jobs = " + ".join(str(r.peak_jobs.get(email, 0)) for email in ACCOUNTS)
        lines.append(
            f"| {run_label(r)} | {r.per_item(r.api_requests):.2f} | {r.per_item(r.requests.get('create', 0)):.2f} "
            f"({r.per_item(r.requests.get('create_busy', 0)):.2f}) | {r.per_item(r.requests.get('list', 0)):.2f} "
            f"| {r.per_item(r.requests.get('get', 0)):.2f} | {r.per_item(other):.2f} "
            f"| {r.per_item(r.requests.get('media', 0)):.2f} | {jobs} | {r.per_item(r.sandbox_cpu):.4f} "
            f"| {short_bound(r.bound)} |"
        )
    lines += [
        "",
        "CPU per item by component, ms (gross; the idle rate's share of it last; this benchmark's own CPU, "
        "whose DB polls once a second land in PostgreSQL's, apart).",
        "",
        "| run | " + " | ".join(AIRFLOW_PARTS) + " | all Airflow | of it idle | benchmark | bounded by |",
        "|---|" + "---:|" * (len(AIRFLOW_PARTS) + 3) + "---|",
    ]
    for r in runs:
        parts = " | ".join(f"{r.per_item(r.cpu.get(part, 0.0)) * 1000:.1f}" for part in AIRFLOW_PARTS)
        lines.append(
            f"| {run_label(r)} | {parts} | {r.per_item(r.airflow_cpu) * 1000:.1f} "
            f"| {r.per_item(r.idle_cpu) * 1000:.1f} | {r.per_item(r.observer_cpu) * 1000:.1f} "
            f"| {short_bound(r.bound)} |"
        )
    lines.append("")
    for scope, passed, target, detail in verdicts(runs):
        verdict = "not judged:" if passed is None else ("PASS" if passed else "MISS")
        lines.append(f"- {scope}: {verdict} {target}: {detail}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="texts of the batch run (the issue's 1,000)")
    parser.add_argument(
        "--mapped-items", type=int, help="texts of the mapped run: the first of the batch's (default --items)"
    )
    parser.add_argument("--large-items", type=int, default=10_000, help="texts of the large batch run (0: none)")
    parser.add_argument(
        "--clip-seconds", type=float, default=10.0, help="a clip's time from create to final (see above: >= 10)"
    )
    parser.add_argument("--large-clip-seconds", type=float, default=0.0, help="the large run's (0: ready at once)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="both operators' poll_interval")
    parser.add_argument("--parallelism", type=int, default=16, help="Airflow's parallelism, and the mapped task's")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="how long the idle rate is measured")
    parser.add_argument("--sample-interval", type=float, default=0.25, help="seconds between process scans")
    parser.add_argument(
        "--stats-settle",
        type=float,
        default=STATS_SETTLE_SECONDS,
        help="seconds to wait after a run before reading PostgreSQL's rows written",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmark runs, not figures")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, Airflow home)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.quick:
        args.items, args.mapped_items, args.large_items = 8, 4, 24
        args.clip_seconds, args.poll_interval, args.idle_seconds, args.parallelism = 10.0, 2.0, 5.0, 8
        args.stats_settle = 3.0
    args.mapped_items = args.items if args.mapped_items is None else min(args.mapped_items, args.items)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

    from triggers import report_stream

    report = report_stream()
    begun = time.time()
    bench = Bench(args)
    runs: list[Run] = []
    try:
        bench.start()
        idle = bench.idle(args.idle_seconds)
        log(f"idle: {json.dumps(asdict(idle))}")
        plan = [("mapped", args.mapped_items, args.clip_seconds), ("batch", args.items, args.clip_seconds)]
        if args.large_items:
            plan.append(("batch-large", args.large_items, args.large_clip_seconds))
        for kind, items, clip in plan:
            if not items:
                continue
            started = time.time()
            runs.append(bench.run(kind, items, clip, idle))
            log(f"{kind} took {time.time() - started:.0f} s: {json.dumps(asdict(runs[-1]))}")
        assert bench.meter is not None
        meter = {"scans": bench.meter.scans, "scan_cpu": bench.meter.scan_seconds, "orphans": bench.meter.orphans}
    finally:
        bench.stop()
    data = {
        "config": {
            "items": args.items,
            "mapped_items": args.mapped_items,
            "large_items": args.large_items,
            "clip_seconds": args.clip_seconds,
            "large_clip_seconds": args.large_clip_seconds,
            "poll_interval": args.poll_interval,
            "parallelism": args.parallelism,
            "accounts": ACCOUNTS,
            "executor": "LocalExecutor",
            "provider": bench.provider_path,
            "seconds": time.time() - begun,
            "meter": meter,
        },
        "idle": asdict(idle),
        "runs": [asdict(run) for run in runs],
    }
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    print(format_report(data), file=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
