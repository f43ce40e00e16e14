"""The async create (for triggers): the sync create's request and answer, sent once, a 429 raised at once."""

from __future__ import annotations

import gzip
import json
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
from hostile_server import SeenRequest, hostile_server, http_answer
from pixverse_testing import api_requests, use_connection

from airflow_provider_pixverse._api.request import MAX_ANSWER_BYTES
from airflow_provider_pixverse.exceptions import (
    PixVerseAccountBusyError,
    PixVerseBadRequestError,
    PixVerseConnectionError,
    PixVerseInvalidInputError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.sandbox.forms import parse_fields

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
TOKEN = "acreate-test-token-0123456789"
EMAIL = "corpus.a+1@example.com"


async def acreate(hook: PixVerseHook, *args: Any, **settings: Any) -> str:
    try:
        return await hook.acreate_speech(*args, **settings)
    finally:
        await hook.aclose()


def created_fields(sandbox: PixVerseSandbox) -> list[dict[str, Any]]:
    creates = [request for request in api_requests(sandbox) if request.method == "POST"]
    return [parse_fields(request.body, request.headers.get("content-type")) for request in creates]


async def test_the_same_request_as_the_sync_create(pixverse_sandbox: PixVerseSandbox) -> None:
    settings = {"model": "speech-2.8-turbo", "speed": 1.25, "pitch": -2, "emotion": "calm", "language_code": "en"}
    sync_id = PixVerseHook().create_speech("Hello, corpus.", VOICE, **settings)
    async_id = await acreate(PixVerseHook(), "Hello, corpus.", VOICE, **settings)
    assert async_id != sync_id
    assert pixverse_sandbox.clip(async_id)["audio_id"] == async_id  # a job was made
    sync_fields, async_fields = created_fields(pixverse_sandbox)
    assert async_fields == sync_fields
    assert async_fields == {
        "text": "Hello, corpus.",
        "voice_id": VOICE,
        "model": "speech-2.8-turbo",
        "speed": "1.25",
        "pitch": "-2",
        "emotion": "calm",
        "language_code": "en",
    }
    assert pixverse_sandbox.create_outcomes()["accepted"] == 2


async def test_the_connection_email_is_the_default_account(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(
        monkeypatch, "pixverse_mail", host=pixverse_sandbox.url, password=pixverse_sandbox.token, extra={"email": EMAIL}
    )
    audio_id = await acreate(PixVerseHook("pixverse_mail"), "Hello", VOICE)
    assert f"pixverse:{EMAIL}-speech:" in audio_id
    other = await acreate(PixVerseHook("pixverse_mail"), "Hello", VOICE, email="other@example.com")
    assert "pixverse:other@example.com-speech:" in other


async def test_a_busy_account_raises_at_once_and_sends_nothing_more(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    pixverse_sandbox.set_max_jobs(1)
    await acreate(PixVerseHook(), "First", VOICE)
    started = time.monotonic()
    with pytest.raises(PixVerseAccountBusyError) as busy:
        await acreate(PixVerseHook(), "Second", VOICE)
    assert time.monotonic() - started < 5  # no wait, no retry
    assert busy.value.http_status == 429
    assert busy.value.retry_after is not None and 1 <= busy.value.retry_after <= 120
    assert "no job was made" in str(busy.value)
    assert pixverse_sandbox.create_outcomes() == {"accepted": 1, "busy": 1, "refused": 0}
    assert len(created_fields(pixverse_sandbox)) == 2


async def test_a_bad_setting_sends_nothing(pixverse_sandbox: PixVerseSandbox) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="stability=0.5"):
        await acreate(PixVerseHook(), "Hello", VOICE, model="speech-2.8-hd", stability=0.5)
    with pytest.raises(PixVerseInvalidInputError, match="takes no retry_busy"):
        await acreate(PixVerseHook(), "Hello", VOICE, retry_busy=True)
    assert api_requests(pixverse_sandbox) == []


# -- a hostile server ------------------------------------------------------------------------------------


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Start a hostile server answering with ``answer``; the connection ``pixverse_hostile`` points at it."""
    contexts: list[Any] = []

    def start(answer: Callable[[SeenRequest, socket.socket], None], *, timeout: float = 2.0) -> Any:
        context = hostile_server(answer)
        server = context.__enter__()
        contexts.append(context)
        use_connection(monkeypatch, "pixverse_hostile", host=server.url, password=TOKEN, extra={"timeout": timeout})
        return server

    yield start
    for context in contexts:
        context.__exit__(None, None, None)


def answering(status: int, body: object, headers: dict[str, str] | None = None) -> Callable[..., None]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(status, data, {"Content-Type": "application/json", **(headers or {})}))

    return answer


async def test_the_token_goes_to_the_api_host_alone(serve: Callable[..., Any]) -> None:
    server = serve(answering(200, {"audio_id": "user:1-pixverse:a@b.c-speech:7"}))
    assert await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE) == "user:1-pixverse:a@b.c-speech:7"
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v2/pixverse/speech/create")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_429_is_busy_with_its_retry_after(serve: Callable[..., Any]) -> None:
    server = serve(answering(429, {"error": "busy", "code": 429}, {"Retry-After": "7"}))
    with pytest.raises(PixVerseAccountBusyError) as busy:
        await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE)
    assert busy.value.retry_after == 7.0
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (answering(503, {"error": "down", "code": 503}), PixVerseServerError, "down"),
        (answering(200, b"<html>not json</html>"), PixVerseResponseError, "not JSON"),
        (answering(200, {"id": "no audio_id"}), PixVerseResponseError, "no audio_id"),
        (answering(200, [1, 2]), PixVerseResponseError, "expected a JSON object"),
        (lambda request, sock: None, PixVerseConnectionError, "POST /speech/create failed"),  # hangs up
    ],
)
async def test_a_create_is_sent_once_whatever_the_answer(
    serve: Callable[..., Any], answer: Callable[..., None], error: type[Exception], message: str
) -> None:
    server = serve(answer)
    with pytest.raises(error, match=message) as failed:
        await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE)
    if isinstance(failed.value, PixVerseConnectionError):
        assert failed.value.request_sent is True  # it may have made a job: never sent again
    time.sleep(0.2)  # anything sent again would have arrived by now
    assert len(server.requests) == 1


async def test_a_slow_answer_is_cut_at_the_timeout(serve: Callable[..., Any]) -> None:
    def dribble(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
        time.sleep(3)

    server = serve(dribble, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(PixVerseConnectionError) as failed:
        await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE)
    assert time.monotonic() - started < 2.5
    assert failed.value.request_sent is True
    assert len(server.requests) == 1


@pytest.mark.parametrize("announce", [True, False])
async def test_an_answer_over_the_limit_is_refused(serve: Callable[..., Any], announce: bool) -> None:
    """A gzip bomb (or an announced length) over the answer cap: refused at the cap, decoded."""
    bomb = gzip.compress(b'{"audio_id": "' + b"x" * (MAX_ANSWER_BYTES + 1024) + b'"}', compresslevel=9)
    headers = {"Content-Encoding": "gzip"} if not announce else {}
    body = bomb if not announce else b"{}"

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        raw = http_answer(200, body, {"Content-Type": "application/json", **headers})
        if announce:
            raw = raw.replace(b"Content-Length: 2", f"Content-Length: {MAX_ANSWER_BYTES + 1}".encode())
        sock.sendall(raw)

    server = serve(answer)
    with pytest.raises(PixVerseResponseError, match=f"{MAX_ANSWER_BYTES}-byte limit"):
        await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE)
    assert len(server.requests) == 1


async def test_a_redirect_is_not_followed(serve: Callable[..., Any]) -> None:
    elsewhere = serve(answering(200, {"audio_id": "user:1-pixverse:a@b.c-speech:1"}))
    server = serve(answering(307, b"", {"Location": f"{elsewhere.url}/v2/pixverse/speech/create"}))
    with pytest.raises(PixVerseResponseError, match="redirects are not followed"):
        await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE)
    assert len(server.requests) == 1
    assert elsewhere.requests == []  # the token never went there


async def test_a_token_echoed_back_stays_out_of_the_error(serve: Callable[..., Any]) -> None:
    serve(answering(400, {"error": f"bad token {TOKEN} for this field", "code": 400}))
    with pytest.raises(PixVerseBadRequestError) as failed:
        await acreate(PixVerseHook("pixverse_hostile"), "Hello", VOICE)
    assert TOKEN not in str(failed.value)
    assert "***" in str(failed.value)
