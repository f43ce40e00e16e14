"""A sandbox in its own process, as benchmarks need it (so its CPU is not ours)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from typing import Any


class SandboxProcess:
    """Start ``python -m airflow_provider_pixverse.sandbox`` and talk to its control surface."""

    def __init__(self, *extra_args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_pixverse.sandbox", "--port", "0", *extra_args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        fields = dict(part.split("=", 1) for part in self.process.stdout.readline().split()[1:])
        self.url, self.token = fields["url"], fields["token"]

    def connection_json(self) -> str:
        return json.dumps({"conn_type": "pixverse", "host": self.url, "password": self.token})

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sandbox{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the sandbox process so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        import os

        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
