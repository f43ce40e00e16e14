from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from pixverse_testing import RecordingTaskInstance, api_requests

from airflow_provider_pixverse._api import PixVerseInvalidInputError, PixVerseJobFailedError
from airflow_provider_pixverse.operators.pixverse import AUDIO_ID_STATE_KEY, PixVerseCreateSpeechOperator

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


class MemoryStateStore:
    """The task state store's get/set/delete, kept in memory across tries of one test."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def run(
    operator: PixVerseCreateSpeechOperator, store: MemoryStateStore | None = None
) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    context: dict[str, Any] = {"ti": ti}
    if store is not None:
        context["task_state_store"] = store
    return operator.execute(context), ti


def creates(sandbox: PixVerseSandbox) -> list[Any]:
    return [r for r in api_requests(sandbox) if r.method == "POST"]


def test_creates_and_waits(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.1, generating_seconds=0.1)
    store = MemoryStateStore()
    operator = PixVerseCreateSpeechOperator(
        task_id="c",
        text="Hello world",
        voice_id=VOICE,
        model="speech-2.8-turbo",
        speed=1.5,
        emotion="calm",
        deferrable=False,
        poll_interval=0.05,
    )
    clip, ti = run(operator, store)
    assert clip["audio_status_name"] == "COMPLETED" and clip["model"] == "speech-2.8-turbo"
    assert store.values[AUDIO_ID_STATE_KEY] == clip["audio_id"]
    assert ti.xcoms["pixverse_audio_url"] == clip["url"]
    (create,) = creates(pixverse_sandbox)
    for field, value in (("speed", b"1.5"), ("emotion", b"calm"), ("model", b"speech-2.8-turbo")):
        assert f'name="{field}"'.encode() in create.body and value in create.body


def test_returns_the_audio_id_without_waiting(pixverse_sandbox: PixVerseSandbox) -> None:
    audio_id, _ = run(PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False))
    assert audio_id.startswith("user:") and len(api_requests(pixverse_sandbox)) == 1


def test_defers_after_saving_the_audio_id(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    store = MemoryStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        run(PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE), store)
    assert deferred.value.trigger.audio_id == store.values[AUDIO_ID_STATE_KEY]
    assert deferred.value.kwargs == {"resubmits": 0}


def test_a_new_try_resumes_instead_of_creating(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    store = MemoryStateStore()
    operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE)
    for _ in range(3):  # three tries, each dying while waiting
        with pytest.raises(TaskDeferred):
            run(operator, store)
    assert len(creates(pixverse_sandbox)) == 1


def test_a_failed_earlier_clip_is_created_anew(pixverse_sandbox: PixVerseSandbox) -> None:
    failed = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="FAILED", fail_code="E", fail_reason="r")
    store = MemoryStateStore()
    store.set(AUDIO_ID_STATE_KEY, failed["audio_id"])
    audio_id, _ = run(
        PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False), store
    )
    assert audio_id != failed["audio_id"] and store.values[AUDIO_ID_STATE_KEY] == audio_id
    assert len(creates(pixverse_sandbox)) == 1


def test_resubmits_a_failed_job(pixverse_sandbox: PixVerseSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.05)
    pixverse_sandbox.fail_next_jobs(2, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    operator = PixVerseCreateSpeechOperator(
        task_id="c", text="Hi", voice_id=VOICE, resubmit_on_failure=2, deferrable=False, poll_interval=0.05
    )
    clip, _ = run(operator, MemoryStateStore())
    assert clip["audio_status_name"] == "COMPLETED"
    assert len(creates(pixverse_sandbox)) == 3
    assert "".join(capsys.readouterr()).count("synthesis backend timeout") >= 2


def test_gives_up_after_the_resubmits(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.05)
    pixverse_sandbox.fail_next_jobs(2, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    operator = PixVerseCreateSpeechOperator(
        task_id="c", text="Hi", voice_id=VOICE, resubmit_on_failure=1, deferrable=False, poll_interval=0.05
    )
    with pytest.raises(PixVerseJobFailedError, match="synthesis backend timeout"):
        run(operator, MemoryStateStore())
    assert len(creates(pixverse_sandbox)) == 2


def test_resubmit_after_the_trigger_reports_failed(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    failed = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="FAILED", fail_code="E", fail_reason="r")
    operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, resubmit_on_failure=1)
    event = {"status": "failed", "audio_id": failed["audio_id"], "clip": failed, "message": "", "error_type": None}
    context = {"ti": RecordingTaskInstance(), "task_state_store": MemoryStateStore()}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute_complete(context, event, resubmits=0)
    assert deferred.value.kwargs == {"resubmits": 1}
    assert len(creates(pixverse_sandbox)) == 1


def test_without_a_state_store_it_warns(pixverse_sandbox: PixVerseSandbox, capsys: pytest.CaptureFixture[str]) -> None:
    run(PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False))
    assert "No task state store" in "".join(capsys.readouterr())


def test_bad_settings_fail_before_any_call(pixverse_sandbox: PixVerseSandbox) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="pitch=40"):
        run(PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, pitch=40))
    assert api_requests(pixverse_sandbox) == []
