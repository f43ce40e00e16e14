"""A 429 to a create means the account is busy (no job made); to a GET it is a rate limit, as before."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_pixverse._api.errors import error_from_details
from airflow_provider_pixverse._api.retry import RetryPolicy
from airflow_provider_pixverse.exceptions import PixVerseAccountBusyError, PixVerseRateLimitError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from pixverse_testing import FakeClock

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


def full(sandbox: PixVerseSandbox) -> str:
    """One job at most, running for an hour: the sandbox answers a create 429 with ``Retry-After: 30``."""
    sandbox.set_clock(queued_seconds=0, generating_seconds=3600)
    sandbox.set_max_jobs(1)
    audio_id = PixVerseHook().create_speech("Another task's job.", VOICE)
    sandbox.clear_requests()
    return audio_id


def creates(sandbox: PixVerseSandbox) -> list[str]:
    return [r.to_json()["outcome"] for r in sandbox.requests if r.endpoint == "create"]


def test_retry_busy_false_sends_one_create_and_raises_busy_with_the_retry_after(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    full(pixverse_sandbox)
    with pytest.raises(PixVerseAccountBusyError, match="no job was made") as refused:
        hook.create_speech("Mine.", VOICE, retry_busy=False)
    assert creates(pixverse_sandbox) == ["busy"]
    assert clock.waits == []  # nothing slept: the caller decides how to wait
    assert refused.value.retry_after == 30.0
    assert refused.value.http_status == 429
    assert isinstance(refused.value, PixVerseRateLimitError)  # still a 429 to whoever catches those
    assert pixverse_sandbox.token not in str(refused.value)
    again = error_from_details(refused.value.details())  # as a trigger event carries it
    assert type(again) is PixVerseAccountBusyError and again.retry_after == 30.0


def test_by_default_a_busy_create_is_retried_per_the_policy_then_raised_busy(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    full(pixverse_sandbox)
    hook = PixVerseHook(retry_policy=RetryPolicy(max_attempts=3, jitter=0.0, max_retry_after=20.0), clock=clock)
    with pytest.raises(PixVerseAccountBusyError) as refused:
        hook.create_speech("Mine.", VOICE)
    assert creates(pixverse_sandbox) == ["busy", "busy", "busy"]
    assert clock.waits == [20.0, 20.0]  # Retry-After (30), capped by the policy
    assert refused.value.retry_after == 30.0


def test_by_default_a_create_refused_busy_once_is_made_on_the_retry(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.add_fault("status", code=429, retry_after="4", count=1, path_contains="/speech/create")
    audio_id = hook.create_speech("Mine.", VOICE)
    assert audio_id.startswith("user:")
    assert clock.waits == [4.0]
    assert pixverse_sandbox.create_outcomes()["accepted"] == 1


def test_any_429_to_a_create_told_not_to_retry_is_busy(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.add_fault("status", code=429, retry_after="9", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseAccountBusyError) as refused:
        hook.create_speech("Mine.", VOICE, retry_busy=False)
    assert refused.value.retry_after == 9.0 and clock.waits == []


def test_several_creates_each_refused_busy_once(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    full(pixverse_sandbox)
    arguments = {"voice_id": VOICE, "retry_busy": False}
    results = dict(hook.create_speech_many([("One.", arguments), ("Two.", arguments)], concurrency=2))
    assert all(isinstance(result, PixVerseAccountBusyError) for result in results.values())
    assert sorted(results) == [0, 1]
    assert creates(pixverse_sandbox) == ["busy", "busy"] and clock.waits == []


def test_a_429_to_a_get_is_a_rate_limit_not_busy(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    audio_id = pixverse_sandbox.add_clip(text="Listed.", voice_id=VOICE)["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, retry_after="2", count=-1, path_contains="/speech/")
    with pytest.raises(PixVerseRateLimitError) as limited:
        hook.get_speech(audio_id)
    assert not isinstance(limited.value, PixVerseAccountBusyError)
    assert len(clock.waits) == hook.retry_policy.max_attempts - 1  # retried as GETs are
    with pytest.raises(PixVerseRateLimitError) as listed:
        hook.list_speech()
    assert not isinstance(listed.value, PixVerseAccountBusyError)
