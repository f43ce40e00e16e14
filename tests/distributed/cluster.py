"""A distributed Airflow on this machine: PostgreSQL, Redis, the sandbox, moto and the Airflow components.

Every server is a process of its own, on loopback, on a free port, with its data in a throw-away
directory; :meth:`Cluster.stop` ends whatever was started (Airflow first, then the servers it uses).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import boto3
import psycopg2
import pytest
import requests
from cryptography.fernet import Fernet
from e2e.airflow_processes import AirflowProcess, airflow_env, free_port, log_tail, run_airflow, stop_all, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

SITE = Path(__file__).resolve().parent / "site"  # the hostname_callable module
# The tree under test: Airflow's processes and the sandbox import the provider from here, ahead of
# whatever the virtual environment's editable install points at (another work tree, perhaps).
SOURCE_TREE = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 120.0
WORKER_CONCURRENCY = 4
HEARTBEAT_TIMEOUT = 15  # [scheduler] task_instance_heartbeat_timeout: how long a dead worker's task waits

FAST_FAILOVER = {
    # Two workers of WORKER_CONCURRENCY slots: nothing waits in the queue for a slot that exists.
    "AIRFLOW__CORE__PARALLELISM": str(2 * WORKER_CONCURRENCY),
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    # A task whose worker died is failed (and retried) once its heartbeat is this old (default 300 s).
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    # A message a killed worker had taken but not started would stay queued for 600 s by default.
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    # A triggerer whose heartbeat (every second) is this old loses its triggers to a live one. Lower than
    # the default 30 s to keep the test short; not as low as the e2e tests' 5 s, which a busy two-core
    # machine can miss while the triggerer is alive.
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
}


class Command(AirflowProcess):
    """Any long-running command (not only ``airflow ...``), optionally as another user."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        logs: Path,
        user: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(name, argv, env, logs)
        self.user = user
        self.cwd = cwd

    def start(self) -> Command:
        """Start the command in a new session, its output in its log."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=self.user,
                cwd=self.cwd,
            )
        return self


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL server programs (the newest version installed)."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise AssertionError("PostgreSQL is not installed: apt-get install postgresql (make test-distributed does)")
    return Path(candidates[-1]).parent


def _postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: then it runs as ``postgres`` (Debian's package makes it) or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise AssertionError("running as root and neither a postgres nor a nobody user exists")


def redis_ping(port: int) -> bool:
    """Whether Redis answers PING on loopback."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Database:
    """Read-only SQL against Airflow's metadata database (the test looks from outside)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: Any = None

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """The rows of a query; reconnects once if the connection went away."""
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg2.connect(self.dsn)
                    self._conn.autocommit = True
                with self._conn.cursor() as cursor:
                    cursor.execute(sql, params)
                    return list(cursor.fetchall())
            except psycopg2.OperationalError:
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def running_jobs(self, job_type: str) -> dict[str, int]:
        """Hostname -> job id of the jobs of a type (``TriggererJob``, ``SchedulerJob``) in state running."""
        rows = self.rows("SELECT hostname, id FROM job WHERE job_type = %s AND state = 'running'", job_type)
        return {str(r[0]): int(r[1]) for r in rows}

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()


class SandboxClient:
    """The sandbox's control surface and API, from the test process (its own calls are marked)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.session = requests.Session()
        self.session.headers["X-Pixverse-Test-Observer"] = "1"

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """A ``/_sandbox`` call; fails on an error status."""
        response = self.session.request(method, f"{self.url}/_sandbox{path}", timeout=30, **kwargs)
        assert response.ok, f"{method} /_sandbox{path}: {response.status_code} {response.text[:500]}"
        return response.json()

    def add_fault(self, kind: str, **fields: Any) -> None:
        """Schedule a fault (see airflow_provider_pixverse.sandbox.faults)."""
        self.control("POST", "/faults", json={"kind": kind, **fields})

    def pending_faults(self) -> list[dict[str, Any]]:
        """The faults not used up yet."""
        faults: list[dict[str, Any]] = self.control("GET", "/faults")["faults"]
        return faults

    def requests(self) -> list[dict[str, Any]]:
        """Every request received, oldest first, without the test's own."""
        received: list[dict[str, Any]] = self.control("GET", "/requests")
        return [r for r in received if "x-pixverse-test-observer" not in r["headers"]]

    def listing(self, email: str | None = None) -> list[dict[str, Any]]:
        """Every clip of an account (the only one the sandbox knows when ``email`` is None), page by page."""
        clips: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100, "offset": 0} | ({"email": email} if email else {})
        while True:
            response = self.session.get(
                f"{self.url}/v2/pixverse/speech",
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=30,
            )
            assert response.ok, f"speech listing: {response.status_code} {response.text[:500]}"
            page = response.json()
            clips.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return clips
            params["offset"] = page["next_offset"]

    def set_max_jobs(self, max_jobs: int | None, email: str | None = None) -> None:
        """The job limit of ``email``'s account (of every account without one of its own when None)."""
        self.control("POST", "/max_jobs", json={"max_jobs": max_jobs, "email": email})

    def jobs_high_water(self, email: str) -> int:
        """The most jobs the account ever had QUEUED or GENERATING at once."""
        return int(self.control("GET", "/jobs", params={"email": email})["high_water"])

    def create_outcomes(self) -> dict[str, int]:
        """Creates received so far by outcome: accepted (a job made), busy (429), refused."""
        outcomes: dict[str, int] = self.control("GET", "/create_outcomes")
        return outcomes

    def set_clock(self, queued_seconds: float, generating_seconds: float) -> None:
        """How long the clips created from now on stay QUEUED, then GENERATING."""
        self.control(
            "POST", "/clock", json={"queued_seconds": queued_seconds, "generating_seconds": generating_seconds}
        )

    def media(self, url: str) -> bytes:
        """The bytes of a clip's MP3 as the media host serves them."""
        response = self.session.get(url, timeout=30)
        assert response.ok, f"GET {url}: {response.status_code}"
        return response.content


class Cluster:
    """Starts the components in ``root`` and stops them all, in reverse dependency order."""

    def __init__(self, root: Path, dags: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir(parents=True)
        self.dags = dags
        self.home = root / "airflow_home"  # AIRFLOW_HOME: task and trigger logs land in its logs/
        self.servers: list[AirflowProcess] = []
        self.airflow: list[AirflowProcess] = []
        self.live: list[AirflowProcess] = []  # whatever must stay up: a wait fails at once if one exits
        self.env: dict[str, str] = {}
        self.pg_port = self.redis_port = self.moto_port = self.sandbox_port = self.api_port = 0
        self.sandbox_token = secrets.token_urlsafe(18)
        self._pg_argv: list[str] = []
        self._pg_env: dict[str, str] = {}
        self._pg_user: str | None = None
        self._pg_folder = self._pg_data = root / "postgres"
        self.postmaster: Command | None = None
        self.db: Database | None = None
        self.session = requests.Session()
        self.fernet_key = Fernet.generate_key().decode()

    # waiting

    def until(self, what: str, check: Callable[[], Any], timeout: float = STARTUP_TIMEOUT) -> Any:
        """Wait for ``check``; fail at once when a live component exits, with every log tail on failure."""
        return wait_for(what, check, timeout=timeout, processes=self.live)

    def _start(self, process: AirflowProcess, group: list[AirflowProcess]) -> AirflowProcess:
        group.append(process)
        self.live.append(process.start())
        return process

    # servers

    def start_postgres(self) -> str:
        """initdb and a postmaster on a free loopback port; returns the SQLAlchemy URL of database ``airflow``."""
        user = self._pg_user = _postgres_user()
        folder = self._pg_folder = self.root / "postgres"
        folder.mkdir()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        data = self._pg_data = folder / "data"
        binaries = postgres_bin()
        env = self._pg_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust", "-E", "UTF8", "--no-sync"],
            env=env,
            user=user,
            cwd=folder,  # a folder that user may enter, whatever the test's own working directory
            stdout=(self.logs / "initdb.log").open("ab"),
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )
        self.pg_port = free_port()
        self._pg_argv = [
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.pg_port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            # A throw-away database: durability buys nothing here.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        self._start_postmaster("postgres")
        conn = psycopg2.connect(self._pg_admin)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE airflow")
        conn.close()
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"

    @property
    def _pg_admin(self) -> str:
        return f"host=127.0.0.1 port={self.pg_port} user=airflow dbname=postgres"

    def _start_postmaster(self, name: str) -> Command:
        postmaster = Command(name, self._pg_argv, self._pg_env, self.logs, user=self._pg_user, cwd=self._pg_folder)
        self._start(postmaster, self.servers)
        self.postmaster = postmaster

        def accepting() -> bool:
            try:
                conn = psycopg2.connect(self._pg_admin, connect_timeout=2)
            except psycopg2.OperationalError:
                return False
            conn.close()
            return True

        self.until(f"PostgreSQL ({name}) to accept connections", accepting)
        return postmaster

    def restart_postgres(self) -> tuple[float, float]:
        """Stop PostgreSQL at once (``pg_ctl -m immediate``: no checkpoint, every connection cut) and start it
        again on the same port and data directory; returns when it stopped and when it accepts connections."""
        old = self.postmaster
        assert old is not None, "PostgreSQL was never started"
        if old in self.live:
            self.live.remove(old)
        subprocess.run(
            [str(postgres_bin() / "pg_ctl"), "-D", str(self._pg_data), "-m", "immediate", "-w", "stop"],
            env=self._pg_env,
            user=self._pg_user,
            cwd=self._pg_folder,
            stdout=(self.logs / "pg_ctl.log").open("ab"),
            stderr=subprocess.STDOUT,
            check=True,
            timeout=60,
        )
        if old.process is not None:
            old.process.wait(timeout=30)
        stopped = time.time()
        self._start_postmaster(f"postgres-{sum(p.name.startswith('postgres') for p in self.servers) + 1}")
        return stopped, time.time()

    def start_redis(self) -> str:
        """redis-server on a free loopback port, no persistence; returns the broker URL."""
        folder = self.root / "redis"
        folder.mkdir()
        self.redis_port = free_port()
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ]
        self._start(Command("redis", argv, {"PATH": os.environ.get("PATH", "")}, self.logs), self.servers)
        self.until("Redis to answer PING", lambda: redis_ping(self.redis_port))
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_sandbox(
        self, queued_seconds: float, generating_seconds: float, max_jobs: int | None = None
    ) -> SandboxClient:
        """The PixVerse sandbox in its own process; ``max_jobs`` is every account's job limit (None: none)."""
        self.sandbox_port = free_port()
        argv = [
            sys.executable,
            "-m",
            "airflow_provider_pixverse.sandbox",
            "--port",
            str(self.sandbox_port),
            # One argument: a random token may start with "-", which argparse would take for an option.
            f"--token={self.sandbox_token}",
            # No limit unless asked: a test about kills alone leaves it to tests/e2e/test_account_queue.py.
            "--max-jobs",
            "none" if max_jobs is None else str(max_jobs),
            "--queued-seconds",
            str(queued_seconds),
            "--generating-seconds",
            str(generating_seconds),
        ]
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        env |= {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(SOURCE_TREE)}  # the sandbox of the tree under test
        self._start(Command("sandbox", argv, env, self.logs), self.servers)
        client = SandboxClient(f"http://127.0.0.1:{self.sandbox_port}", self.sandbox_token)
        self.until("the sandbox", lambda: client.session.get(f"{client.url}/_sandbox/stats", timeout=2).ok)
        return client

    def start_moto(self) -> str:
        """moto's S3 in server mode; returns its endpoint."""
        self.moto_port = free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)]
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        self._start(Command("moto", argv, env, self.logs), self.servers)
        endpoint = f"http://127.0.0.1:{self.moto_port}"
        self.until("moto", lambda: requests.get(endpoint, timeout=2).status_code < 500)
        return endpoint

    # Airflow

    def configure_airflow(self, database: str, broker: str, extra: Mapping[str, str]) -> None:
        """The environment every Airflow process shares, on top of the e2e tests' fast settings."""
        home = self.home
        home.mkdir()
        self.api_port = free_port()
        backend = database.replace("postgresql+psycopg2://", "db+postgresql://")
        self.env = airflow_env(
            home,
            self.dags,
            self.api_port,
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__CELERY__BROKER_URL": broker,
                "AIRFLOW__CELERY__RESULT_BACKEND": backend,
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pixverse_distributed_host.hostname",
                "PYTHONPATH": os.pathsep.join((str(SITE), str(SOURCE_TREE))),
                **extra,
            },
        )

    def migrate(self) -> Database:
        """``airflow db migrate`` against PostgreSQL; returns the test's read-only view of the database."""
        run_airflow(["db", "migrate"], self.env, self.logs / "db-migrate.log", timeout=300)
        self.db = Database(f"host=127.0.0.1 port={self.pg_port} user=airflow dbname=airflow")
        return self.db

    @property
    def api(self) -> str:
        """The base URL of the REST API (v2)."""
        return f"http://127.0.0.1:{self.api_port}/api/v2"

    def start_components(self, dag_id: str) -> None:
        """api-server, scheduler, dag-processor, two triggerers and two workers; returns once all are ready.

        Ready: the api-server answers, ``dag_id`` is parsed without import errors, both workers said
        "ready." and both triggerers run a job.
        """
        assert self.db is not None, "migrate first"
        self.start_airflow("api-server", ["api-server"])
        self.start_airflow("scheduler", ["scheduler", "--skip-serve-logs"])
        self.start_airflow("dag-processor", ["dag-processor"])
        for name in ("triggerer-1", "triggerer-2"):
            self.start_airflow(name, ["triggerer", "--skip-serve-logs"])
        for name in ("worker-1", "worker-2"):
            self.start_airflow(name, worker_args(name))
        session = self.session
        self.until("the api-server", lambda: session.get(f"{self.api}/monitor/health", timeout=5).ok)
        self.until("the DAG to be parsed", lambda: session.get(f"{self.api}/dags/{dag_id}", timeout=5).ok)
        errors = session.get(f"{self.api}/importErrors", timeout=5).json()["import_errors"]
        assert not errors, f"the DAG does not import: {errors}"
        for name in ("worker-1", "worker-2"):
            self.until(f"{name} to be ready", lambda name=name: log_says(self.logs / f"{name}.log", " ready."))
        db = self.db
        self.until("both triggerers", lambda: {"triggerer-1", "triggerer-2"} <= set(db.running_jobs("TriggererJob")))

    def start_run(self, dag_id: str) -> str:
        """Unpause the DAG and start a run of it now; returns its run_id."""
        response = self.session.patch(f"{self.api}/dags/{dag_id}", json={"is_paused": False}, timeout=10)
        assert response.ok, response.text
        response = self.session.post(f"{self.api}/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=10)
        assert response.ok, response.text
        return str(response.json()["dag_run_id"])

    def process(self, name: str) -> AirflowProcess:
        """The Airflow process called ``name``."""
        return next(p for p in self.airflow if p.name == name)

    def start_airflow(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> AirflowProcess:
        """``airflow <args>`` as the process ``name`` (its hostname in Airflow's tables too)."""
        process_env = self.env | {"PIXVERSE_DISTRIBUTED_NAME": name} | dict(env or {})
        return self._start(AirflowProcess(name, args, process_env, self.logs), self.airflow)

    def retire(self, process: AirflowProcess) -> list[int]:
        """SIGKILL a component on purpose: it leaves the set that must stay up."""
        if process in self.live:
            self.live.remove(process)
        return process.kill()

    def tails(self, lines: int = 30) -> str:
        """The end of every component's log."""
        return "\n".join(p.tail(lines) for p in self.servers + self.airflow)

    def stop(self) -> None:
        """Stop Airflow, then the servers; every process group started is gone afterwards."""
        stop_all(self.airflow, grace=10)
        stop_all(self.servers, grace=10)
        if self.db is not None:
            self.db.close()

    def connection_json(self, endpoint: str) -> dict[str, str]:
        """The connections the DAG uses, as environment variables."""
        pixverse = {
            "conn_type": "pixverse",
            "host": f"http://127.0.0.1:{self.sandbox_port}",
            "password": self.sandbox_token,
            "extra": {"email": "distributed@example.com", "timeout": 90},
        }
        aws = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        return {"AIRFLOW_CONN_PIXVERSE_DEFAULT": json.dumps(pixverse), "AIRFLOW_CONN_AWS_MOTO": json.dumps(aws)}


def log_says(log: Path, text: str) -> bool:
    """Whether a log file contains ``text``."""
    return log.exists() and text in log.read_text(errors="replace")


def worker_args(name: str) -> list[str]:
    """``airflow celery worker`` as ``name``: no log server (it would bind every interface)."""
    return ["celery", "worker", "--celery-hostname", f"{name}@%h", "--skip-serve-logs", "--without-mingle"]


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of moto's server."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def list_objects(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every object in the bucket."""
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objects.extend(page.get("Contents", []))
    return objects


def object_versions(s3: Any, bucket: str) -> dict[str, int]:
    """How many versions each key of a versioned bucket has (how many times it was written)."""
    versions: dict[str, int] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []):
            versions[version["Key"]] = versions.get(version["Key"], 0) + 1
    return versions


def api_path(raw_path: str) -> str:
    """A request's path, decoded, without its query."""
    return unquote(urlsplit(raw_path).path)


def epoch(value: datetime | None) -> float | None:
    """A database timestamp as UNIX time (the sandbox's clock)."""
    return None if value is None else value.timestamp()


@dataclass
class Kill:
    """One SIGKILL (or restart) and what followed it."""

    name: str
    victim: str = ""  # the process killed
    task: str = ""  # the task instance it was running, e.g. create[99]
    killed_at: float | None = None
    detected_at: float | None = None  # the scheduler failed the killed try (or moved the triggers)
    resumed_on: str = ""  # the process that took the work over
    notes: dict[str, Any] = field(default_factory=dict)


def trigger_started(
    logs: Path, task_folder: str, triggerer_job: int, after: float, trigger_id: int | None = None
) -> float | None:
    """When a triggerer job first started a trigger of a task after ``after``, from the task's trigger logs.

    ``task_folder`` is the task's log folder under ``dag_id=.../run_id=...``: ``task_id=create/map_index=3``,
    or ``task_id=speak`` for a task that is not mapped; ``trigger_id`` narrows it to one trigger. A trigger
    log is one file per try and triggerer job, which the next trigger of that try on that job replaces:
    it tells about the latest trigger only.
    """
    ending = " starting" if trigger_id is None else f"(ID {trigger_id}) starting"
    starts = []
    for log in logs.glob(f"dag_id=*/run_id=*/{task_folder}/*.trigger.{triggerer_job}.log"):
        for line in log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if str(entry.get("event", "")).endswith(ending):
                    at = datetime.fromisoformat(entry["timestamp"]).timestamp()
                    if at > after:
                        starts.append(at)
    return min(starts, default=None)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def cluster_run(prefix: str, dag_file: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Cluster]:
    """A :class:`Cluster` in a throw-away folder whose DAG folder holds ``dag_file``; stopped whatever happens.

    A SIGTERM (a CI job cancelled, a timeout) stops it like Ctrl-C. The folder is removed when the
    body passes; otherwise its logs are kept and their place printed.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # PostgreSQL runs as another user when the test runs as root
    dags = root / "dags"
    dags.mkdir()
    shutil.copy(dag_file, dags / dag_file.name)
    cluster = Cluster(root, dags)
    passed = False
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield cluster
        passed = True
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous_handler)
        if passed:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(root / "postgres", ignore_errors=True)
            shutil.rmtree(root / "redis", ignore_errors=True)
            with capsys.disabled():
                print(f"\nlogs of the failed distributed run: {cluster.logs}", flush=True)


__all__ = [
    "FAST_FAILOVER",
    "HEARTBEAT_TIMEOUT",
    "WORKER_CONCURRENCY",
    "Cluster",
    "Command",
    "Database",
    "Kill",
    "SandboxClient",
    "api_path",
    "cluster_run",
    "epoch",
    "list_objects",
    "log_says",
    "log_tail",
    "object_versions",
    "s3_client",
    "trigger_started",
    "worker_args",
]
