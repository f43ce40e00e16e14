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
    assert deferred.value.timeout == timedelta(seconds=120)
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
    task.hook.sleep = lambda seconds: None
    pixverse_sandbox.add_fault("status", code=503, count=5)
    assert not task.poke({})
    assert task.poke({})


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
