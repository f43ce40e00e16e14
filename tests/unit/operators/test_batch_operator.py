"""PixVerseBatchTextToSpeechOperator against the sandbox: windows, accounts, names, duplicates, failures, resume."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from mutagen.mp3 import MP3
from pixverse_testing import MemoryStateStore, RecordingTaskInstance

from airflow_provider_pixverse.exceptions import PixVerseBatchItemsFailedError, PixVerseInvalidInputError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.batch import BATCH_STATE_KEY, PixVerseBatchTextToSpeechOperator
from airflow_provider_pixverse.operators.batch_manifest import manifest_path, read_manifest

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
A, B = "a@example.com", "b@example.com"


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def batch(texts: Any, destination: Path, **kwargs: Any) -> PixVerseBatchTextToSpeechOperator:
    kwargs.setdefault("poll_interval", 0.05)
    return PixVerseBatchTextToSpeechOperator(
        task_id="corpus", texts=texts, voice_id=VOICE, destination=f"file://{destination}", **kwargs
    )


def context(store: MemoryStateStore | None = None) -> dict[str, Any]:
    return {"ti": RecordingTaskInstance(), "task_state_store": store if store is not None else MemoryStateStore()}


async def _fire(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def run_deferred(operator: Any, ctx: dict[str, Any], *, deferrals: int = 200) -> tuple[Any, list[Any]]:
    """Run a task as Airflow would: each deferral's trigger runs, then the task resumes with its event."""
    triggers: list[Any] = []
    resume: Any = functools.partial(operator.execute, ctx)
    for _ in range(deferrals):
        try:
            return resume(), triggers
        except TaskDeferred as deferred:
            triggers.append(deferred.trigger)
            event = asyncio.run(_fire(deferred.trigger))
            method = getattr(operator, deferred.method_name)
            resume = functools.partial(method, ctx, event=event, **(deferred.kwargs or {}))
    raise AssertionError(f"still deferring after {deferrals} deferrals")


def accepted(sandbox: PixVerseSandbox) -> int:
    return sandbox.create_outcomes()["accepted"]


def manifest(folder: Path) -> dict[str, Any]:
    return {entry.name: entry for entry in read_manifest(manifest_path(f"file://{folder}"))}


def corpus(n: int) -> dict[str, str]:
    return {f"article-{i:02d}": f"Article number {i} of the corpus, spoken once." for i in range(n)}


# -- windows and accounts -----------------------------------------------------------------------


def test_a_corpus_over_two_accounts_never_exceeds_either_limit_and_both_get_work(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    # The sandbox would run 8 jobs on each: the task alone keeps each account within the limit it is given.
    pixverse_sandbox.set_max_jobs(8, email=A)
    pixverse_sandbox.set_max_jobs(8, email=B)
    texts = corpus(20)
    operator = batch(texts, tmp_path, accounts={A: 3, B: 5})
    result, triggers = run_deferred(operator, context())
    assert result["counts"] == {"done": 20, "reused": 0, "failed": 0, "pending": 0}
    assert pixverse_sandbox.create_outcomes() == {"accepted": 20, "busy": 0, "refused": 0}
    assert pixverse_sandbox.jobs_high_water(A) == 3 and pixverse_sandbox.jobs_high_water(B) == 5
    # One deferral per window: 20 parts over 3 + 5 slots is 3 windows.
    assert len(triggers) == 3 and all(type(t).__name__ == "PixVerseSpeechClipsTrigger" for t in triggers)
    assert [len(t.audio_ids) for t in triggers] == [8, 8, 4]
    written = manifest(tmp_path)
    assert sorted(written) == sorted(texts) and all(e.status == "done" for e in written.values())
    for name in texts:
        assert (tmp_path / f"{name}.mp3").read_bytes().startswith(b"ID3")
    assert result["manifest"] == f"file://{tmp_path}/manifest.jsonl"


def test_a_busy_answer_from_another_client_shrinks_the_window_instead_of_failing(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.set_max_jobs(3, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=3600)
    other = PixVerseHook().create_speech("Another client's job.", VOICE, email=A)  # one of A's 3 slots taken
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.1)
    operator = batch(corpus(6), tmp_path, accounts={A: 3})
    store = MemoryStateStore()
    with pytest.raises(TaskDeferred) as first:
        operator.execute(context(store))
    assert len(first.value.trigger.audio_ids) == 2  # the third create was refused busy: no job
    assert pixverse_sandbox.create_outcomes() == {"accepted": 3, "busy": 1, "refused": 0}
    assert store.values[BATCH_STATE_KEY]["windows"]["accounts"] == [[A, 3, 2]]  # the window shrunk
    pixverse_sandbox.finish_clip(other)
    event = asyncio.run(_fire(first.value.trigger))
    result = _resume(operator, store, first.value, event)
    assert result["counts"]["done"] == 6 and result["counts"]["failed"] == 0
    assert pixverse_sandbox.jobs_high_water(A) == 3  # never over the account's limit, the other job counted


def _resume(operator: Any, store: MemoryStateStore, deferred: TaskDeferred, event: dict[str, Any]) -> Any:
    ctx = context(store)
    method = getattr(operator, deferred.method_name)
    try:
        return method(ctx, event=event, **(deferred.kwargs or {}))
    except TaskDeferred as again:
        return run_deferred_from(operator, ctx, again)


def run_deferred_from(operator: Any, ctx: dict[str, Any], deferred: TaskDeferred) -> Any:
    for _ in range(100):
        event = asyncio.run(_fire(deferred.trigger))
        try:
            return getattr(operator, deferred.method_name)(ctx, event=event, **(deferred.kwargs or {}))
        except TaskDeferred as again:
            deferred = again
    raise AssertionError("still deferring")


def test_every_account_busy_and_nothing_in_flight_waits_for_capacity(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.set_max_jobs(1, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=1)
    PixVerseHook().create_speech("Another client's job.", VOICE, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.1)
    result, triggers = run_deferred(batch(corpus(2), tmp_path, accounts={A: 1}), context())
    assert type(triggers[0]).__name__ == "PixVerseAccountCapacityTrigger"
    assert result["counts"]["done"] == 2 and pixverse_sandbox.jobs_high_water(A) == 1


# -- names, duplicates, long texts ------------------------------------------------------------------


def test_two_names_of_one_text_are_one_create_and_two_objects_of_the_same_bytes(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    texts = [{"name": "first", "text": "Said once."}, {"name": "second", "text": "  Said once.\r\n"}]
    result, _ = run_deferred(batch(texts, tmp_path), context())
    assert accepted(pixverse_sandbox) == 1
    first, second = (tmp_path / "first.mp3").read_bytes(), (tmp_path / "second.mp3").read_bytes()
    assert first == second and first.startswith(b"ID3")
    meta = [json.loads((tmp_path / f"{n}.mp3.json").read_text()) for n in ("first", "second")]
    assert meta[0]["content_key"] == meta[1]["content_key"] and meta[1]["destination"].endswith("second.mp3")
    assert meta[1]["sha256"] == hashlib.sha256(second).hexdigest()
    entries = manifest(tmp_path)
    assert entries["first"].credits == result["credits_charged"] and entries["second"].credits == 0
    assert entries["first"].audio_ids == entries["second"].audio_ids


def test_a_long_text_is_split_into_parts_and_joined(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    from test_tts_operator import long_text

    text = long_text(7_000)  # two parts on eleven-v3 (5,000 characters at most)
    texts = [
        {"name": "chapter", "text": text, "voice_id": "eleven_rachel", "model": "eleven-v3"},
        {"name": "short", "text": "A short one."},
    ]
    run_deferred(batch(texts, tmp_path), context())
    assert accepted(pixverse_sandbox) == 3
    metadata = json.loads((tmp_path / "chapter.mp3.json").read_text())
    assert metadata["parts"] == 2 and len(metadata["audio_ids"]) == 2
    assert (tmp_path / "chapter.mp3").read_bytes().count(b"ID3\x03") == 1  # one MP3, joined
    seconds = sum(pixverse_sandbox.clip(audio_id)["duration"] for audio_id in metadata["audio_ids"])
    assert metadata["duration"] is not None and abs(metadata["duration"] - seconds) < 0.2  # both parts in it
    assert abs(MP3(tmp_path / "chapter.mp3").info.length - seconds) < 0.2


# -- failures ----------------------------------------------------------------------------------------


def test_a_failed_clip_is_sent_again_alone(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.fail_next_jobs(1, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    result, _ = run_deferred(batch(corpus(3), tmp_path, resubmit_on_failure=1), context())
    assert result["counts"]["done"] == 3 and accepted(pixverse_sandbox) == 4


def test_an_item_failing_for_good_fails_the_task_naming_it_and_the_others_are_written(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    texts = corpus(3)
    pixverse_sandbox.fail_next_jobs(1, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    with pytest.raises(PixVerseBatchItemsFailedError, match="1 item\\(s\\) failed for good: ") as failed:
        run_deferred(batch(texts, tmp_path), context())
    entries = manifest(tmp_path)
    (name,) = [name for name, entry in entries.items() if entry.status == "failed"]  # the creates run at once
    assert f"failed for good: {name} (their reasons are in file://{tmp_path}/manifest.jsonl)" in str(failed.value)
    assert "synthesis backend timeout" in (entries[name].reason or "")
    assert not (tmp_path / f"{name}.mp3").exists()
    assert all((tmp_path / f"{other}.mp3").is_file() for other in texts if other != name)
    # A re-run sends only what is missing.
    result, _ = run_deferred(batch(texts, tmp_path), context())
    assert accepted(pixverse_sandbox) == 4
    assert result["counts"] == {"done": 1, "reused": 2, "failed": 0, "pending": 0}


def test_allow_failed_items_succeeds_listing_them(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.fail_next_jobs(1, fail_code="E_TTS", fail_reason="synthesis backend timeout")
    result, _ = run_deferred(batch(corpus(3), tmp_path, allow_failed_items=True), context())
    assert len(result["failed"]) == 1 and result["failed"][0] in corpus(3) and result["counts"]["done"] == 2
    assert manifest(tmp_path)[result["failed"][0]].status == "failed"


# -- paying once, resuming ------------------------------------------------------------------------------


def test_max_credits_over_the_corpus_estimate_refuses_before_any_create(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    texts = corpus(10)  # 1 credit each on the default model (per started unit)
    ctx = context()
    with pytest.raises(PixVerseInvalidInputError, match="the corpus would cost about 10 credits") as refused:
        batch(texts, tmp_path, max_credits=9.5).execute(ctx)
    assert "nothing was sent" in str(refused.value)
    assert pixverse_sandbox.create_outcomes()["accepted"] == 0 and pixverse_sandbox.request_counts()["create"] == 0
    assert ctx["ti"].xcoms["pixverse_credits_estimate"]["credits"] == 10


def test_a_task_killed_after_its_creates_resumes_with_no_new_create(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    with pytest.raises(TaskDeferred):  # the window is created; the worker dies before the wait
        batch(corpus(3), tmp_path).execute(context(store))
    assert accepted(pixverse_sandbox) == 3
    result, _ = run_deferred(batch(corpus(3), tmp_path), context(store))  # the retry
    assert accepted(pixverse_sandbox) == 3 and result["counts"]["done"] == 3


def test_a_rerun_of_a_finished_corpus_sends_no_create(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    run_deferred(batch(corpus(4), tmp_path), context())
    pixverse_sandbox.reset_request_counts()
    result, triggers = run_deferred(batch(corpus(4), tmp_path), context())
    assert pixverse_sandbox.request_counts()["create"] == 0 and triggers == []
    assert result["counts"]["reused"] == 4 and result["credits_charged"] == 0


def test_the_tts_operator_and_the_batch_operator_recognise_each_others_objects(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator

    def tts(name: str, text: str) -> Any:
        operator = PixVerseTextToSpeechOperator(
            task_id="one", text=text, voice_id=VOICE, destination=f"file://{tmp_path}/{name}.mp3", deferrable=False
        )
        return operator.execute(context())

    texts = corpus(2)
    tts("article-00", texts["article-00"])
    assert accepted(pixverse_sandbox) == 1
    result, _ = run_deferred(batch(texts, tmp_path), context())
    assert accepted(pixverse_sandbox) == 2 and result["counts"] == {"done": 1, "reused": 1, "failed": 0, "pending": 0}
    tts("article-01", texts["article-01"])  # written by the batch operator: found
    assert accepted(pixverse_sandbox) == 2


def test_a_shrunk_window_grows_back_across_the_tasks_resumes() -> None:
    """The task resumes once per window: the creates accepted since a shrink must survive each save."""
    from airflow_provider_pixverse.operators.batch_accounts import AccountWindows

    windows = AccountWindows([(A, 3)], grow_after=4)
    windows.started(A)
    windows.busy(A)  # window 2
    for _ in range(4):  # four windows of one accepted create each, the state saved and read back each time
        windows.started(A)
        windows.created(A)
        windows.ended(A)
        restored = AccountWindows.from_json(json.loads(json.dumps(windows.to_json())), grow_after=4)
        assert restored is not None
        windows = restored
    assert windows.windows[A] == 3


def test_a_create_whose_answer_was_lost_is_found_by_the_retry_not_sent_again(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    from airflow_provider_pixverse.exceptions import PixVerseConnectionError

    pixverse_sandbox.set_max_jobs(3, email=A)
    texts = corpus(3)
    store = MemoryStateStore()
    pixverse_sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseConnectionError):
        batch(texts, tmp_path, accounts={A: 3}).execute(context(store))
    saved = store.values[BATCH_STATE_KEY]["requests"]
    lost = [
        request["names"][0]
        for request in saved
        for part in request["job"]["parts"]
        if part["intent"] is not None and part["audio_id"] is None
    ]
    assert len(lost) == 1  # its intent was saved before the create was sent
    made = pixverse_sandbox.add_clip(text=texts[lost[0]], voice_id=VOICE, email=A, status="COMPLETED")
    before = accepted(pixverse_sandbox)
    assert before == 2  # the other two creates of the window were taken in, not dropped with the failure
    pixverse_sandbox.reset_request_counts()
    result, _ = run_deferred(batch(texts, tmp_path, accounts={A: 3}), context(store))
    assert result["counts"]["done"] == 3
    assert accepted(pixverse_sandbox) == before  # the lost create found, the others resumed: nothing sent
    assert pixverse_sandbox.request_counts()["list"] == 1  # one listing for the account
    assert manifest(tmp_path)[lost[0]].audio_ids == (made["audio_id"],)
