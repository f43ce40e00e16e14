"""Helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.clock import Clock
from airflow_provider_pixverse._compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    import pytest

    from airflow_provider_pixverse.sandbox import PixVerseSandbox


class FakeClock(Clock):
    """A clock whose time moves only when something sleeps on it; records every wait asked for.

    ``now`` starts at the real time, so deadlines computed from it look like real ones.
    """

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0 and math.isfinite(seconds), f"asked to sleep {seconds!r}"
        self.waits.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    """Define a ``pixverse`` connection through its environment variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "pixverse", **fields}))


def api_requests(sandbox: PixVerseSandbox) -> list[Any]:
    """The API calls the sandbox received (media and control calls left out)."""
    return [r for r in sandbox.requests if r.kind == "api"]


def dag_bag(dag_folder: Path) -> Any:
    """A ``DagBag`` of ``dag_folder`` (a file or a folder), parsed as Airflow would."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11 and early 3.x
        from airflow.models.dagbag import DagBag

    return DagBag(dag_folder=str(dag_folder))


def run_dag(dag_file: Path, dag_id: str, conf: dict[str, Any]) -> Any:
    """Parse ``dag_file`` as Airflow would and run ``dag_id`` with ``dag.test()``."""
    bag = dag_bag(dag_file)
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not in {dag_file}"
    if not AIRFLOW_V_3_0_PLUS:
        # Airflow 2.11's dag.test() does not write the DAG to the database as its DAG processor
        # would, so the asset aliases it declares would be missing when a task emits through them.
        dag.sync_to_db()
    return dag.test(run_conf=conf)


def allow_execute_in_this_thread() -> None:
    """Let a test thread call an operator's ``execute`` as the main thread may (two runs at once).

    Airflow 2.11's guard against ``execute`` outside a task instance keeps its state in a thread-local
    that only the importing thread has; a thread of its own gets it empty. Airflow 3 has no such state.
    """
    try:
        from airflow.models.baseoperator import ExecutorSafeguard
    except ImportError:  # Airflow 3
        return
    sentinel = getattr(ExecutorSafeguard, "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}


class RecordingTaskInstance:
    """Stands in for ``context["ti"]`` where an operator runs outside a DAG run: keeps its XComs."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class MemoryStateStore:
    """The task state store's get/set/delete, kept in memory across tries of one test, as JSON (what a store keeps)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
