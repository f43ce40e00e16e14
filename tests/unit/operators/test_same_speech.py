"""One rule for "the same speech": a retry whose create answer was lost never adopts a clip that may differ.

A clip shows its text, voice, model and language, not ``speed`` and the other audio settings. Here
another task made the same text with the same voice at another speed; the retry of a request at
``speed=1.5`` must not take that clip (it would store the 1.0 audio under the 1.5 content key for
good), in the create operator and in the one-task operator alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, api_requests

from airflow_provider_pixverse.exceptions import PixVerseConnectionError, PixVerseLostAnswerError
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import (
    AUDIO_ID_STATE_KEY,
    INTENT_STATE_KEY,
    PixVerseCreateSpeechOperator,
    PixVerseTextToSpeechOperator,
)
from airflow_provider_pixverse.operators.text_to_speech import JOB_STATE_KEY

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
TEXT = "Spoken once, at one speed."


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def execute(operator: Any, store: MemoryStateStore) -> Any:
    return operator.execute({"ti": RecordingTaskInstance(), "task_state_store": store})


def creates(sandbox: PixVerseSandbox) -> int:
    return sum(r.method == "POST" for r in api_requests(sandbox))


def create_op(**kwargs: Any) -> PixVerseCreateSpeechOperator:
    return PixVerseCreateSpeechOperator(
        task_id="c", text=TEXT, voice_id=VOICE, deferrable=False, poll_interval=0.05, **kwargs
    )


def tts_op(destination: Path, **kwargs: Any) -> PixVerseTextToSpeechOperator:
    return PixVerseTextToSpeechOperator(
        task_id="t",
        text=TEXT,
        voice_id=VOICE,
        destination=str(destination),
        deferrable=False,
        poll_interval=0.05,
        **kwargs,
    )


def lose_first_create(sandbox: PixVerseSandbox, operator: Any, store: MemoryStateStore) -> None:
    """The first try's create is dropped before it reaches the API (its answer is lost; no job made)."""
    sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseConnectionError):
        execute(operator, store)


def test_create_retry_does_not_adopt_a_clip_made_at_another_speed(pixverse_sandbox: PixVerseSandbox) -> None:
    store = MemoryStateStore()
    lose_first_create(pixverse_sandbox, create_op(speed=1.5), store)
    other = pixverse_sandbox.add_clip(text=TEXT, voice_id=VOICE, status="COMPLETED")  # another task's, speed 1.0
    with pytest.raises(PixVerseLostAnswerError, match=other["audio_id"]) as refused:
        execute(create_op(speed=1.5), store)
    assert "speed" in str(refused.value)
    assert AUDIO_ID_STATE_KEY not in store.values
    assert creates(pixverse_sandbox) == 1  # the lost one only: nothing sent, nothing adopted


def test_create_retry_creates_anew_when_the_user_opted_in(pixverse_sandbox: PixVerseSandbox) -> None:
    store = MemoryStateStore()
    lose_first_create(pixverse_sandbox, create_op(speed=1.5), store)
    other = pixverse_sandbox.add_clip(text=TEXT, voice_id=VOICE, status="COMPLETED")
    clip = execute(create_op(speed=1.5, on_lost_answer="create"), store)
    assert clip["audio_id"] != other["audio_id"]
    assert creates(pixverse_sandbox) == 2


def test_create_retry_still_adopts_its_job_when_the_clip_shows_every_setting(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    store = MemoryStateStore()
    lose_first_create(pixverse_sandbox, create_op(), store)
    made = pixverse_sandbox.add_clip(text=TEXT, voice_id=VOICE, status="COMPLETED")
    assert execute(create_op(), store)["audio_id"] == made["audio_id"]
    assert creates(pixverse_sandbox) == 1


def test_tts_retry_does_not_adopt_a_clip_made_at_another_speed(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    lose_first_create(pixverse_sandbox, tts_op(tmp_path / "out.mp3", speed=1.5), store)
    other = pixverse_sandbox.add_clip(text=TEXT, voice_id=VOICE, status="COMPLETED")
    with pytest.raises(PixVerseLostAnswerError, match=other["audio_id"]):
        execute(tts_op(tmp_path / "out.mp3", speed=1.5), store)
    assert not (tmp_path / "out.mp3").exists()  # nothing stored under the 1.5 content key
    assert creates(pixverse_sandbox) == 1


@pytest.mark.parametrize("on_lost_answer", ["fail", "create"])
def test_tts_retry_whose_account_cannot_be_listed_fails_unless_opted_in(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, on_lost_answer: str
) -> None:
    """The create operator's rule for a refused listing (400) holds for the one-task operator too."""
    store = MemoryStateStore()
    lose_first_create(pixverse_sandbox, tts_op(tmp_path / "out.mp3"), store)
    assert store.values[JOB_STATE_KEY]["parts"][0]["intent"] is not None
    body = {"error": "Parameter email is required when several accounts are configured", "code": 400}
    pixverse_sandbox.add_fault("status", code=400, body=body, count=-1, path_contains="/speech/?")
    operator = tts_op(tmp_path / "out.mp3", on_lost_answer=on_lost_answer)
    if on_lost_answer == "fail":
        with pytest.raises(PixVerseLostAnswerError, match="cannot be looked for"):
            execute(operator, store)
        assert creates(pixverse_sandbox) == 1 and not (tmp_path / "out.mp3").exists()
        return
    uri = execute(operator, store)
    assert uri.endswith("out.mp3") and (tmp_path / "out.mp3").stat().st_size > 0
    assert creates(pixverse_sandbox) == 2


def test_reuse_from_never_takes_a_clip_for_a_request_with_settings_no_clip_shows(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.add_clip(text=TEXT, voice_id=VOICE, status="COMPLETED")
    execute(create_op(speed=1.5, reuse_from=50), MemoryStateStore())
    assert creates(pixverse_sandbox) == 1


def test_an_intent_of_an_earlier_release_is_still_read(pixverse_sandbox: PixVerseSandbox) -> None:
    store = MemoryStateStore()
    store.set(
        INTENT_STATE_KEY,
        {"text_sha256": "0" * 64, "voice_id": VOICE, "model": "speech-2.8-hd", "email": None, "recorded_at": 0.0},
    )
    made = pixverse_sandbox.add_clip(text=TEXT, voice_id=VOICE, status="COMPLETED")
    assert execute(create_op(), store)["audio_id"] == made["audio_id"]
