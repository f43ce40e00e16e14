"""The Airflow CLI sees the provider: its hooks, and a `pixverse` connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any


def airflow(*args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "-o", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(done.stdout[done.stdout.index("[") :])


def test_providers_list_and_hooks() -> None:
    providers = airflow("providers", "list")
    assert any(p["package_name"] == "airflow-provider-pixverse" for p in providers)
    hooks = airflow("providers", "hooks")
    (pixverse,) = [h for h in hooks if h["connection_type"] == "pixverse"]
    assert pixverse["class"] == "airflow_provider_pixverse.hooks.pixverse.PixVerseHook"
    assert pixverse["package_name"] == "airflow-provider-pixverse"


def test_connections_get_of_a_pixverse_connection() -> None:
    conn = {"conn_type": "pixverse", "host": "http://127.0.0.1:9", "password": "t0ken", "extra": {"email": "a@b.c"}}
    (got,) = airflow("connections", "get", "pixverse_cli", env={"AIRFLOW_CONN_PIXVERSE_CLI": json.dumps(conn)})
    assert got["conn_type"] == "pixverse"
    assert got["host"] == "http://127.0.0.1:9"
    extra = got["extra_dejson"]
    assert (json.loads(extra) if isinstance(extra, str) else extra)["email"] == "a@b.c"
