from __future__ import annotations

import json
from pathlib import Path

from pixverse_testing import api_requests, run_dag

from airflow_provider_pixverse.sandbox import PixVerseSandbox

DAG_FILE = Path(__file__).parents[2] / "dags" / "pixverse_create_retry.py"


def test_a_retry_after_a_crash_creates_only_once(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.2, generating_seconds=0.2)
    # The first try dies right after the create: its first look at the clip is refused.
    pixverse_sandbox.add_fault("status", code=401, count=1, path_contains="/speech/user:")
    record = tmp_path / "clip.json"
    dag_run = run_dag(DAG_FILE, "pixverse_create_retry", {"record_to": str(record)})
    assert dag_run.state == "success"
    creates = [r for r in api_requests(pixverse_sandbox) if r.method == "POST"]
    assert len(creates) == 1
    clip = json.loads(record.read_text())
    assert clip["audio_status_name"] == "COMPLETED" and clip["prompt"] == "Paid for once."
