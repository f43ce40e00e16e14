from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, api_requests

from airflow_provider_pixverse._api import PixVerseInvalidInputError, PixVerseJobFailedError
from airflow_provider_pixverse.exceptions import PixVerseBadRequestError, PixVerseLostAnswerError
from airflow_provider_pixverse.operators.pixverse import AUDIO_ID_STATE_KEY, PixVerseCreateSpeechOperator

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


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


def test_airflow_alert_email_in_default_args_is_not_the_pixverse_account(
    airflow_db: Any, pixverse_sandbox: PixVerseSandbox
) -> None:
    from airflow.providers.common.compat.sdk import DAG

    with DAG("alerts", schedule=None, default_args={"email": ["oncall@corp.example"]}):
        operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False)
    run(operator)
    assert operator.email == ["oncall@corp.example"]  # Airflow's alert address, untouched
    (create,) = creates(pixverse_sandbox)
    assert b"oncall@corp.example" not in create.body


def test_the_pixverse_account_can_come_from_default_args(airflow_db: Any, pixverse_sandbox: PixVerseSandbox) -> None:
    from airflow.providers.common.compat.sdk import DAG

    with DAG("accounts", schedule=None, default_args={"account_email": "voices@corp.example", "email": "x@y.z"}):
        operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False)
    audio_id, _ = run(operator)
    assert "voices@corp.example" in audio_id and operator.email == "x@y.z"
    (create,) = creates(pixverse_sandbox)
    assert b'name="email"' in create.body and b"voices@corp.example" in create.body


def test_a_create_whose_answer_was_lost_is_found_not_sent_again(pixverse_sandbox: PixVerseSandbox) -> None:
    """The POST reached the server and made a job, the answer never came back: the retry resumes that job."""
    from airflow_provider_pixverse.exceptions import PixVerseConnectionError

    store = MemoryStateStore()
    text = "Spoken once, paid once."
    pixverse_sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseConnectionError) as lost:
        run(PixVerseCreateSpeechOperator(task_id="c", text=text, voice_id=VOICE, deferrable=False), store)
    assert lost.value.request_sent
    # What the lost request made on the server, and a job of another intent (same text, other voice).
    made = pixverse_sandbox.add_clip(text=text, voice_id=VOICE, status="COMPLETED")
    pixverse_sandbox.add_clip(text=text, voice_id="minimax_english_calm_narrator", status="COMPLETED")
    assert AUDIO_ID_STATE_KEY not in store.values and store.values["pixverse_create_intent"]["voice_id"] == VOICE
    clip, _ = run(PixVerseCreateSpeechOperator(task_id="c", text=text, voice_id=VOICE, deferrable=False), store)
    assert clip["audio_id"] == made["audio_id"] == store.values[AUDIO_ID_STATE_KEY]
    assert len(creates(pixverse_sandbox)) == 1  # the lost one only


def test_an_intent_with_no_job_to_show_creates(pixverse_sandbox: PixVerseSandbox) -> None:
    store = MemoryStateStore()
    pixverse_sandbox.add_fault("status", code=500, count=1, path_contains="/speech/create")
    operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False)
    with pytest.raises(Exception, match="500"):  # it may have made a job: the intent stays
        run(operator, store)
    audio_id, _ = run(
        PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False), store
    )
    assert audio_id == store.values[AUDIO_ID_STATE_KEY]
    assert len(creates(pixverse_sandbox)) == 2


def test_the_link_is_empty_not_missing_before_there_is_a_url(pixverse_sandbox: PixVerseSandbox) -> None:
    _, ti = run(PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False))
    assert ti.xcoms["pixverse_audio_url"] == ""


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://user:secret@media.example/a.mp3", "https://media.example/a.mp3"),
        ("javascript:alert(1)", ""),
        ("file:///etc/passwd", ""),
    ],
)
def test_only_a_checked_media_url_becomes_the_link(pixverse_sandbox: PixVerseSandbox, url: str, link: str) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")
    pixverse_sandbox.add_fault("status", code=200, body={**clip, "url": url}, count=-1, path_contains="/speech/user:")
    operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, deferrable=False)
    ti = RecordingTaskInstance()
    if link:
        result = operator.execute({"ti": ti})
        assert "secret" not in str(ti.xcoms) and result["audio_id"]
    else:
        with pytest.raises(PixVerseInvalidInputError, match="refusing"):
            operator.execute({"ti": ti})
    assert ti.xcoms["pixverse_audio_url"] == link


def _intent_whose_account_cannot_be_listed(pixverse_sandbox: PixVerseSandbox) -> MemoryStateStore:
    body = {"error": "Parameter email is required when several accounts are configured", "code": 400}
    pixverse_sandbox.add_fault("status", code=400, body=body, count=-1, path_contains="/speech/?")
    store = MemoryStateStore()
    store.set(
        "pixverse_create_intent",
        {"text_sha256": "0" * 64, "voice_id": VOICE, "model": "speech-2.8-hd", "email": None, "recorded_at": 0.0},
    )
    return store


def test_an_intent_whose_account_cannot_be_listed_fails_clearly_and_pays_nothing(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    """The job an earlier try may have made cannot be looked for: fail, naming why, rather than pay again."""
    store = _intent_whose_account_cannot_be_listed(pixverse_sandbox)
    operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False)
    with pytest.raises(PixVerseLostAnswerError, match="cannot be looked for.*email is required.*on_lost_answer"):
        run(operator, store)
    assert len(creates(pixverse_sandbox)) == 0


def test_an_intent_whose_account_cannot_be_listed_creates_when_opted_in(pixverse_sandbox: PixVerseSandbox) -> None:
    store = _intent_whose_account_cannot_be_listed(pixverse_sandbox)
    operator = PixVerseCreateSpeechOperator(
        task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False, on_lost_answer="create"
    )
    audio_id, _ = run(operator, store)
    assert audio_id == store.values[AUDIO_ID_STATE_KEY]
    assert len(creates(pixverse_sandbox)) == 1
    # a 400 to a page of 100 is asked again at the API's documented page of 50, once; refused too, it stands
    assert [r.endpoint for r in pixverse_sandbox.requests if r.kind == "api"] == ["list", "list", "create"]


def test_a_create_naming_no_account_where_several_are_known_is_refused_like_the_listing(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    """The sandbox refuses a create without email as it refuses the listing: nothing is made, nothing paid."""
    pixverse_sandbox.add_clip(email="one@example.com")
    pixverse_sandbox.add_clip(email="two@example.com")
    operator = PixVerseCreateSpeechOperator(task_id="c", text="Hi", voice_id=VOICE, wait_for_completion=False)
    with pytest.raises(PixVerseBadRequestError, match="email is required"):
        run(operator, MemoryStateStore())
    assert pixverse_sandbox.create_outcomes() == {"accepted": 0, "busy": 0, "refused": 1}
