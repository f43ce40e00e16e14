from __future__ import annotations

import asyncio
import importlib
import time
from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import FakeClock, api_requests

from airflow_provider_pixverse._api.retry import RetryPolicy
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
EVENT_KEYS = {"status", "audio_id", "clip", "message", "error_type"}


def make_trigger(audio_id: str, *, seconds: float = 30.0, poll_interval: float = 0.02) -> PixVerseSpeechTrigger:
    return PixVerseSpeechTrigger(audio_id=audio_id, end_time=time.time() + seconds, poll_interval=poll_interval)


async def first_event(trigger: PixVerseSpeechTrigger) -> dict[str, Any]:
    """Drive run() by hand, as the triggerer does, and take its one event."""
    events = trigger.run()
    event = await events.asend(None)
    with pytest.raises(StopAsyncIteration):
        await events.asend(None)
    assert set(event.payload) == EVENT_KEYS
    return event.payload


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> list[PixVerseHook]:
    """Hooks the trigger makes get a fake retry clock; the list lets tests look at them."""
    made: list[PixVerseHook] = []
    clock = FakeClock()

    def make_hook(self: PixVerseSpeechTrigger) -> PixVerseHook:
        hook = PixVerseHook(self.pixverse_conn_id, retry_policy=RetryPolicy(jitter=0), async_sleep=clock.async_sleep)
        made.append(hook)
        return hook

    monkeypatch.setattr(PixVerseSpeechTrigger, "_make_hook", make_hook)
    return made


async def test_completes_after_several_polls(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.1, generating_seconds=0.1)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    event = await first_event(make_trigger(audio_id))
    assert event["status"] == "success"
    assert event["audio_id"] == audio_id
    assert event["clip"]["audio_status_name"] == "COMPLETED" and event["clip"]["url"]
    polls = [r for r in api_requests(pixverse_sandbox) if audio_id in r.raw_path]
    assert len(polls) >= 3


async def test_failed_clip_ends_failed_with_the_reason(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.02, generating_seconds=0.02)
    pixverse_sandbox.fail_next_jobs(1, fail_code="E_BACKEND", fail_reason="voice backend unavailable")
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    event = await first_event(make_trigger(audio_id))
    assert event["status"] == "failed"
    assert "E_BACKEND" in event["message"] and "voice backend unavailable" in event["message"]
    assert event["clip"]["fail_code"] == "E_BACKEND"


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (401, "PixVerseAuthError"),
        (402, "PixVersePaymentError"),
        (404, "PixVerseNotFoundError"),
        (412, "PixVersePaymentError"),
        (422, "PixVerseModerationError"),
    ],
)
async def test_permanent_errors_end_at_once(pixverse_sandbox: PixVerseSandbox, code: int, error_type: str) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    pixverse_sandbox.add_fault("status", code=code, count=-1)
    event = await first_event(make_trigger(audio_id))
    assert event["status"] == "error"
    assert event["error_type"] == error_type
    assert f"HTTP {code}" in event["message"] and audio_id in event["message"]
    assert len(api_requests(pixverse_sandbox)) == 1


async def test_retry_after_is_waited_out_before_the_next_request(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, retry_after="1", count=1)
    event = await first_event(make_trigger(audio_id))
    assert event["status"] == "success"
    first, second = api_requests(pixverse_sandbox)
    assert first.status == 429
    assert second.at - first.at >= 1.0


async def test_429_without_retry_after_and_5xx_burst_back_off(
    pixverse_sandbox: PixVerseSandbox, hooks: list[PixVerseHook]
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, count=1)
    pixverse_sandbox.add_fault("status", code=503, count=3)
    pixverse_sandbox.add_fault("drop", count=1)
    event = await first_event(make_trigger(audio_id))
    assert event["status"] == "success"
    assert len(api_requests(pixverse_sandbox)) == 6
    waits = hooks[0].async_sleep.__self__.waits  # type: ignore[attr-defined]
    assert waits[0] == pytest.approx(0.02)  # the first poll waits one interval
    # The dropped connection costs no backoff: the transport sends an idempotent GET once more at once.
    assert waits[1:] == [1.0, 2.0, 4.0, 8.0]


async def test_clip_deleted_mid_poll(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    pixverse_sandbox.add_fault("delete_after_polls", audio_id=audio_id, polls=2)
    event = await first_event(make_trigger(audio_id))
    assert event["status"] == "error"
    assert event["error_type"] == "PixVerseNotFoundError"
    assert "deleted or never existed" in event["message"]
    assert event["clip"]["audio_status_name"] == "QUEUED"
    assert len(api_requests(pixverse_sandbox)) == 3


async def test_deadline_ends_with_timeout(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    event = await first_event(make_trigger(audio_id, seconds=0.2, poll_interval=0.05))
    assert event["status"] == "timeout"
    assert "still QUEUED at the deadline" in event["message"]


async def test_serialization_round_trip_behaves_the_same(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.05, generating_seconds=0.05)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    trigger = make_trigger(audio_id)
    classpath, kwargs = trigger.serialize()
    assert pixverse_sandbox.token not in repr(kwargs)
    assert set(kwargs) == {"audio_id", "end_time", "pixverse_conn_id", "poll_interval"}
    module, name = classpath.rsplit(".", 1)
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert (await first_event(again))["status"] == (await first_event(trigger))["status"] == "success"


async def test_cancellation_closes_the_client(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    pixverse_sandbox.add_fault("delay", seconds=30, count=1)  # cancelled while the request is in flight
    trigger = PixVerseSpeechTrigger(audio_id=audio_id, end_time=time.time() + 60, poll_interval=0.01)
    hooks_seen: list[PixVerseHook] = []
    make_hook = PixVerseSpeechTrigger._make_hook
    monkeypatch.setattr(
        PixVerseSpeechTrigger, "_make_hook", lambda self: hooks_seen.append(make_hook(self)) or hooks_seen[-1]
    )
    task = asyncio.ensure_future(trigger.run().asend(None))
    while not api_requests(pixverse_sandbox):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    assert hooks_seen[0]._async_client is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hooks_seen[0]._async_client is None


async def test_unknown_status_is_not_final(
    pixverse_sandbox: PixVerseSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")
    pixverse_sandbox.add_fault("status", code=200, body={"audio_id": clip["audio_id"], "audio_status": 42}, count=2)
    event = await first_event(make_trigger(clip["audio_id"]))
    assert event["status"] == "success"
    assert len(api_requests(pixverse_sandbox)) == 3
    assert "unknown to this provider" in "".join(capsys.readouterr())
