from __future__ import annotations

import json
from pathlib import Path

import pytest
from pixverse_testing import api_requests, run_dag

from airflow_provider_pixverse._compat import HAS_TASK_STATE_STORE
from airflow_provider_pixverse.sandbox import PixVerseSandbox

DAG_FILE = Path(__file__).parents[2] / "dags" / "pixverse_create_retry.py"


def test_a_retry_after_a_crash_creates_only_once(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Airflow 3.3+: the retry resumes the clip. Before 3.3 (no task state store) it warns and creates again."""
    pixverse_sandbox.set_clock(queued_seconds=0.2, generating_seconds=0.2)
    # The first try dies right after the create: its first look at the clip is refused.
    pixverse_sandbox.add_fault("status", code=401, count=1, path_contains="/speech/user:")
    record = tmp_path / "clip.json"
    dag_run = run_dag(DAG_FILE, "pixverse_create_retry", {"record_to": str(record)})
    assert dag_run.state == "success"
    creates = [r for r in api_requests(pixverse_sandbox) if r.method == "POST"]
    if HAS_TASK_STATE_STORE:
        assert len(creates) == 1
    else:
        assert len(creates) == 2
        assert "No task state store (it needs Airflow 3.3+)" in caplog.text
    clip = json.loads(record.read_text())
    assert clip["audio_status_name"] == "COMPLETED" and clip["prompt"] == "Paid for once."
