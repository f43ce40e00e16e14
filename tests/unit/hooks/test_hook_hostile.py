"""Hostile and broken answers from the API or the media host: every limit bounded, the token kept secret."""

from __future__ import annotations

import gzip
import json
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
from hostile_server import SeenRequest, hostile_server, http_answer
from pixverse_testing import use_connection

from airflow_provider_pixverse._api.media import check_media_url
from airflow_provider_pixverse._api.request import MAX_ANSWER_BYTES
from airflow_provider_pixverse.exceptions import (
    PixVerseBadRequestError,
    PixVerseConnectionError,
    PixVerseInvalidInputError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

AUDIO_ID = "user:1-pixverse:a@b.c-speech:1"
TOKEN = "hostile-test-token-1234567890"


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Start a hostile server with ``answer`` and point the connection ``pixverse_hostile`` at it."""
    servers: list[Any] = []

    def start(answer: Callable[[SeenRequest, socket.socket], None], *, timeout: float = 2.0) -> Any:
        context = hostile_server(answer)
        server = context.__enter__()
        servers.append(context)
        use_connection(monkeypatch, "pixverse_hostile", host=server.url, password=TOKEN, extra={"timeout": timeout})
        return server

    yield start
    for context in servers:
        context.__exit__(None, None, None)


async def poll(transport: str) -> Any:
    hook = PixVerseHook("pixverse_hostile")
    try:
        if transport == "sync":
            return hook.poll_speech(AUDIO_ID)
        return await hook.apoll_speech(AUDIO_ID)
    finally:
        await hook.aclose()


def clip_json(**extra: Any) -> bytes:
    return json.dumps({"audio_id": AUDIO_ID, "audio_status": 10, "audio_status_final": False, **extra}).encode()


@pytest.mark.parametrize("transport", ["sync", "async"])
async def test_a_gzip_bomb_is_refused_at_the_limit(serve: Callable[..., Any], transport: str) -> None:
    """1 MiB of gzip could inflate to 1 GiB in memory; reading stops at the limit, decoded."""
    inflated = b'{"pad": "' + b" " * (4 * MAX_ANSWER_BYTES) + b'"}'
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < MAX_ANSWER_BYTES

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(200, bomb, {"Content-Encoding": "gzip", "Content-Type": "application/json"}))

    serve(answer)
    with pytest.raises(PixVerseResponseError, match=f"{MAX_ANSWER_BYTES}-byte limit"):
        await poll(transport)


@pytest.mark.parametrize("transport", ["sync", "async"])
@pytest.mark.parametrize("announce", [True, False])
async def test_a_huge_plain_answer_is_refused(serve: Callable[..., Any], transport: str, announce: bool) -> None:
    body = b"[" + b"1," * (MAX_ANSWER_BYTES // 2 + 10) + b"1]"

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        if announce:
            head += f"Content-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"\r\n")
        sock.sendall(body)

    serve(answer)
    with pytest.raises(PixVerseResponseError, match="limit of an API answer"):
        await poll(transport)


@pytest.mark.parametrize("transport", ["sync", "async"])
async def test_a_dribbled_answer_ends_at_the_total_time_limit(serve: Callable[..., Any], transport: str) -> None:
    """One byte every 0.2 s never trips a per-read timeout; the call's total limit (1 s) still ends it."""
    body = clip_json()

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for byte in body:
            sock.sendall(bytes([byte]))
            time.sleep(0.2)

    serve(answer, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(PixVerseConnectionError):
        await poll(transport)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("transport", ["sync", "async"])
async def test_deeply_nested_json_is_a_response_error(serve: Callable[..., Any], transport: str) -> None:
    body = b"[" * 200_000 + b"]" * 200_000

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(200, body, {"Content-Type": "application/json"}))

    serve(answer)
    with pytest.raises(PixVerseResponseError, match="nested too deeply"):
        await poll(transport)


@pytest.mark.parametrize("transport", ["sync", "async"])
async def test_an_answer_that_echoes_the_token_does_not_put_it_in_the_error(
    serve: Callable[..., Any], transport: str
) -> None:
    def answer(request: SeenRequest, sock: socket.socket) -> None:
        echo = json.dumps({"error": f"bad request, you sent {request.headers['authorization']}", "code": 400})
        sock.sendall(http_answer(400, echo.encode()))

    server = serve(answer)
    with pytest.raises(PixVerseBadRequestError) as info:
        await poll(transport)
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value.details())
    assert "***" in str(info.value)


def test_the_retry_warning_does_not_carry_an_echoed_token(
    serve: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(503, f"overloaded; request was {request.headers}".encode()))

    serve(answer)
    from airflow_provider_pixverse._api.retry import RetryPolicy

    hook = PixVerseHook("pixverse_hostile", retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(PixVerseServerError) as info:
        hook.get_speech(AUDIO_ID)
    output = "".join(capsys.readouterr())
    assert "try 2 of 2" in output
    assert TOKEN not in output and TOKEN not in str(info.value)


@pytest.mark.parametrize("token", [f"{TOKEN}\n", f" {TOKEN}\t"])
async def test_a_token_with_surrounding_whitespace_is_trimmed(
    serve: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    server = serve(lambda request, sock: sock.sendall(http_answer(200, clip_json())))
    use_connection(monkeypatch, "pixverse_hostile", host=server.url, password=token)
    assert (await poll("async")).audio_id == AUDIO_ID
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_token_with_control_characters_inside_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "pixverse_bad_token", password="abc\r\nX-Injected: 1")
    with pytest.raises(PixVerseInvalidInputError, match="pixverse_bad_token") as info:
        PixVerseHook("pixverse_bad_token").poll_speech(AUDIO_ID)
    assert "X-Injected" not in str(info.value)


# -- media ------------------------------------------------------------------------------------------

MP3 = b"ID3" + bytes(2000)


def media_hook(monkeypatch: pytest.MonkeyPatch, timeout: float = 2.0) -> PixVerseHook:
    # The API is plain http here (as the sandbox is), so plain http media may be fetched.
    use_connection(monkeypatch, "pixverse_media", host="http://127.0.0.1:9", password=TOKEN, extra={"timeout": timeout})
    return PixVerseHook("pixverse_media")


def read_all(hook: PixVerseHook, url: str, **kwargs: Any) -> bytes:
    with hook.open_media(url, **kwargs) as media:
        return b"".join(media.chunks)


@pytest.mark.parametrize(
    "location",
    ["ftp://127.0.0.1/x.mp3", "file:///etc/passwd", "javascript:alert(1)", "http://user:pass@127.0.0.1:9/x.mp3"],
)
def test_every_redirect_hop_is_held_to_the_media_rules(monkeypatch: pytest.MonkeyPatch, location: str) -> None:
    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(302, headers={"Location": location}))

    with hostile_server(answer) as server, pytest.raises(PixVerseInvalidInputError, match="refusing to download"):
        read_all(media_hook(monkeypatch), f"{server.url}/a.mp3")
    assert len(server.requests) == 1


def test_a_media_url_over_http_is_refused_when_the_api_is_https() -> None:
    """The rule every hop meets: an https API never lets its media (or a redirect of it) go plain http."""
    with pytest.raises(PixVerseInvalidInputError, match="only https"):
        check_media_url("http://internal-host/admin", api_scheme="https")
    assert check_media_url("https://media.pixverse.ai/a.mp3", api_scheme="https")


def test_redirects_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(302, headers={"Location": f"/loop{len(request.path)}.mp3"}))

    with hostile_server(answer) as server, pytest.raises(PixVerseResponseError, match="more than 5 times"):
        read_all(media_hook(monkeypatch), f"{server.url}/a.mp3")
    assert len(server.requests) == 6


def test_userinfo_in_a_media_url_is_never_sent_as_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(http_answer(200, MP3, {"Content-Type": "audio/mpeg"}))

    with hostile_server(answer) as server:
        url = server.url.replace("http://", "http://someone:secret@") + "/a.mp3"
        assert read_all(media_hook(monkeypatch), url) == MP3
    (request,) = server.requests
    assert "authorization" not in request.headers  # neither the URL's user:password nor .netrc's


def test_a_media_host_that_stalls_fails_the_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(MP3)}\r\n\r\n".encode() + MP3[:100])
        time.sleep(5)

    with hostile_server(answer) as server:
        started = time.monotonic()
        with pytest.raises(PixVerseConnectionError):
            read_all(media_hook(monkeypatch, timeout=0.5), f"{server.url}/a.mp3")
    assert time.monotonic() - started < 3


def test_a_dribbling_media_host_meets_the_total_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes every 0.1 s never stall; the download's total limit (timeout + size at 64 KiB/s) ends it."""

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(MP3)}\r\n\r\n".encode())
        for start in range(0, len(MP3), 10):
            sock.sendall(MP3[start : start + 10])
            time.sleep(0.1)

    with hostile_server(answer) as server:
        started = time.monotonic()
        with pytest.raises(PixVerseConnectionError, match="time limit"):
            read_all(media_hook(monkeypatch, timeout=1.0), f"{server.url}/a.mp3")
    assert time.monotonic() - started < 3
