from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pixverse_testing import FakeClock, api_requests

from airflow_provider_pixverse._api import (
    AudioStatus,
    PixVerseConnectionError,
    PixVerseNotFoundError,
    PixVerseServerError,
)
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox


async def test_async_twins(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    try:
        audio_id = await hook.acreate_speech("Hello there", "minimax_english_radiant_girl")
        clip = await hook.aget_speech(audio_id)
        assert clip.audio_status_enum is AudioStatus.COMPLETED
        assert [c.audio_id for c in await hook.alist_speech()] == [audio_id]
        assert await hook.alist_voices()
        assert (await hook.alist_models())["default_model"] == "speech-2.8-hd"
        assert api_requests(pixverse_sandbox)[1].raw_path == f"/v2/pixverse/speech/{audio_id}"
    finally:
        await hook.aclose()
    assert hook._async_client is None


async def test_async_retries_share_the_policy(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl")
    pixverse_sandbox.add_fault("status", code=429, retry_after="5", count=1)
    pixverse_sandbox.add_fault("status", code=500, count=1)
    try:
        assert (await hook.aget_speech(clip["audio_id"])).audio_id == clip["audio_id"]
    finally:
        await hook.aclose()
    assert clock.waits == [5.0, 2.0]


async def test_async_create_not_resent_on_5xx(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.add_fault("status", code=502, count=1, path_contains="/speech/create")
    try:
        with pytest.raises(PixVerseServerError):
            await hook.acreate_speech("Hello", "minimax_english_radiant_girl")
    finally:
        await hook.aclose()
    assert len(api_requests(pixverse_sandbox)) == 1 and clock.waits == []


async def test_single_get_does_not_retry(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.add_fault("status", code=404, count=1)
    try:
        with pytest.raises(PixVerseNotFoundError):
            await hook.aget_speech_once("user:1-pixverse:a@b.c-speech:1")
    finally:
        await hook.aclose()
    assert len(api_requests(pixverse_sandbox)) == 1


async def test_async_create_not_resent_after_a_dropped_connection(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    try:
        with pytest.raises(PixVerseConnectionError) as info:
            await hook.acreate_speech("Hello", "minimax_english_radiant_girl")
    finally:
        await hook.aclose()
    assert info.value.request_sent
    assert len(api_requests(pixverse_sandbox)) == 1 and clock.waits == []


async def test_async_id_with_at_plus_and_colon_is_sent_unencoded(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox
) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl", email="a.b+c@example.com")
    try:
        assert (await hook.aget_speech(clip["audio_id"])).audio_id == clip["audio_id"]
        assert len(await hook.alist_speech(email="a.b+c@example.com")) == 1
    finally:
        await hook.aclose()
    first, listing = api_requests(pixverse_sandbox)
    assert first.raw_path == f"/v2/pixverse/speech/{clip['audio_id']}"
    assert "email=a.b%2Bc%40example.com" in listing.raw_path
