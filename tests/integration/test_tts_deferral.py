"""PixVerseTextToSpeechOperator in a real DAG run that defers: the job's state goes through Airflow and back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pixverse_testing import run_dag

from airflow_provider_pixverse._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_pixverse.model_list import forget_model_lists

if TYPE_CHECKING:
    import pytest

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

DAG_FILE = Path(__file__).parents[1] / "dags" / "pixverse_tts_deferral.py"


def test_a_long_text_defers_once_and_lands_one_mp3(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    forget_model_lists()
    pixverse_sandbox.set_clock(queued_seconds=0.5, generating_seconds=1.0)
    sentence = "A council meeting, a new bridge, and a vote that went late into the night. "
    text = "\n\n".join(f"Part {n}. " + sentence * 8 for n in range(20))  # about 12,000 characters: two parts
    dag_run = run_dag(DAG_FILE, "pixverse_tts_deferral", {"text": text, "destination": f"file://{tmp_path}/long.mp3"})
    assert dag_run.state == "success"
    assert pixverse_sandbox.request_counts()["create"] == 2
    assert (tmp_path / "long.mp3").is_file() and (tmp_path / "long.mp3.json").is_file()
    if not AIRFLOW_V_3_0_PLUS:
        return  # Airflow 2's dag.test() logs its tasks to their log files, not to the console
    output = "".join(capfd.readouterr())
    assert output.count("Pausing task as DEFERRED") == 1  # one deferral for both parts
    assert "[airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechClipsTrigger]" in output
    assert output.count("Joined 2 parts into one MP3") == 1
