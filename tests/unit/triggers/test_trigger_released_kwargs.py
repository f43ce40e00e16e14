"""A trigger serialized by the released provider still deserializes and runs to its event on this code.

The class paths and kwargs below are written out literally, as the release before the one waiting
engine serialized them (commit 0dc8677): a trigger already in flight in a running triggerer is
re-created from exactly these when the triggerer restarts on the new version.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


def import_string(classpath: str) -> Any:
    module, _, name = classpath.rpartition(".")
    return getattr(import_module(module), name)


async def run_to_event(classpath: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    trigger = import_string(classpath)(**kwargs)  # what the triggerer does with a stored trigger row
    events = trigger.run()
    event = await events.asend(None)
    await events.aclose()
    assert isinstance(event.payload, dict)
    return event.payload


async def test_a_released_one_clip_trigger_runs_to_its_event(pixverse_sandbox: PixVerseSandbox) -> None:
    clip = pixverse_sandbox.add_clip(text="Hello.", voice_id=VOICE, status="COMPLETED")
    classpath = "airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechTrigger"
    kwargs = {
        "audio_id": clip["audio_id"],
        "end_time": time.time() + 30,
        "pixverse_conn_id": "pixverse_default",
        "poll_interval": 0.02,
        "started": time.time(),
    }
    event = await run_to_event(classpath, kwargs)
    assert event["status"] == "success" and event["audio_id"] == clip["audio_id"]
    assert set(event) == {"status", "audio_id", "clip", "message", "error_type", "error"}
    # And what this code serializes is what the release read: the same path and kwargs.
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)


async def test_a_released_clips_trigger_runs_to_its_event(pixverse_sandbox: PixVerseSandbox) -> None:
    done = pixverse_sandbox.add_clip(text="One.", voice_id=VOICE, status="COMPLETED")
    failed = pixverse_sandbox.add_clip(text="Two.", voice_id=VOICE, status="FAILED")
    classpath = "airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechClipsTrigger"
    kwargs = {
        "audio_ids": [done["audio_id"], failed["audio_id"]],
        "end_time": time.time() + 30,
        "pixverse_conn_id": "pixverse_default",
        "poll_interval": 0.02,
        "started": None,
    }
    event = await run_to_event(classpath, kwargs)
    assert event["status"] == "clips"
    assert [one["audio_id"] for one in event["events"]] == kwargs["audio_ids"]
    assert [one["status"] for one in event["events"]] == ["success", "failed"]
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)
