"""PixVerseTextToSpeechOperator against the sandbox: pay once, know the cost first, long texts, retries."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, api_requests

from airflow_provider_pixverse.exceptions import (
    DestinationExistsError,
    PixVerseInvalidInputError,
    PixVerseJobFailedError,
    PixVersePaymentError,
    PixVerseResponseError,
)
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator
from airflow_provider_pixverse.operators.text_to_speech import ESTIMATE_XCOM_KEY, JOB_STATE_KEY
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechClipsTrigger, PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
EMAIL = "sandbox@example.com"


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()  # each test's sandbox is another API


def tts(text: Any, destination: str, **kwargs: Any) -> PixVerseTextToSpeechOperator:
    kwargs.setdefault("deferrable", False)
    kwargs.setdefault("poll_interval", 0.05)
    return PixVerseTextToSpeechOperator(task_id="speak", text=text, voice_id=VOICE, destination=destination, **kwargs)


def run(
    operator: PixVerseTextToSpeechOperator, store: MemoryStateStore | None = None
) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    context: dict[str, Any] = {"ti": ti, "task_state_store": store if store is not None else MemoryStateStore()}
    return operator.execute(context), ti


def creates(sandbox: PixVerseSandbox) -> list[Any]:
    return [r for r in api_requests(sandbox) if r.method == "POST"]


def test_text_in_mp3_out_with_its_metadata(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.set_credits(1000)
    text = "Hello from the one-task operator."
    uri, ti = run(tts(text, f"file://{tmp_path}/hello.mp3", model="speech-2.8-turbo", speed=1.2))
    mp3 = tmp_path / "hello.mp3"
    assert uri == f"file://{mp3}"
    assert len(creates(pixverse_sandbox)) == 1
    spent = 1000 - pixverse_sandbox.credits_left()
    estimate = ti.xcoms[ESTIMATE_XCOM_KEY]
    assert estimate["credits"] == spent == 0.5 and estimate["parts"] == 1 and estimate["characters"] == len(text)
    metadata = ti.xcoms["pixverse_speech"]
    assert metadata["sha256"] == hashlib.sha256(mp3.read_bytes()).hexdigest()
    assert metadata["bytes"] == mp3.stat().st_size
    assert metadata["credits_charged"] == metadata["credits_estimated"] == 0.5
    assert metadata["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert metadata["settings"] == {"speed": 1.2} and metadata["model"] == "speech-2.8-turbo"
    assert metadata["voice_id"] == VOICE and len(metadata["audio_ids"]) == 1 and metadata["duration"] > 1
    assert metadata["reused"] is False and metadata["created_at"]
    assert json.loads((tmp_path / "hello.mp3.json").read_text()) == metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.mp3", "hello.mp3.json"]


def test_the_same_speech_again_sends_no_create(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pixverse_sandbox.set_credits(1000)
    first, _ = run(tts("Pay once.", f"file://{tmp_path}/out/"))
    left = pixverse_sandbox.credits_left()
    pixverse_sandbox.reset_request_counts()
    # The same request, written differently: line ends, surrounding space, speed 1 and 1.0.
    again, ti = run(tts("  Pay once.\r\n", f"file://{tmp_path}/out/"))
    assert again == first and Path(first.removeprefix("file://")).name.startswith("pixverse-")
    assert pixverse_sandbox.request_counts()["create"] == 0
    assert pixverse_sandbox.credits_left() == left
    assert "no create sent, 0 credits" in "".join(capsys.readouterr())
    assert ti.xcoms[ESTIMATE_XCOM_KEY]["credits"] == 0
    assert ti.xcoms["pixverse_speech"]["reused"] is True and ti.xcoms["pixverse_speech"]["credits_charged"] == 0


def test_a_changed_setting_makes_exactly_one_new_create(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    destination = f"file://{tmp_path}/article.mp3"
    run(tts("The same words.", destination, speed=1.0))
    run(tts("The same words.", destination, speed=1))  # the same number
    assert len(creates(pixverse_sandbox)) == 1
    run(tts("The same words.", destination, speed=1.5, overwrite=True))
    assert len(creates(pixverse_sandbox)) == 2
    assert b'name="speed"' in creates(pixverse_sandbox)[-1].body
    run(tts("The same words.", destination, speed=1.5))
    assert len(creates(pixverse_sandbox)) == 2


def test_other_content_at_the_destination_is_refused_before_paying(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    (tmp_path / "taken.mp3").write_bytes(b"ID3 someone else's file")
    with pytest.raises(DestinationExistsError, match="overwrite=True"):
        run(tts("Not here.", f"file://{tmp_path}/taken.mp3"))
    assert creates(pixverse_sandbox) == []
    assert (tmp_path / "taken.mp3").read_bytes() == b"ID3 someone else's file"


def test_damaged_bytes_are_made_again(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    run(tts("Keep me whole.", f"file://{tmp_path}/whole.mp3"))
    mp3 = tmp_path / "whole.mp3"
    mp3.write_bytes(mp3.read_bytes()[:-100])  # cut short after it was written
    _, ti = run(tts("Keep me whole.", f"file://{tmp_path}/whole.mp3"))
    assert len(creates(pixverse_sandbox)) == 2
    assert hashlib.sha256(mp3.read_bytes()).hexdigest() == ti.xcoms["pixverse_speech"]["sha256"]


def test_max_credits_refuses_before_any_create(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    text = "x" * 1_001  # 21 units of 50 characters at 1 credit each on speech-2.8-hd
    with pytest.raises(PixVerseInvalidInputError, match=r"about 21 credits.*max_credits is 20"):
        run(tts(text, f"file://{tmp_path}/", max_credits=20))
    counts = pixverse_sandbox.request_counts()
    assert counts["create"] == 0 and counts["models"] == 1
    assert list(tmp_path.iterdir()) == []
    _, ti = run(tts(text, f"file://{tmp_path}/", max_credits=21))
    assert ti.xcoms[ESTIMATE_XCOM_KEY]["credits"] == 21 == ti.xcoms["pixverse_speech"]["credits_charged"]
    assert pixverse_sandbox.request_counts()["models"] == 1  # the models list is fetched once per process


def test_not_enough_credits_fails_at_once_naming_the_account(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.set_credits(2)
    with pytest.raises(PixVersePaymentError, match=rf"account '{EMAIL}'.*part 1 of 1") as failed:
        run(tts("y" * 500, f"file://{tmp_path}/", account_email=EMAIL))
    assert failed.value.http_status == 412
    assert len(creates(pixverse_sandbox)) == 1  # a 412 is not retried
    assert list(tmp_path.iterdir()) == []


def test_bad_settings_fail_before_any_call(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="pitch=40"):
        run(tts("Hi", f"file://{tmp_path}/", pitch=40))
    with pytest.raises(PixVerseInvalidInputError, match="text must be a non-empty"):
        run(tts(" \n ", f"file://{tmp_path}/"))
    with pytest.raises(PixVerseInvalidInputError, match="split="):
        tts("Hi", f"file://{tmp_path}/", split="pieces")
    assert api_requests(pixverse_sandbox) == []


def long_text(characters: int) -> str:
    """Paragraphs of sentences, ``characters`` long in all."""
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    paragraphs = []
    total = 0
    while total < characters:
        paragraph = f"Paragraph {len(paragraphs) + 1}. " + (sentence * 14).strip()
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    text = "\n\n".join(paragraphs)[: characters - 1].rstrip()
    return text + "." * (characters - len(text))


def posted_texts(sandbox: PixVerseSandbox) -> list[str]:
    texts = []
    for request in creates(sandbox):
        match = re.search(rb'name="text"\r\n\r\n(.*?)\r\n--', request.body, re.S)
        assert match is not None
        texts.append(match.group(1).decode())
    return texts


def decoded_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].sample_rate
    return samples / rate


def test_a_long_text_is_three_parts_waited_for_in_one_deferral_and_one_mp3(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.5)
    pixverse_sandbox.set_credits(10_000)
    text = long_text(25_000)
    assert len(text) == 25_000
    store = MemoryStateStore()
    operator = tts(text, f"file://{tmp_path}/long.mp3", deferrable=True, part_concurrency=3)
    ti = RecordingTaskInstance()
    context: dict[str, Any] = {"ti": ti, "task_state_store": store}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, PixVerseSpeechClipsTrigger) and len(trigger.audio_ids) == 3
    assert len(creates(pixverse_sandbox)) == 3
    parts = [text[part["start"] : part["end"]] for part in store.values[JOB_STATE_KEY]["parts"]]
    assert sorted(posted_texts(pixverse_sandbox)) == sorted(parts)  # sent concurrently, in any order
    assert all(len(part) <= 10_000 and part.startswith("Paragraph ") and part.endswith(".") for part in parts)
    assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)
    event = asyncio.run(first_event(trigger))
    uri = operator.execute_complete(context, event, **deferred.value.kwargs)
    assert uri == f"file://{tmp_path}/long.mp3"
    assert len(creates(pixverse_sandbox)) == 3  # no more creates, no second deferral
    metadata = ti.xcoms["pixverse_speech"]
    assert metadata["parts"] == 3 and len(metadata["audio_ids"]) == 3 and metadata["audio_ids"] == trigger.audio_ids
    assert (
        metadata["credits_charged"]
        == 10_000 - pixverse_sandbox.credits_left()
        == ti.xcoms[ESTIMATE_XCOM_KEY]["credits"]
    )
    # One valid MP3: one ID3 tag, at the start; one Info header; its length, decoded, the sum of the parts'.
    joined = (tmp_path / "long.mp3").read_bytes()
    assert joined.startswith(b"ID3") and joined.count(b"ID3\x03") == 1 and joined.count(b"LAME3.100") == 1
    played = decoded_seconds(tmp_path / "long.mp3")
    parts_seconds = sum(pixverse_sandbox.clip(audio_id)["duration"] for audio_id in trigger.audio_ids)
    assert abs(played - metadata["duration"]) < 0.001
    # Frames are joined whole: what trimming took off the parts' inner ends (encoder delay and
    # padding, under two frames a join) stays in; nothing of the parts is lost.
    assert 0 <= played - parts_seconds < 2 * 2 * 1152 / 44100
    assert metadata["bytes"] == len(joined) and metadata["sha256"] == hashlib.sha256(joined).hexdigest()


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_a_failed_part_is_sent_again_alone(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

    pixverse_sandbox.fail_next_jobs(1, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    text = long_text(7_000)  # two parts on eleven-v3 (5,000 characters at most)
    _, ti = run(
        PixVerseTextToSpeechOperator(
            task_id="speak",
            text=text,
            voice_id="eleven_rachel",
            destination=f"file://{tmp_path}/retold.mp3",
            model="eleven-v3",
            resubmit_on_failure=1,
            deferrable=False,
            poll_interval=0.05,
        )
    )
    texts = posted_texts(pixverse_sandbox)
    assert len(texts) == 3
    (again,) = {t for t in texts if texts.count(t) == 2}
    (failed,) = [clip for clip in PixVerseHook().list_speech() if clip.audio_status_name == "FAILED"]
    assert failed.prompt == again and texts[-1] == again
    assert failed.audio_id not in ti.xcoms["pixverse_speech"]["audio_ids"]
    assert len(ti.xcoms["pixverse_speech"]["audio_ids"]) == 2


def test_a_part_that_fails_beyond_the_resubmits_fails_the_task(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.fail_next_jobs(2, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    with pytest.raises(PixVerseJobFailedError, match="synthesis backend timeout"):
        run(tts("Short and doomed.", f"file://{tmp_path}/", resubmit_on_failure=1))
    assert len(creates(pixverse_sandbox)) == 2
    assert list(tmp_path.iterdir()) == []


def test_parts_kept_as_numbered_objects(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    text = long_text(7_000)
    operator = PixVerseTextToSpeechOperator(
        task_id="speak",
        text=text,
        voice_id="eleven_rachel",
        destination=f"file://{tmp_path}/chapter.mp3",
        model="eleven-v3",
        split="parts",
        deferrable=False,
        poll_interval=0.05,
    )
    uris, ti = run(operator)
    assert uris == [f"file://{tmp_path}/chapter-001.mp3", f"file://{tmp_path}/chapter-002.mp3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "chapter-001.mp3",
        "chapter-001.mp3.json",
        "chapter-002.mp3",
        "chapter-002.mp3.json",
    ]
    metadata = ti.xcoms["pixverse_speech"]
    assert [m["part"] for m in metadata] == [1, 2] and all(m["parts"] == 2 for m in metadata)
    assert sum(m["credits_charged"] for m in metadata) == ti.xcoms[ESTIMATE_XCOM_KEY]["credits"]
    again, _ = run(operator)
    assert again == uris and len(creates(pixverse_sandbox)) == 2


def test_a_retry_resumes_the_parts_instead_of_creating_them(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    store = MemoryStateStore()
    text = long_text(12_000)
    for _ in range(3):  # three tries, each dying while waiting
        with pytest.raises(TaskDeferred) as deferred:
            run(tts(text, f"file://{tmp_path}/", deferrable=True), store)
        assert len(deferred.value.trigger.audio_ids) == 2
    assert len(creates(pixverse_sandbox)) == 2
    assert [p["audio_id"] for p in store.values[JOB_STATE_KEY]["parts"]] == deferred.value.trigger.audio_ids


def test_one_part_defers_to_the_one_clip_trigger(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.3)
    operator = tts("One clip.", f"file://{tmp_path}/", deferrable=True)
    ti = RecordingTaskInstance()
    context: dict[str, Any] = {"ti": ti, "task_state_store": MemoryStateStore()}
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert isinstance(deferred.value.trigger, PixVerseSpeechTrigger)
    event = asyncio.run(first_event(deferred.value.trigger))
    uri = operator.execute_complete(context, event, **deferred.value.kwargs)
    assert Path(uri.removeprefix("file://")).is_file()
    assert ti.xcoms["pixverse_audio_url"].startswith("http://127.0.0.1")


def test_a_create_whose_answer_was_lost_is_found_not_sent_again(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    from airflow_provider_pixverse.exceptions import PixVerseConnectionError

    store = MemoryStateStore()
    text = "Spoken once, paid once."
    pixverse_sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseConnectionError):
        run(tts(text, f"file://{tmp_path}/"), store)
    made = pixverse_sandbox.add_clip(text=text, voice_id=VOICE, status="COMPLETED")  # what the lost request made
    _, ti = run(tts(text, f"file://{tmp_path}/"), store)
    assert ti.xcoms["pixverse_speech"]["audio_ids"] == [made["audio_id"]]
    assert len(creates(pixverse_sandbox)) == 1  # the lost one only


def test_into_s3_with_object_metadata(pixverse_sandbox: PixVerseSandbox, s3_bucket: Any) -> None:
    destination = f"s3://{s3_bucket.name}/speech/talk.mp3"
    uri, ti = run(tts("Stored with its key.", destination, storage_conn_id="aws_pixverse_test"))
    assert uri == destination
    assert [o.key for o in s3_bucket.objects.all()] == ["speech/talk.mp3"]  # no sidecar
    head = s3_bucket.Object("speech/talk.mp3")
    assert json.loads(head.metadata["pixverse-speech"]) == ti.xcoms["pixverse_speech"]
    _, again = run(tts("Stored with its key.", destination, storage_conn_id="aws_pixverse_test"))
    assert again.xcoms["pixverse_speech"]["reused"] is True and len(creates(pixverse_sandbox)) == 1


def test_the_text_can_be_read_from_object_storage(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    article = tmp_path / "article.txt"
    article.write_text("She wrote {{ not a template }} in her column.", encoding="utf-8")
    _, ti = run(tts(ObjectStoragePath(article.as_uri()), f"file://{tmp_path}/out/"))
    assert posted_texts(pixverse_sandbox) == ["She wrote {{ not a template }} in her column."]
    assert ti.xcoms["pixverse_speech"]["text_length"] == len(article.read_text())
    article.write_bytes(b"\xff\xfe not UTF-8")
    with pytest.raises(PixVerseInvalidInputError, match="is not UTF-8"):
        run(tts(ObjectStoragePath(article.as_uri()), f"file://{tmp_path}/out/"))


@pytest.mark.parametrize("keep_store", [True, False])
def test_a_deferral_that_comes_back_without_its_kwargs_carries_on(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, keep_store: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dag.test()`` runs the trigger in line and resumes with the event alone: the state store, or a new plan."""
    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.3)
    text = long_text(12_000)
    store = MemoryStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        run(tts(text, f"file://{tmp_path}/back.mp3", deferrable=True), store)
    event = asyncio.run(first_event(deferred.value.trigger))
    context: dict[str, Any] = {"ti": RecordingTaskInstance()}
    if keep_store:
        context["task_state_store"] = store
    uri = tts(text, f"file://{tmp_path}/back.mp3", deferrable=True).execute_complete(context, event)
    assert uri == f"file://{tmp_path}/back.mp3" and len(creates(pixverse_sandbox)) == 2
    assert context["ti"].xcoms["pixverse_speech"]["audio_ids"] == deferred.value.trigger.audio_ids
    replanned = "Resumed without the job's state" in "".join(capsys.readouterr())
    assert replanned is not keep_store  # the store's state when there is one


def test_a_deferral_without_its_state_and_fewer_clips_than_parts_fails_clearly(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    clip = pixverse_sandbox.add_clip(text="One part only", voice_id=VOICE, status="COMPLETED")
    event = {"status": "success", "audio_id": clip["audio_id"], "clip": clip, "message": "", "error_type": None}
    operator = tts(long_text(12_000), f"file://{tmp_path}/", deferrable=True)
    with pytest.raises(PixVerseResponseError, match="without the state of its 2 part"):
        operator.execute_complete({"ti": RecordingTaskInstance()}, event)


def test_parts_are_created_at_most_part_concurrency_at_once(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.add_fault("delay", seconds=1.0, count=-1, path_contains="/speech/create")  # each create 1 s
    operator = PixVerseTextToSpeechOperator(
        task_id="speak",
        text=long_text(12_000),  # three parts on eleven-v3
        voice_id="eleven_rachel",
        destination=f"file://{tmp_path}/",
        model="eleven-v3",
        deferrable=False,
        poll_interval=0.05,
    )
    run(operator)
    arrivals = sorted(r.at for r in creates(pixverse_sandbox))
    assert len(arrivals) == 3
    assert arrivals[1] - arrivals[0] < 0.9  # the default, 2, at once
    assert arrivals[2] - arrivals[0] >= 0.95  # the third only once one of them was answered
    assert tts("x", "file:///tmp/", part_concurrency=5, max_jobs=1)._concurrency() == 1
    assert tts("x", "file:///tmp/")._concurrency() == 2
    with pytest.raises(PixVerseInvalidInputError, match="part_concurrency"):
        tts("x", "file:///tmp/", part_concurrency=0)
