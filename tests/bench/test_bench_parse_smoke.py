"""Smoke run of the DAG-parse benchmark (two repetitions) so it does not rot; no timing asserts.

.venv/bin/python -m pytest tests/bench/test_bench_parse_smoke.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_pixverse._compat import AIRFLOW_V_3_0_PLUS

BENCH = Path(__file__).resolve().parents[2] / "bench" / "parse.py"


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="bench/parse.py parses with the Task SDK (airflow.sdk), which Airflow 2.11 lacks"
)
def test_parse_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "parse.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--repeat", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0] for line in done.stdout.splitlines() if line.strip()}
    assert {"baseline", "pixverse", "http"} <= rows
    assert any(line.strip().startswith(("PASS:", "MISS:")) for line in done.stdout.splitlines())
    results = json.loads(out.read_text())
    assert set(results["stats"]) == {"baseline", "pixverse", "http"}
    assert all(len(results["samples"][kind]["seconds"]) == 2 for kind in results["samples"])
