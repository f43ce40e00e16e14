"""PixVerseBatchTextToSpeechOperator against the sandbox: windows, accounts, names, duplicates, failures, resume."""

from __future__ import annotations

import asyncio
import contextlib
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
from airflow_provider_pixverse.operators.batch import PixVerseBatchTextToSpeechOperator
from airflow_provider_pixverse.operators.batch_manifest import manifest_path, read_manifest
from airflow_provider_pixverse.operators.batch_store import shard_key

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
    on_a, on_b = (len(PixVerseHook().list_speech(email=email)) for email in (A, B))
    assert on_a >= 3 and on_b >= 5 and on_a + on_b == 20  # both accounts got work, at least a window each
    # One deferral creates the whole queue as slots free; a second waits for what still flies: not one per window.
    assert len(triggers) == 2 and all(type(t).__name__ == "PixVerseBatchTrigger" for t in triggers)
    assert len(triggers[0].queue) == 20 and triggers[1].queue == [] and 0 < len(triggers[1].in_flight) <= 8
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
    event = asyncio.run(_fire(first.value.trigger))
    assert event["busy"] == 1 and event["windows"]["accounts"] == [[A, 3, 2]]  # refused once: the window shrunk
    outcomes = pixverse_sandbox.create_outcomes()
    assert outcomes == {"accepted": 7, "busy": 1, "refused": 0}  # the other client's job and the corpus's 6
    pixverse_sandbox.finish_clip(other)
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


def test_every_account_busy_and_nothing_in_flight_waits_out_the_retry_after_in_the_trigger(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.set_max_jobs(1, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=1)
    PixVerseHook().create_speech("Another client's job.", VOICE, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.1)
    result, triggers = run_deferred(batch(corpus(2), tmp_path, accounts={A: 1}), context())
    assert all(type(t).__name__ == "PixVerseBatchTrigger" for t in triggers)
    assert pixverse_sandbox.create_outcomes()["busy"] >= 1
    assert result["counts"]["done"] == 2 and pixverse_sandbox.jobs_high_water(A) == 1


def test_every_account_busy_past_capacity_timeout_fails_the_task_naming_the_timeout(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    from airflow_provider_pixverse.exceptions import PixVerseAccountBusyError

    pixverse_sandbox.set_max_jobs(1, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=3600)
    PixVerseHook().create_speech("Another client's job.", VOICE, email=A)
    with pytest.raises(PixVerseAccountBusyError, match="capacity_timeout=1"):
        run_deferred(batch(corpus(2), tmp_path, accounts={A: 1}, capacity_timeout=1), context())
    assert pixverse_sandbox.create_outcomes()["accepted"] == 1  # the other client's job only


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
    with pytest.raises(TaskDeferred) as deferred:  # the queue's intents are saved; nothing is sent yet
        batch(corpus(3), tmp_path).execute(context(store))
    assert accepted(pixverse_sandbox) == 0
    asyncio.run(_fire(deferred.value.trigger))  # the trigger creates them; its event never reaches the task
    assert accepted(pixverse_sandbox) == 3
    result, _ = run_deferred(batch(corpus(3), tmp_path), context(store))  # the retry finds them by their intents
    assert accepted(pixverse_sandbox) == 3 and result["counts"]["done"] == 3


def test_a_trigger_cut_short_mid_queue_and_run_again_creates_nothing_twice(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    """A triggerer killed mid-run: the trigger runs again from its kwargs and finds what it made."""
    pixverse_sandbox.set_max_jobs(3, email=A)
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.3)
    texts = corpus(12)
    operator = batch(texts, tmp_path, accounts={A: 3})
    store = MemoryStateStore()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context(store))

    async def cut_short() -> None:
        run = asyncio.ensure_future(_fire(deferred.value.trigger))
        while accepted(pixverse_sandbox) < 4:
            await asyncio.sleep(0.01)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run

    asyncio.run(cut_short())
    made = accepted(pixverse_sandbox)
    assert 4 <= made < 12
    event = asyncio.run(_fire(deferred.value.trigger))  # the same trigger, on another triggerer
    assert len(event["created"]) == 12  # the jobs of the first run found, the rest created
    result = _resume(operator, store, deferred.value, event)
    assert accepted(pixverse_sandbox) == 12 and result["counts"]["done"] == 12
    assert pixverse_sandbox.jobs_high_water(A) == 3


def test_a_corpus_that_does_not_defer_runs_the_same_engine_in_the_worker(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    pixverse_sandbox.set_max_jobs(3, email=A)
    operator = batch(corpus(10), tmp_path, accounts={A: 3}, deferrable=False, parts_per_run=4)  # three runs
    result = operator.execute(context())
    assert result["counts"]["done"] == 10 and accepted(pixverse_sandbox) == 10
    assert pixverse_sandbox.jobs_high_water(A) == 3


def test_a_task_resumed_with_the_event_alone_plans_again_and_pays_nothing_twice(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    """Airflow 2.11's dag.test resumes with the event alone (no state store, the deferral's kwargs dropped)."""
    pixverse_sandbox.set_max_jobs(3)
    ctx: dict[str, Any] = {"ti": RecordingTaskInstance()}  # no task state store
    operator = batch(corpus(7), tmp_path, accounts=[{"email": "sandbox@example.com", "max_jobs": 3}])
    resume: Any = functools.partial(operator.execute, ctx)
    for _ in range(20):
        try:
            result = resume()
            break
        except TaskDeferred as deferred:
            event = asyncio.run(_fire(deferred.trigger))
            resume = functools.partial(getattr(operator, deferred.method_name), ctx, event=event)
    else:
        raise AssertionError("still deferring after 20 deferrals")
    assert accepted(pixverse_sandbox) == 7 and result["counts"]["failed"] == 0
    assert result["counts"]["done"] + result["counts"]["reused"] == 7


@pytest.mark.parametrize("value", [0, 5001, 2.5, True, "100"])
def test_parts_per_run_out_of_range_is_refused_naming_it(value: Any, tmp_path: Path) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="parts_per_run="):
        batch(corpus(1), tmp_path, parts_per_run=value)


def test_a_queue_of_parts_per_run_parts_a_run_and_the_task_resumes_once_per_queue(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    result, triggers = run_deferred(batch(corpus(10), tmp_path, parts_per_run=4), context())
    assert [len(trigger.queue) for trigger in triggers if trigger.queue] == [4, 4, 2]
    assert result["counts"]["done"] == 10 and accepted(pixverse_sandbox) == 10


def test_the_trigger_carries_the_texts_but_never_the_token(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        batch(corpus(2), tmp_path).execute(context())
    path, kwargs = deferred.value.trigger.serialize()
    assert path == "airflow_provider_pixverse.triggers.batch.PixVerseBatchTrigger"
    dumped = json.dumps(kwargs)
    assert pixverse_sandbox.token not in dumped and "Article number 1" in dumped


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
    """The windows are saved and read back between runs: the creates accepted since a shrink survive each save."""
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
    with pytest.raises(PixVerseConnectionError):  # the create's answer lost in the trigger: the task fails
        run_deferred(batch(texts, tmp_path, accounts={A: 3}), context(store))
    saved = store.values[shard_key(0)]  # three requests: one shard
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
    assert pixverse_sandbox.request_counts()["create"] == 0  # found by one listing of the account, not sent again
    assert manifest(tmp_path)[lost[0]].audio_ids == (made["audio_id"],)
