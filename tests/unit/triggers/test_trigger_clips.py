"""PixVerseSpeechClipsTrigger: the parts of one text waited for together, one event for all of them."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_pixverse._api.waiting import final_clip
from airflow_provider_pixverse._compat import HAS_SHARED_STREAMS
from airflow_provider_pixverse.exceptions import PixVerseJobFailedError
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechClipsTrigger, PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
EVENT_KEYS = {"status", "audio_id", "clip", "message", "error_type", "error"}
INTERVAL = 0.2


def clips_trigger(audio_ids: list[str], *, seconds: float = 30.0) -> PixVerseSpeechClipsTrigger:
    return PixVerseSpeechClipsTrigger(audio_ids=audio_ids, end_time=time.time() + seconds, poll_interval=INTERVAL)


async def run_alone(trigger: PixVerseSpeechClipsTrigger) -> dict[str, Any]:
    """Drive run() as the triggerer does before 3.3: one event, then the end."""
    events = trigger.run()
    event = await events.asend(None)
    with pytest.raises(StopAsyncIteration):
        await events.asend(None)
    return dict(event.payload)


def add_clips(sandbox: PixVerseSandbox, n: int, **kwargs: Any) -> list[str]:
    return [sandbox.add_clip(text=f"Part {i}", voice_id=VOICE, **kwargs)["audio_id"] for i in range(n)]


async def test_one_event_with_every_clip_in_order(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.2, generating_seconds=0.3)
    ids = add_clips(pixverse_sandbox, 2)
    slow = pixverse_sandbox.add_clip(text="Part slow", voice_id=VOICE, ready_after=1.0)["audio_id"]
    failed = pixverse_sandbox.add_clip(text="Part failed", voice_id=VOICE, status="FAILED", fail_reason="busy")
    audio_ids = [slow, *ids, failed["audio_id"]]
    event = await run_alone(clips_trigger(audio_ids))
    assert event["status"] == "clips" and "4 clips" in event["message"]
    assert [e["audio_id"] for e in event["events"]] == audio_ids
    assert all(set(e) == EVENT_KEYS for e in event["events"])  # each the one-clip event
    assert [e["status"] for e in event["events"]] == ["success", "success", "success", "failed"]
    with pytest.raises(PixVerseJobFailedError, match="busy"):
        final_clip(event["events"][3], timeout_error=TimeoutError).raise_if_failed()


async def test_an_error_no_wait_cures_ends_it_at_once(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    ids = add_clips(pixverse_sandbox, 3)
    pixverse_sandbox.delete_clip(ids[1])
    started = time.monotonic()
    event = await run_alone(clips_trigger(ids))
    assert time.monotonic() - started < INTERVAL * 4
    assert [(e["audio_id"], e["status"], e["error_type"]) for e in event["events"]] == [
        (ids[1], "error", "PixVerseNotFoundError")
    ]


async def test_the_deadline_ends_every_clip_still_waiting(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    ids = add_clips(pixverse_sandbox, 2)
    done = pixverse_sandbox.add_clip(text="Done", voice_id=VOICE, status="COMPLETED")["audio_id"]
    event = await run_alone(clips_trigger([*ids, done], seconds=0.5))
    assert [e["status"] for e in event["events"]] == ["timeout", "timeout", "success"]


def test_serialization_round_trip_keeps_no_secret() -> None:
    trigger = clips_trigger(["user:1-pixverse:a@b.c-speech:1", "user:1-pixverse:a@b.c-speech:2"])
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechClipsTrigger"
    assert PixVerseSpeechClipsTrigger(**kwargs).serialize() == (path, kwargs)
    assert set(kwargs) == {"audio_ids", "end_time", "pixverse_conn_id", "poll_interval", "started"}
    with pytest.raises(ValueError, match="nothing to wait for"):
        clips_trigger([])


@pytest.mark.skipif(not HAS_SHARED_STREAMS, reason="shared streams arrived in Airflow 3.3")
async def test_it_shares_its_accounts_poll_with_the_one_clip_triggers(pixverse_sandbox: PixVerseSandbox) -> None:
    from airflow.triggers.shared_stream import SharedStreamManager

    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.4)
    parts = add_clips(pixverse_sandbox, 3)
    single = add_clips(pixverse_sandbox, 1)[0]
    triggers: list[Any] = [
        clips_trigger(parts),
        PixVerseSpeechTrigger(audio_id=single, end_time=time.time() + 30, poll_interval=INTERVAL),
    ]
    assert triggers[0].shared_stream_key() == triggers[1].shared_stream_key()
    pixverse_sandbox.reset_request_counts()
    manager = SharedStreamManager()

    async def one(trigger_id: int, trigger: Any) -> Any:
        key = trigger.shared_stream_key()
        stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        try:
            async for event in trigger.filter_shared_stream(stream):
                return event.payload
        finally:
            await manager.unsubscribe(trigger_id, key)
        return None

    together, alone = await asyncio.gather(*(one(i, t) for i, t in enumerate(triggers)))
    await manager.stop_all()
    assert [e["status"] for e in together["events"]] == ["success"] * 3 and alone["status"] == "success"
    counts = pixverse_sandbox.request_counts()
    assert counts["get"] == 0 and counts["list"] >= 1  # every clip came from the shared listing
