from __future__ import annotations

import asyncio
import importlib
import time
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

import pytest
from pixverse_testing import FakeClock, api_requests

from airflow_provider_pixverse._api.waiting import final_clip
from airflow_provider_pixverse.exceptions import PixVerseJobFailedError, PixVerseRateLimitError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
EVENT_KEYS = {"status", "audio_id", "clip", "message", "error_type", "error"}


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
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The hooks the trigger makes run on a fake clock: time moves only when the trigger sleeps."""
    fake = FakeClock()

    def make_hook(self: PixVerseSpeechTrigger) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id, clock=fake)

    monkeypatch.setattr(PixVerseSpeechTrigger, "_make_hook", make_hook)
    return fake


def fake_trigger(clock: FakeClock, audio_id: str, *, seconds: float = 300.0, poll_interval: float = 10.0) -> Any:
    return PixVerseSpeechTrigger(audio_id=audio_id, end_time=clock.now + seconds, poll_interval=poll_interval)


def scripted(sandbox: PixVerseSandbox, audio_id: str, status: int, name: str, *, final: bool, count: int = 1) -> None:
    """The next ``count`` polls answer this status."""
    body = {"audio_id": audio_id, "audio_status": status, "audio_status_name": name, "audio_status_final": final}
    sandbox.add_fault("status", code=200, body=body, count=count)


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
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, count=1)
    pixverse_sandbox.add_fault("status", code=503, count=3)
    pixverse_sandbox.add_fault("drop", count=1)
    with patch("random.random", return_value=0.0):
        event = await first_event(fake_trigger(clock, audio_id))
    assert event["status"] == "success"
    assert len(api_requests(pixverse_sandbox)) == 6
    # One interval first, then the backoff. The dropped connection costs none: aiohttp sends an
    # idempotent GET once more at once when a kept-alive connection turns out closed.
    assert clock.waits == [10.0, 1.0, 2.0, 4.0, 8.0]


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
    assert set(kwargs) == {"audio_id", "end_time", "pixverse_conn_id", "poll_interval", "started"}
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


async def test_a_final_status_that_is_not_completed_is_a_failure(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    """An unknown status with audio_status_final true is final and not COMPLETED: never success."""
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    scripted(pixverse_sandbox, audio_id, 42, "ARCHIVED", final=True)
    event = await first_event(fake_trigger(clock, audio_id))
    assert event["status"] == "failed"
    assert "ARCHIVED" in event["message"] and "not COMPLETED" in event["message"]
    final = final_clip(event, timeout_error=TimeoutError)
    assert not final.completed
    with pytest.raises(PixVerseJobFailedError, match="ARCHIVED"):
        final.raise_if_failed()


async def test_no_poll_follows_a_non_final_answer_without_a_wait(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    scripted(pixverse_sandbox, audio_id, 10, "GENERATING", final=False, count=5)
    event = await first_event(fake_trigger(clock, audio_id, poll_interval=10.0))
    assert event["status"] == "success"
    assert len(api_requests(pixverse_sandbox)) == 6
    assert len(clock.waits) == 6
    assert all(9.0 <= wait <= 10.0 for wait in clock.waits), clock.waits


@pytest.mark.parametrize("retry_after", ["0", "-5", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
async def test_a_retry_after_that_would_hot_loop_is_floored(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock, retry_after: str
) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, retry_after=retry_after, count=-1)
    event = await first_event(fake_trigger(clock, audio_id, seconds=60.0))
    assert event["status"] == "timeout"
    floor = PixVerseHook().retry_policy.min_delay
    # Every wait but the last (cut short by the deadline) is at least the backoff's first step.
    assert min(clock.waits[:-1]) >= floor and floor > 0
    # 60 s at no less than 0.5 s a wait, capped backoff: a bounded number of requests, never a hot loop.
    assert len(api_requests(pixverse_sandbox)) <= 60 / floor + 1


async def test_retries_and_backoff_spend_from_the_deadline(pixverse_sandbox: PixVerseSandbox, clock: FakeClock) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, retry_after="100", count=-1)
    started = clock.now
    event = await first_event(fake_trigger(clock, audio_id, seconds=30.0))
    assert event["status"] == "timeout"
    assert clock.now - started == pytest.approx(30.0)


async def test_an_error_keeps_its_class_and_fields_through_the_event(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    pixverse_sandbox.add_fault("status", code=404, count=1)
    event = await first_event(fake_trigger(clock, audio_id))
    with pytest.raises(Exception) as info:
        final_clip(event, timeout_error=TimeoutError)
    error = info.value
    assert type(error).__name__ == "PixVerseNotFoundError"
    assert error.http_status == 404 and error.audio_id == audio_id  # type: ignore[attr-defined]


async def test_each_change_of_status_and_a_heartbeat_are_logged(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    scripted(pixverse_sandbox, audio_id, 5, "QUEUED", final=False, count=2)
    scripted(pixverse_sandbox, audio_id, 10, "GENERATING", final=False, count=12)
    event = await first_event(fake_trigger(clock, audio_id, seconds=1000.0))
    assert event["status"] == "success"
    lines = [line for line in "".join(capsys.readouterr()).splitlines() if audio_id in line]
    assert sum("is QUEUED" in line for line in lines) == 1
    # GENERATING: once on the change, then about once a minute over 12 polls of 9-10 s.
    assert 2 <= sum("is GENERATING" in line for line in lines) <= 3
    assert "status COMPLETED" in lines[-1]


def test_a_rate_limit_error_survives_pickling() -> None:
    import pickle

    error = PixVerseRateLimitError("busy", audio_id="user:1-pixverse:a@b.c-speech:1", retry_after=7.5)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is PixVerseRateLimitError
    assert (again.retry_after, again.audio_id, again.http_status, str(again)) == (7.5, error.audio_id, 429, str(error))
