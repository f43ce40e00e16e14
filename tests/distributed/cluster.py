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
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
import requests
from cryptography.fernet import Fernet
from e2e.airflow_processes import AirflowProcess, airflow_env, free_port, log_tail, run_airflow, stop_all, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

SITE = Path(__file__).resolve().parent / "site"  # the hostname_callable module
STARTUP_TIMEOUT = 120.0


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

    def listing(self) -> list[dict[str, Any]]:
        """Every clip, as the API lists it."""
        response = self.session.get(
            f"{self.url}/v2/pixverse/speech",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.ok, f"speech listing: {response.status_code} {response.text[:500]}"
        clips: list[dict[str, Any]] = response.json()["data"]
        return clips

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
        user = _postgres_user()
        folder = self.root / "postgres"
        folder.mkdir()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        data = folder / "data"
        binaries = postgres_bin()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}
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
        argv = [
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
        self._start(Command("postgres", argv, env, self.logs, user=user, cwd=folder), self.servers)
        admin = f"host=127.0.0.1 port={self.pg_port} user=airflow dbname=postgres"

        def accepting() -> bool:
            try:
                conn = psycopg2.connect(admin, connect_timeout=2)
            except psycopg2.OperationalError:
                return False
            conn.close()
            return True

        self.until("PostgreSQL to accept connections", accepting)
        conn = psycopg2.connect(admin)
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("CREATE DATABASE airflow")
        conn.close()
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.pg_port}/airflow"

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

    def start_sandbox(self, queued_seconds: float, generating_seconds: float) -> SandboxClient:
        """The PixVerse sandbox in its own process."""
        self.sandbox_port = free_port()
        argv = [
            sys.executable,
            "-m",
            "airflow_provider_pixverse.sandbox",
            "--port",
            str(self.sandbox_port),
            "--token",
            self.sandbox_token,
            # About kills, not the account's job limit (tests/e2e/test_account_queue.py is): no limit.
            "--max-jobs",
            "none",
            "--queued-seconds",
            str(queued_seconds),
            "--generating-seconds",
            str(generating_seconds),
        ]
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        self._start(Command("sandbox", argv, env | {"PYTHONUNBUFFERED": "1"}, self.logs), self.servers)
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
                "PYTHONPATH": str(SITE),
                **extra,
            },
        )

    def migrate(self) -> None:
        """``airflow db migrate`` against PostgreSQL."""
        run_airflow(["db", "migrate"], self.env, self.logs / "db-migrate.log", timeout=300)

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


__all__ = ["Cluster", "Command", "Database", "SandboxClient", "log_says", "log_tail"]
