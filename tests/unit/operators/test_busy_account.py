"""The creating operators on a busy account: a create refused 429 made no job, so it waits for a slot.

Against the sandbox holding the account full (``max_jobs``, jobs made through the API).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from pixverse_testing import MemoryStateStore, RecordingTaskInstance

from airflow_provider_pixverse.exceptions import PixVerseAccountBusyError, PixVerseInvalidInputError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import (
    AUDIO_ID_STATE_KEY,
    INTENT_STATE_KEY,
    PixVerseCreateSpeechOperator,
    PixVerseTextToSpeechOperator,
)
from airflow_provider_pixverse.operators.text_to_speech import JOB_STATE_KEY
from airflow_provider_pixverse.triggers.capacity import PixVerseAccountCapacityTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
ACCOUNT = "busy@example.com"


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def context(store: MemoryStateStore) -> dict[str, Any]:
    return {"ti": RecordingTaskInstance(), "task_state_store": store}


def fill(sandbox: PixVerseSandbox, *, generating_seconds: float = 3600, email: str | None = None) -> str:
    """The account runs one job at most, and runs one now."""
    sandbox.set_clock(queued_seconds=0, generating_seconds=generating_seconds)
    sandbox.set_max_jobs(1, email=email)
    return PixVerseHook().create_speech("Another task's job.", VOICE, email=email)


def outcomes_since(sandbox: PixVerseSandbox, before: dict[str, int]) -> dict[str, int]:
    return {key: value - before.get(key, 0) for key, value in sandbox.create_outcomes().items()}


def create_op(**kwargs: Any) -> PixVerseCreateSpeechOperator:
    return PixVerseCreateSpeechOperator(task_id="c", text="Wait your turn.", voice_id=VOICE, **kwargs)


# -- the create operator -------------------------------------------------------------------------


def test_deferrable_defers_to_the_capacity_trigger_after_one_refused_create(pixverse_sandbox: PixVerseSandbox) -> None:
    fill(pixverse_sandbox)
    before = pixverse_sandbox.create_outcomes()
    store = MemoryStateStore()
    started = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        create_op(wait_timeout=600).execute(context(store))
    trigger = deferred.value.trigger
    assert isinstance(trigger, PixVerseAccountCapacityTrigger)
    assert deferred.value.method_name == "execute_after_capacity"
    assert deferred.value.kwargs == {"resubmits": 0, "queued_since": trigger.queued_since}
    assert started <= trigger.queued_since <= time.time()
    assert trigger.end_time == pytest.approx(trigger.queued_since + 600)  # capacity_timeout: the wait_timeout
    assert deferred.value.timeout is not None
    assert 600 <= deferred.value.timeout.total_seconds() <= 600 + 120  # the deadline, and a grace for the event
    assert trigger.queued_since + 1 <= trigger.not_before <= trigger.end_time  # its Retry-After, floored
    assert INTENT_STATE_KEY not in store.values and AUDIO_ID_STATE_KEY not in store.values  # no job to look for
    assert outcomes_since(pixverse_sandbox, before) == {"accepted": 0, "busy": 1, "refused": 0}
    _, kwargs = trigger.serialize()
    assert pixverse_sandbox.token not in json.dumps(kwargs)


@pytest.mark.real_settle
def test_a_capacity_trigger_never_fires_within_seconds_of_its_deferral(pixverse_sandbox: PixVerseSandbox) -> None:
    """Airflow 3.2-3.3 fails a task whose trigger fires right after its deferral (apache/airflow#67287)."""
    from airflow_provider_pixverse._api.capacity import SETTLE_SECONDS

    fill(pixverse_sandbox, generating_seconds=1)  # the job ends in a second: Retry-After 1
    with pytest.raises(TaskDeferred) as deferred:
        create_op(wait_timeout=600).execute(context(MemoryStateStore()))
    trigger = deferred.value.trigger
    assert trigger.not_before >= trigger.queued_since + SETTLE_SECONDS


def test_after_capacity_it_creates_once_and_returns(pixverse_sandbox: PixVerseSandbox) -> None:
    job = fill(pixverse_sandbox)
    store = MemoryStateStore()
    operator = create_op(wait_for_completion=False)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context(store))
    pixverse_sandbox.finish_clip(job)
    before = pixverse_sandbox.create_outcomes()
    event = {"status": "capacity", "queued_since": deferred.value.trigger.queued_since, "message": "free"}
    audio_id = operator.execute_after_capacity(context(store), event, **deferred.value.kwargs)
    assert audio_id.startswith("user:") and store.values[AUDIO_ID_STATE_KEY] == audio_id
    assert outcomes_since(pixverse_sandbox, before) == {"accepted": 1, "busy": 0, "refused": 0}


def test_refused_again_after_capacity_it_waits_again_in_its_old_place(pixverse_sandbox: PixVerseSandbox) -> None:
    fill(pixverse_sandbox)
    store = MemoryStateStore()
    operator = create_op(wait_for_completion=False)
    with pytest.raises(TaskDeferred) as first:
        operator.execute(context(store))
    since = first.value.trigger.queued_since
    event = {"status": "capacity", "queued_since": since, "message": "may be free"}  # it was not
    with pytest.raises(TaskDeferred) as again:
        operator.execute_after_capacity(context(store), event, **first.value.kwargs)
    assert again.value.trigger.queued_since == since
    assert again.value.trigger.end_time == first.value.trigger.end_time
    assert again.value.trigger.waiter != first.value.trigger.waiter


def test_a_timeout_event_fails_busy_and_sends_nothing(pixverse_sandbox: PixVerseSandbox) -> None:
    fill(pixverse_sandbox)
    before = pixverse_sandbox.create_outcomes()
    event = {"status": "timeout", "queued_since": time.time() - 600, "message": "'x' stayed busy for 600 s"}
    with pytest.raises(PixVerseAccountBusyError, match="stayed busy for 600 s.*no job was made"):
        create_op().execute_after_capacity(context(MemoryStateStore()), event, queued_since=time.time() - 600)
    assert outcomes_since(pixverse_sandbox, before) == {"accepted": 0, "busy": 0, "refused": 0}


def test_not_deferrable_it_sleeps_out_the_retry_after_then_creates_once(pixverse_sandbox: PixVerseSandbox) -> None:
    fill(pixverse_sandbox, generating_seconds=1.5)
    before = pixverse_sandbox.create_outcomes()
    store = MemoryStateStore()
    started = time.monotonic()
    audio_id = create_op(deferrable=False, wait_for_completion=False).execute(context(store))
    assert time.monotonic() - started >= 1.0  # it waited for the other job to end
    assert store.values[AUDIO_ID_STATE_KEY] == audio_id
    outcomes = outcomes_since(pixverse_sandbox, before)
    assert outcomes["accepted"] == 1 and 1 <= outcomes["busy"] <= 2 and outcomes["refused"] == 0  # no hot loop
    assert pixverse_sandbox.jobs_high_water() == 1


def test_capacity_timeout_zero_fails_at_once_naming_the_account_and_the_timeout(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    fill(pixverse_sandbox, email=ACCOUNT)
    before = pixverse_sandbox.create_outcomes()
    started = time.monotonic()
    with pytest.raises(PixVerseAccountBusyError, match=f"{ACCOUNT}.*capacity_timeout=0") as failed:
        create_op(account_email=ACCOUNT, capacity_timeout=0).execute(context(MemoryStateStore()))
    assert time.monotonic() - started < 5  # no Retry-After slept
    assert "no job was made" in str(failed.value)
    assert outcomes_since(pixverse_sandbox, before) == {"accepted": 0, "busy": 1, "refused": 0}


@pytest.mark.parametrize("value", [-1, math.nan, "5", math.inf, True])
def test_a_bad_capacity_timeout_is_refused_when_the_task_is_made(value: object) -> None:
    with pytest.raises(PixVerseInvalidInputError, match=f"capacity_timeout={value!r}"):
        create_op(capacity_timeout=value)
    with pytest.raises(PixVerseInvalidInputError, match=f"capacity_timeout={value!r}"):
        PixVerseTextToSpeechOperator(
            task_id="t", text="x", voice_id=VOICE, destination="/tmp/x.mp3", capacity_timeout=value
        )


# -- the one-task operator: the parts of a long text ------------------------------------------------


def long_text(paragraphs: int) -> str:
    """Paragraphs of about 900 characters: 12 of them are three parts on eleven-v3 (5,000 at most)."""
    sentence = "The quick brown fox jumps over the lazy dog near the river bank. "
    return "\n\n".join(f"Paragraph {n + 1}. " + (sentence * 14).strip() for n in range(paragraphs))


def tts_op(destination: Path, **kwargs: Any) -> PixVerseTextToSpeechOperator:
    kwargs.setdefault("poll_interval", 0.05)
    return PixVerseTextToSpeechOperator(
        task_id="speak",
        text=long_text(12),
        voice_id="eleven_rachel",
        model="eleven-v3",
        destination=str(destination),
        part_concurrency=3,
        **kwargs,
    )


def create_log(sandbox: PixVerseSandbox) -> list[tuple[str, str]]:
    """(the text sent, its outcome) of each create, in the order they came."""
    log = []
    for request in sandbox.requests:
        if request.endpoint == "create":
            match = re.search(rb'name="text"\r\n\r\n(.*?)\r\n--', request.body, re.S)
            assert match is not None
            log.append((match.group(1).decode(), request.to_json()["outcome"]))
    return log


def a_full_account(sandbox: PixVerseSandbox, max_jobs: int) -> None:
    """``max_jobs`` at once, one of them taken for 1.5 s by another task; the parts then take 0.3 s each."""
    sandbox.set_max_jobs(max_jobs)
    sandbox.set_clock(queued_seconds=0, generating_seconds=1.5)
    PixVerseHook().create_speech("Another task's job.", VOICE)
    sandbox.set_clock(queued_seconds=0, generating_seconds=0.3)
    sandbox.clear_requests()


def check_parts(sandbox: PixVerseSandbox, store: MemoryStateStore, max_jobs: int, out: Path) -> None:
    parts = store.values[JOB_STATE_KEY]["parts"]
    assert len(parts) == 3
    texts = [long_text(12)[part["start"] : part["end"]] for part in parts]
    log = create_log(sandbox)
    accepted = [text for text, outcome in log if outcome == "accepted"]
    assert sorted(accepted) == sorted(texts)  # exactly one accepted create per part
    refused = [text for text, outcome in log if outcome == "busy"]
    assert refused and set(refused) <= set(texts)  # parts refused busy were created later
    assert len(refused) <= 3 * len(texts)  # a few rounds of refusals, each after a wait: no hot loop
    assert all(outcome in ("accepted", "busy") for _, outcome in log)
    assert sandbox.jobs_high_water() <= max_jobs
    written = out.read_bytes()
    assert len(written) > 1000 and written[:3] == b"ID3"


@pytest.mark.parametrize("max_jobs", [1, 2])
def test_parts_refused_busy_are_created_later_not_deferrable(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, max_jobs: int
) -> None:
    a_full_account(pixverse_sandbox, max_jobs)
    store = MemoryStateStore()
    out = tmp_path / "long.mp3"
    uri = tts_op(out, deferrable=False).execute(context(store))
    assert uri.endswith("long.mp3")
    check_parts(pixverse_sandbox, store, max_jobs, out)


async def _fire(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload  # type: ignore[no-any-return]
    raise AssertionError("the trigger ended without an event")


def run_deferred(operator: Any, ctx: dict[str, Any], *, deferrals: int = 20) -> tuple[Any, list[str]]:
    """Run a task as Airflow would: each deferral's trigger runs (alone), then the task resumes with its event."""
    triggers: list[str] = []
    resume: Any = functools.partial(operator.execute, ctx)
    for _ in range(deferrals):
        try:
            return resume(), triggers
        except TaskDeferred as deferred:
            triggers.append(type(deferred.trigger).__name__)
            event = asyncio.run(_fire(deferred.trigger))
            method = getattr(operator, deferred.method_name)
            resume = functools.partial(method, ctx, event=event, **(deferred.kwargs or {}))
    raise AssertionError(f"still deferring after {deferrals} deferrals: {triggers}")


def test_parts_refused_busy_are_created_later_deferred(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    a_full_account(pixverse_sandbox, 1)
    store = MemoryStateStore()
    out = tmp_path / "long.mp3"
    uri, triggers = run_deferred(tts_op(out), context(store))
    assert uri.endswith("long.mp3")
    assert triggers[0] == "PixVerseAccountCapacityTrigger"  # every part refused at first: the queue
    assert "PixVerseSpeechTrigger" in triggers  # the parts in flight are waited for in the triggerer too
    check_parts(pixverse_sandbox, store, 1, out)
