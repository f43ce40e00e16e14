"""No trigger fires seconds after its task deferred: Airflow 3.2-3.3 may fail such a task (apache/airflow#67287)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred
from pixverse_testing import MemoryStateStore, RecordingTaskInstance

from airflow_provider_pixverse._api.capacity import SETTLE_SECONDS
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.operators.batch import PixVerseBatchTextToSpeechOperator
from airflow_provider_pixverse.operators.pixverse import PixVerseCreateSpeechOperator
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
pytestmark = pytest.mark.real_settle


def context() -> dict[str, Any]:
    return {"ti": RecordingTaskInstance(), "task_state_store": MemoryStateStore()}


def test_a_clip_wait_defers_to_a_trigger_that_holds_its_event_for_the_settle_time(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=5)
    operator = PixVerseCreateSpeechOperator(task_id="create", text="Settle first.", voice_id=VOICE, poll_interval=0.05)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, PixVerseSpeechTrigger)
    assert trigger.not_before >= before + SETTLE_SECONDS
    assert trigger.serialize()[1]["not_before"] == trigger.not_before


def test_a_clip_trigger_fires_no_sooner_than_its_not_before_even_for_a_clip_already_final(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    audio_id = PixVerseHook().create_speech("Already said.", VOICE)
    pixverse_sandbox.finish_clip(audio_id)
    start = time.time()
    trigger = PixVerseSpeechTrigger(audio_id=audio_id, end_time=start + 60, poll_interval=0.05, not_before=start + 0.6)

    async def fire() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(fire())
    assert event["status"] == "success" and time.time() - start >= 0.6


def test_a_corpus_defers_to_a_trigger_that_fires_no_sooner_than_the_settle_time(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    operator = PixVerseBatchTextToSpeechOperator(
        task_id="corpus", texts={"one": "Said once."}, voice_id=VOICE, destination=f"file://{tmp_path}"
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context())
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["not_before"] >= kwargs["deferred_at"] + SETTLE_SECONDS
