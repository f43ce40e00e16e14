"""The command line: prints its line, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

import airflow_provider_pixverse

ROOT = Path(airflow_provider_pixverse.__file__).resolve().parent.parent


def test_cli_serves_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "airflow_provider_pixverse.sandbox", "--port", "0", "--token", "tok-1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"PIXVERSE_SANDBOX url=(http://127\.0\.0\.1:\d+) token=(\S+)\n", first)
        assert match, first
        url, token = match.groups()
        assert token == "tok-1"
        human = process.stdout.readline()
        assert "AIRFLOW_CONN_PIXVERSE_DEFAULT" in human
        conn = json.loads(human.split("=", 1)[1].strip().strip("'"))
        assert conn == {"conn_type": "pixverse", "host": url, "password": token}
        answer = requests.get(f"{url}/v2/pixverse/speech/models", headers={"Authorization": "Bearer tok-1"}, timeout=10)
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
