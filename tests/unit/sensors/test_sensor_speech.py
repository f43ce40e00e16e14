from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from pixverse_testing import api_requests, run_dag

from airflow_provider_pixverse._api import PixVerseAuthError, PixVerseJobFailedError, PixVerseNotFoundError
from airflow_provider_pixverse.operators.base import DEFERRAL_GRACE_SECONDS
from airflow_provider_pixverse.sensors.pixverse import PixVerseSpeechSensor
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


SENSOR_DAGS = Path(__file__).parents[2] / "dags" / "pixverse_sensor_modes.py"


@pytest.mark.parametrize("mode", ["deferrable", "poke", "reschedule"])
def test_sensor_waits_for_a_clip_in_every_mode(
    airflow_db: Path, pixverse_sandbox: PixVerseSandbox, tmp_path: Path, mode: str
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=1.5, generating_seconds=1.5)
    record = tmp_path / "clip.json"
    dag_run = run_dag(SENSOR_DAGS, f"pixverse_sensor_{mode}", {"record_to": str(record)})
    assert dag_run.state == "success"
    clip = json.loads(record.read_text())
    audio_id = clip["audio_id"]
    assert clip["audio_status_name"] == "COMPLETED" and clip["prompt"].startswith("Waiting for this")
    polls = [r for r in api_requests(pixverse_sandbox) if audio_id in r.raw_path]
    assert len(polls) >= 3


def sensor(**kwargs: Any) -> PixVerseSpeechSensor:
    return PixVerseSpeechSensor(task_id="wait", **kwargs)


def test_defers_with_the_timeout_and_no_secret(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    task = sensor(audio_id=audio_id, poke_interval=3, timeout=120)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, PixVerseSpeechTrigger)
    # Airflow's own limit lies a grace period past the trigger's deadline, which fires first.
    assert timedelta(seconds=120) < deferred.value.timeout <= timedelta(seconds=120 + DEFERRAL_GRACE_SECONDS)
    assert deferred.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["audio_id"] == audio_id and kwargs["poll_interval"] == 3
    assert before + 120 <= kwargs["end_time"] <= time.time() + 120
    assert pixverse_sandbox.token not in json.dumps(kwargs)
    assert len(api_requests(pixverse_sandbox)) == 1


def test_final_clip_returns_without_deferring(pixverse_sandbox: PixVerseSandbox) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")
    assert sensor(audio_id=clip["audio_id"]).execute({}) == clip


def test_failed_clip_fails_with_code_and_reason(pixverse_sandbox: PixVerseSandbox) -> None:
    clip = pixverse_sandbox.add_clip(
        text="Hi", voice_id=VOICE, status="FAILED", fail_code="E7", fail_reason="provider overloaded"
    )
    with pytest.raises(PixVerseJobFailedError) as info:
        sensor(audio_id=clip["audio_id"]).execute({})
    for part in (clip["audio_id"], "E7", "provider overloaded"):
        assert part in str(info.value)


def test_failed_clip_can_be_returned_for_branching(pixverse_sandbox: PixVerseSandbox) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="FAILED", fail_code="E7", fail_reason="x")
    assert sensor(audio_id=clip["audio_id"], fail_on_failed_status=False).execute({})["fail_code"] == "E7"


def test_permanent_error_fails_the_poke(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.add_fault("status", code=401, count=-1)
    with pytest.raises(PixVerseAuthError):
        sensor(audio_id="user:1-pixverse:a@b.c-speech:1").execute({})


def test_transient_error_is_not_yet(pixverse_sandbox: PixVerseSandbox) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    task = sensor(audio_id=audio_id)
    pixverse_sandbox.add_fault("status", code=503, count=1)
    assert not task.poke({})
    assert task.poke({})
    assert len(api_requests(pixverse_sandbox)) == 2  # a poke looks once: the next poke is the retry


def event(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "audio_id": "a-1",
        "clip": None,
        "message": f"it is {status}",
        "error_type": None,
        **extra,
    }


def test_resume_with_the_final_clip() -> None:
    clip = {"audio_id": "a-1", "audio_status": 1, "audio_status_final": True, "url": "https://m/a.mp3"}
    assert sensor(audio_id="a-1").execute_complete({}, event("success", clip=clip)) == clip


def test_resume_after_timeout_raises_sensor_timeout_or_skips_with_soft_fail() -> None:
    with pytest.raises(AirflowSensorTimeout, match="it is timeout"):
        sensor(audio_id="a-1").resume_execution("execute_complete", {"event": event("timeout")}, {})
    with pytest.raises(AirflowSkipException):
        sensor(audio_id="a-1", soft_fail=True).resume_execution("execute_complete", {"event": event("timeout")}, {})


def test_resume_after_error_raises_the_same_error_class() -> None:
    with pytest.raises(PixVerseNotFoundError, match="it is error"):
        sensor(audio_id="a-1").execute_complete({}, event("error", error_type="PixVerseNotFoundError"))


def test_audio_id_is_templated() -> None:
    assert "audio_id" in PixVerseSpeechSensor.template_fields


def final_but_unknown(sandbox: PixVerseSandbox) -> str:
    """A clip whose answers say final with a status that is neither COMPLETED nor FAILED."""
    audio_id = sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    body = {"audio_id": audio_id, "audio_status": 42, "audio_status_name": "ARCHIVED", "audio_status_final": True}
    sandbox.add_fault("status", code=200, body=body, count=-1)
    return audio_id


@pytest.mark.parametrize("deferrable", [True, False])
def test_final_and_not_completed_is_never_success(pixverse_sandbox: PixVerseSandbox, deferrable: bool) -> None:
    task = sensor(audio_id=final_but_unknown(pixverse_sandbox), deferrable=deferrable)
    with pytest.raises(PixVerseJobFailedError, match="ARCHIVED"):
        task.execute({}) if deferrable else task.poke({})


def test_final_and_not_completed_from_the_trigger_is_never_success() -> None:
    clip = {"audio_id": "a-1", "audio_status": 42, "audio_status_final": True}
    with pytest.raises(PixVerseJobFailedError, match="42"):
        sensor(audio_id="a-1").execute_complete({}, event("failed", clip=clip))


def test_retries_before_deferring_spend_from_the_timeout(pixverse_sandbox: PixVerseSandbox) -> None:
    """Facing 429s, the sensor defers at once (one look) with the deadline its timeout gives."""
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, retry_after="5", count=-1)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor(audio_id=audio_id, timeout=3).execute({})
    assert time.time() - before < 2
    assert deferred.value.trigger.serialize()[1]["end_time"] <= before + 3 + 0.5
    assert len(api_requests(pixverse_sandbox)) == 1


def test_connection_id_is_templated(airflow_db: Path) -> None:
    from airflow.providers.common.compat.sdk import DAG

    with DAG("templated_sensor", schedule=None) as dag:
        task = sensor(audio_id="{{ params.id }}", pixverse_conn_id="{{ params.conn }}")
    task.render_template_fields({"params": {"id": "user:1-pixverse:a@b.c-speech:1", "conn": "pixverse_two"}})
    assert (task.audio_id, task.pixverse_conn_id) == ("user:1-pixverse:a@b.c-speech:1", "pixverse_two")
    assert dag.task_dict["wait"] is task
