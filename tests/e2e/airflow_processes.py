"""Run Airflow components as subprocesses of a test: start, kill (with their children), read logs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import psutil
import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# Variables passed through from the test's environment; everything else (AIRFLOW_*, PYTEST_*, ...) stays out.
PASS_THROUGH = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ", "VIRTUAL_ENV")
# How long Airflow may take to come up: a fresh clone (nothing compiled, cold disk cache) on a busy
# 2-core machine needs minutes, an idle one 10-20 s. Waits poll for readiness and end as soon as it is there.
STARTUP_TIMEOUT = 240.0
REQUEST_TIMEOUT = 60.0  # one request to a server that is up, but may still be busy starting the others
_ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)
_BASE = re.compile(r"""<base\b[^>]*?\bhref=["']([^"']+)["']""", re.IGNORECASE)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_env(home: Path, dags_folder: Path, api_port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for Airflow processes in a throw-away ``home``, tuned for a fast test."""
    env = {key: os.environ[key] for key in PASS_THROUGH if key in os.environ}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        # One secret for every process: tokens the scheduler signs must pass the api-server.
        "AIRFLOW__API_AUTH__JWT_SECRET": "pixverse-e2e-jwt-secret-not-for-production",
        "AIRFLOW__API__SECRET_KEY": "pixverse-e2e-secret-key-not-for-production",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(dags_folder), "refresh_interval": 0},
                }
            ]
        ),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "1",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        # A killed triggerer's triggers go to a live one once its heartbeat is this many seconds old.
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env |= dict(extra or {})
    return env


def run_airflow(args: list[str], env: Mapping[str, str], log: Path, timeout: float = 180) -> None:
    """Run an ``airflow`` command to its end; fail with its log tail when it does not succeed."""
    with log.open("ab") as out:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}:\n{log_tail(log)}")


def log_tail(log: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (or a note that there is none)."""
    if not log.exists():
        return f"({log} does not exist)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


class AirflowProcess:
    """One long-running ``airflow <command>``, in its own session, its output in ``<logs>/<name>.log``."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], logs: Path) -> None:
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log = logs / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AirflowProcess:
        """Start the process in a new session (so its process group can be killed as one)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "airflow", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        """The process id (the process group id too)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The end of the process's log, headed by its name and exit code."""
        code = None if self.process is None else self.process.poll()
        return (
            f"--- {self.name} (pid {self.process and self.process.pid}, exit {code}) ---\n{log_tail(self.log, lines)}"
        )

    def kill(self) -> list[int]:
        """SIGKILL the process, its process group and every descendant; returns their ids (the process first)."""
        if self.process is None or self.process.returncode is not None:
            return []  # reaped already: its pid, the group id, may belong to someone else now
        pgid = self.process.pid
        children = _children(pgid)
        _signal_group(pgid, signal.SIGKILL)
        # A task runner makes a process group of its own.
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self.process.wait(timeout=10)
        psutil.wait_procs(children, timeout=10)
        return [pgid, *(child.pid for child in children)]


def stop_all(processes: list[AirflowProcess], grace: float = 5.0) -> None:
    """SIGTERM every process group at once; SIGKILL whatever still runs after ``grace`` s, children included."""
    running = [p for p in processes if p.process is not None and p.process.poll() is None]
    children = [child for p in running for child in _children(p.pid)]
    for process in running:
        _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.alive() for p in running):
        time.sleep(0.1)
    for process in running:
        process.kill()
    # What outlived its parent (psutil refuses to signal a pid that was reused).
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(children, timeout=5)


def still_running(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (zombies count as gone)."""
    running = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                running.append(pid)
    return running


def _children(pid: int) -> list[psutil.Process]:
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class NotYet(Exception):
    """Raised by a :func:`wait_for` check: not ready yet, and why (shown if the wait times out)."""


def wait_for(
    what: str,
    check: Callable[[], Any],
    *,
    timeout: float,
    processes: list[AirflowProcess],
    interval: float = 0.5,
) -> Any:
    """Call ``check`` until it returns something truthy; fail with the processes' log tails on timeout.

    A check that raises ``requests.RequestException`` or :class:`NotYet` counts as "not yet". A
    process that exits early fails the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        dead = [p for p in processes if not p.alive()]
        if dead:
            raise AssertionError(f"while waiting for {what}, {dead[0].name} exited:\n{_tails(processes)}")
        try:
            result = check()
        except (requests.RequestException, NotYet) as exc:
            result, last = None, exc
        else:
            last = result
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}):\n{_tails(processes)}")


def _tails(processes: list[AirflowProcess]) -> str:
    return "\n".join(p.tail() for p in processes)


def health(base_url: str, components: tuple[str, ...]) -> dict[str, Any]:
    """The api-server's health answer when the metadatabase and every one of ``components`` is healthy.

    ``components`` are keys of ``GET /api/v2/monitor/health``: scheduler, triggerer, dag_processor.
    Raises :class:`NotYet` naming what is not healthy yet.
    """
    response = requests.get(f"{base_url}/api/v2/monitor/health", timeout=REQUEST_TIMEOUT)
    if response.status_code != 200:
        raise NotYet(f"health: HTTP {response.status_code}")
    body: dict[str, Any] = response.json()
    sick = [c for c in ("metadatabase", *components) if (body.get(c) or {}).get("status") != "healthy"]
    if sick:
        raise NotYet(f"not healthy yet: {', '.join(sick)} ({body})")
    return body


def wait_until_healthy(
    base_url: str, processes: list[AirflowProcess], components: tuple[str, ...], timeout: float = STARTUP_TIMEOUT
) -> dict[str, Any]:
    """Wait until the api-server answers and reports ``components`` healthy (their heartbeats are fresh)."""
    what = f"the api-server to report {', '.join(('metadatabase', *components))} healthy"
    result: dict[str, Any] = wait_for(what, lambda: health(base_url, components), timeout=timeout, processes=processes)
    return result


def _fetch_page_and_assets(base_url: str, path: str) -> int:
    """GET a UI page and every script, style sheet and icon it names; the bytes fetched."""
    page = requests.get(base_url + path, timeout=REQUEST_TIMEOUT)
    if page.status_code != 200 or "html" not in page.headers.get("Content-Type", ""):
        raise NotYet(f"GET {path}: HTTP {page.status_code} {page.headers.get('Content-Type')}")
    base = _BASE.search(page.text)
    root = urljoin(page.url, base.group(1)) if base else page.url
    fetched = len(page.content)
    for ref in _ASSET.findall(page.text):
        url = urljoin(root, ref)
        if not url.startswith(base_url) or url.rstrip("/") == base_url:
            continue
        asset = requests.get(url, timeout=REQUEST_TIMEOUT)
        # A wrong path comes back as the single-page app's HTML, with 200: that is not the asset.
        if asset.status_code != 200 or (ref.endswith(".js") and "html" in asset.headers.get("Content-Type", "")):
            raise NotYet(f"GET {url} (named by {path}): HTTP {asset.status_code} {asset.headers.get('Content-Type')}")
        fetched += len(asset.content)
    return fetched


def warm_ui(
    base_url: str,
    processes: list[AirflowProcess],
    paths: tuple[str, ...] = ("/", "/auth/login/"),
    timeout: float = STARTUP_TIMEOUT,
) -> int:
    """Load the UI's pages and their assets once, so that a browser's first visit finds them served and cached.

    Returns the bytes fetched; fails with the processes' logs when the UI does not answer in time.
    """

    def load() -> int:
        return sum(_fetch_page_and_assets(base_url, path) for path in paths)

    fetched: int = wait_for("the UI pages and their assets", load, timeout=timeout, processes=processes)
    return fetched


def simple_auth_env(home: Path, users: Mapping[str, str]) -> dict[str, str]:
    """Settings for a real login with the simple auth manager: ``users`` (name -> password), all admins.

    Writes the passwords file into ``home``; merge the result over :func:`airflow_env`'s.
    """
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps(dict(users)))
    return {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:admin" for name in users),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
    }


class AirflowApi:
    """The Airflow REST API v2, with a bearer token when the auth manager asks for one."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> AirflowApi:
        """A client with a token from ``POST /auth/token`` (the simple auth manager's login)."""
        response = requests.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=REQUEST_TIMEOUT
        )
        assert response.ok, f"POST /auth/token as {username}: {response.status_code} {response.text}"
        return cls(base_url, response.json()["access_token"])

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request to ``/api/v2{path}``."""
        return self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=REQUEST_TIMEOUT, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON body; fail on an error status."""
        response = self.call(method, path, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()
