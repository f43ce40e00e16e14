"""The async side of the hook: one poll for the trigger, and its transport's failures mapped in one place."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from hostile_server import SeenRequest, hostile_server
from pixverse_testing import api_requests, use_connection

from airflow_provider_pixverse.exceptions import PixVerseConnectionError, PixVerseNotFoundError, PixVerseServerError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.models import AudioStatus

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

AUDIO_ID = "user:1-pixverse:a@b.c-speech:1"


async def test_one_poll_reads_the_clip(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl", email="a.b+c@example.com")
    try:
        polled = await hook.apoll_speech(clip["audio_id"])
    finally:
        await hook.aclose()
    assert polled.audio_id == clip["audio_id"] and polled.audio_status_enum is AudioStatus.QUEUED
    (request,) = api_requests(pixverse_sandbox)
    assert request.raw_path == f"/v2/pixverse/speech/{clip['audio_id']}"  # sent exactly as given
    assert hook._async_client is None


@pytest.mark.parametrize(("code", "error"), [(404, PixVerseNotFoundError), (503, PixVerseServerError)])
async def test_one_poll_never_retries(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, code: int, error: type[Exception]
) -> None:
    pixverse_sandbox.add_fault("status", code=code, count=1)
    try:
        with pytest.raises(error):
            await hook.apoll_speech(AUDIO_ID)
    finally:
        await hook.aclose()
    assert len(api_requests(pixverse_sandbox)) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hang_up(request: SeenRequest, sock: socket.socket) -> None:
    """Read the whole request, then close without a word: the request certainly arrived."""


@pytest.mark.parametrize("transport", ["sync", "async"])
async def test_each_transport_tells_never_sent_from_sent(monkeypatch: pytest.MonkeyPatch, transport: str) -> None:
    """A create may be sent again only when it never reached the server: both transports must tell."""

    async def poll(conn_id: str) -> None:
        hook = PixVerseHook(conn_id)
        try:
            if transport == "sync":
                hook.poll_speech(AUDIO_ID)
            else:
                await hook.apoll_speech(AUDIO_ID)
        finally:
            await hook.aclose()

    refused_host = f"http://127.0.0.1:{closed_port()}"
    use_connection(monkeypatch, "pixverse_refused", host=refused_host, password="test-token-for-a-dead-end")
    with pytest.raises(PixVerseConnectionError) as refused:
        await poll("pixverse_refused")
    assert refused.value.request_sent is False

    with hostile_server(hang_up) as server:
        use_connection(monkeypatch, "pixverse_hangs_up", host=server.url, password="test-token-for-a-dead-end")
        with pytest.raises(PixVerseConnectionError) as cut:
            await poll("pixverse_hangs_up")
    assert cut.value.request_sent is True
    assert server.requests and server.requests[0].path == f"/v2/pixverse/speech/{AUDIO_ID}"
