from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from pixverse_testing import FakeClock, api_requests, use_connection

from airflow_provider_pixverse._api import (
    AudioStatus,
    PixVerseAuthError,
    PixVerseBadRequestError,
    PixVerseConnectionError,
    PixVerseError,
    PixVerseInvalidInputError,
    PixVerseModerationError,
    PixVerseNotFoundError,
    PixVersePaymentError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse._api.retry import RetryPolicy
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

ODD_EMAIL = "jane.doe+tts@example.com"


def test_create_then_get_until_completed(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    audio_id = hook.create_speech("May the Force be with you.", "minimax_english_radiant_girl")
    clip = hook.get_speech(audio_id)
    assert clip.audio_id == audio_id
    assert clip.audio_status_enum is AudioStatus.COMPLETED and clip.is_final
    assert clip.url and clip.url.endswith(".mp3")
    assert clip.prompt == "May the Force be with you."
    create = next(r for r in api_requests(pixverse_sandbox) if r.method == "POST")
    assert create.headers["Content-Type"].startswith("multipart/form-data")


def test_status_moves_from_queued(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    audio_id = hook.create_speech("Hello", "minimax_english_radiant_girl")
    clip = hook.get_speech(audio_id)
    assert clip.audio_status_enum is AudioStatus.QUEUED and not clip.is_final


def test_id_with_at_plus_and_colon_is_sent_unencoded(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl", email=ODD_EMAIL)
    audio_id = clip["audio_id"]
    assert "+" in audio_id and "@" in audio_id and ":" in audio_id
    assert hook.get_speech(audio_id).audio_id == audio_id
    assert api_requests(pixverse_sandbox)[-1].raw_path == f"/v2/pixverse/speech/{audio_id}"


@pytest.mark.parametrize("audio_id", ["a/../../speech/create", "id?x=1", "id#f", "user%3A1", "a b", "", "a\r\nX: 1"])
def test_hostile_ids_make_no_request(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, audio_id: str) -> None:
    with pytest.raises(PixVerseInvalidInputError):
        hook.get_speech(audio_id)
    assert api_requests(pixverse_sandbox) == []


def test_unknown_clip_is_not_found(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    with pytest.raises(PixVerseNotFoundError, match="deleted or never existed") as info:
        hook.get_speech("user:1-pixverse:x@y.z-speech:999")
    assert info.value.http_status == 404
    assert "user:1-pixverse:x@y.z-speech:999" in str(info.value)
    assert len(api_requests(pixverse_sandbox)) == 1


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (400, PixVerseBadRequestError),
        (401, PixVerseAuthError),
        (402, PixVersePaymentError),
        (404, PixVerseNotFoundError),
        (412, PixVersePaymentError),
        (422, PixVerseModerationError),
    ],
)
def test_permanent_errors_fail_at_once(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock, code: int, error_class: type
) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl")
    pixverse_sandbox.add_fault("status", code=code, count=-1)
    with pytest.raises(error_class) as info:
        hook.get_speech(clip["audio_id"])
    assert info.value.http_status == code
    assert len(api_requests(pixverse_sandbox)) == 1
    assert clock.waits == []


def test_wrong_token_is_unauthorized_and_the_token_stays_secret(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_connection(monkeypatch, "pixverse_bad", host=pixverse_sandbox.url, password="wrong-token-XYZ")
    hook = PixVerseHook("pixverse_bad")
    with pytest.raises(PixVerseAuthError, match="Unauthorized") as info:
        hook.list_models()
    ok, message = hook.test_connection()
    assert not ok and "Unauthorized" in message
    logged = "".join(capsys.readouterr())
    assert "Unauthorized" in str(info.value)
    for text in (str(info.value), repr(info.value), message, logged, repr(hook), repr(hook.settings)):
        assert "wrong-token-XYZ" not in text
    assert "pixverse_bad" in str(info.value) and "password" in str(info.value)  # which connection, which field


@pytest.mark.parametrize("side", ["sync", "async"])
async def test_the_token_is_masked_in_every_log_line_once_read(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch, side: str
) -> None:
    """Whatever logs the token later (a user's task, a library), Airflow's masker hides it."""
    from airflow.providers.common.compat.sdk import redact

    token = f"masked-token-{side}-0123456789"
    # Pasted with a newline: Airflow masks the password as stored; the hook must mask the token it sends.
    use_connection(monkeypatch, f"pixverse_mask_{side}", host=pixverse_sandbox.url, password=f"{token}\n")
    assert redact(f"the token is {token}") == f"the token is {token}"  # not masked before it is read
    hook = PixVerseHook(f"pixverse_mask_{side}")
    if side == "sync":
        hook.settings  # noqa: B018
    else:
        await hook.aget_settings()
    assert redact(f"the token is {token}") == "the token is ***"


def test_test_connection_succeeds(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert pixverse_sandbox.url in message


def test_429_retry_after_is_honoured(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl")
    pixverse_sandbox.add_fault("status", code=429, retry_after="7", count=2)
    assert hook.get_speech(clip["audio_id"]).audio_id == clip["audio_id"]
    assert clock.waits == [7.0, 7.0]
    assert len(api_requests(pixverse_sandbox)) == 3


def test_5xx_burst_backs_off_exponentially(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl")
    pixverse_sandbox.add_fault("status", code=503, count=3)
    assert hook.get_speech(clip["audio_id"]).audio_id == clip["audio_id"]
    assert clock.waits == [1.0, 2.0, 4.0]
    assert len(api_requests(pixverse_sandbox)) == 4
    logged = "".join(capsys.readouterr())
    assert "try 2 of 5 in 1.0 s" in logged and "HTTP 503" in logged
    assert pixverse_sandbox.token not in logged


def test_gives_up_after_max_attempts(pixverse_sandbox: PixVerseSandbox, clock: FakeClock) -> None:
    hook = PixVerseHook(retry_policy=RetryPolicy(max_attempts=3), clock=clock)
    pixverse_sandbox.add_fault("status", code=596, count=-1)
    with pytest.raises(PixVerseServerError, match="HTTP 596"):
        hook.list_voices()
    assert len(api_requests(pixverse_sandbox)) == 3
    assert len(clock.waits) == 2


def test_html_error_page_is_readable(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.add_fault("html", code=502, count=-1)
    with pytest.raises(PixVerseServerError) as info:
        hook.list_models()
    assert "<" not in str(info.value)


def test_garbage_answer_is_a_response_error(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.add_fault("garbage", count=1)
    with pytest.raises(PixVerseResponseError, match="not JSON"):
        hook.list_models()


def test_dropped_connection_is_retried_for_get(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.add_fault("drop", count=1)
    assert hook.list_voices()
    assert len(clock.waits) == 1


def test_create_is_never_resent_after_it_may_have_arrived(
    hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.add_fault("status", code=503, count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseServerError):
        hook.create_speech("Hello", "minimax_english_radiant_girl")
    pixverse_sandbox.add_fault("drop", count=1, path_contains="/speech/create")
    with pytest.raises(PixVerseConnectionError):
        hook.create_speech("Hello", "minimax_english_radiant_girl")
    creates = [r for r in api_requests(pixverse_sandbox) if r.method == "POST"]
    assert len(creates) == 2
    assert clock.waits == []


def test_create_is_retried_on_429(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox, clock: FakeClock) -> None:
    pixverse_sandbox.add_fault("status", code=429, retry_after="3", count=1, path_contains="/speech/create")
    audio_id = hook.create_speech("Hello", "minimax_english_radiant_girl")
    assert audio_id
    assert clock.waits == [3.0]
    assert len([r for r in api_requests(pixverse_sandbox) if r.method == "POST"]) == 2


def test_create_is_retried_when_no_connection_was_made(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    use_connection(monkeypatch, "pixverse_down", host=f"http://127.0.0.1:{port}", password="test-token-for-a-dead-end")
    hook = PixVerseHook("pixverse_down", retry_policy=RetryPolicy(max_attempts=3, jitter=0), clock=clock)
    with pytest.raises(PixVerseConnectionError) as info:
        hook.create_speech("Hello", "v")
    assert info.value.request_sent is False
    assert clock.waits == [1.0, 2.0]


def test_create_validation_makes_no_request(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="stability=0.5"):
        hook.create_speech("Hello", "v", model="speech-2.8-hd", stability=0.5)
    assert api_requests(pixverse_sandbox) == []


def test_create_uses_the_connection_email(pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(
        monkeypatch,
        "pixverse_mail",
        host=pixverse_sandbox.url,
        password=pixverse_sandbox.token,
        extra={"email": ODD_EMAIL},
    )
    audio_id = PixVerseHook("pixverse_mail").create_speech("Hello", "minimax_english_radiant_girl")
    assert f"pixverse:{ODD_EMAIL}-speech:" in audio_id


def test_the_server_refusal_of_a_field_is_a_bad_request(hook: PixVerseHook) -> None:
    with pytest.raises(PixVerseBadRequestError, match="speech-3.0-future"):
        hook.create_speech("Hello", "no-such-voice-for-sure", model="speech-3.0-future")


def test_redirect_to_another_host_is_not_followed(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    port = pixverse_sandbox.url.rsplit(":", 1)[1]
    pixverse_sandbox.add_fault("redirect", location=f"http://localhost:{port}/v2/pixverse/speech/models", count=1)
    with pytest.raises(PixVerseResponseError, match=f"redirect to localhost:{port}"):
        hook.list_models()
    assert len(pixverse_sandbox.requests) == 1


def test_slow_answer_times_out(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    use_connection(
        monkeypatch, "pixverse_slow", host=pixverse_sandbox.url, password=pixverse_sandbox.token, extra={"timeout": 0.3}
    )
    hook = PixVerseHook("pixverse_slow", retry_policy=RetryPolicy(max_attempts=2), clock=clock)
    pixverse_sandbox.add_fault("delay", seconds=1.5, count=-1)
    with pytest.raises(PixVerseConnectionError, match="Timeout"):
        hook.list_models()
    assert len(clock.waits) == 1


def test_list_speech_follows_pages(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    ids = [
        pixverse_sandbox.add_clip(text=f"clip {n}", voice_id="minimax_english_radiant_girl")["audio_id"]
        for n in range(120)
    ]
    clips = hook.list_speech()
    assert [c.audio_id for c in clips] == list(reversed(ids))
    assert len(api_requests(pixverse_sandbox)) == 2  # pages of 100 (the sandbox's most, as asked)
    assert len(hook.list_speech(max_items=10)) == 10


def test_voices_and_models(hook: PixVerseHook) -> None:
    voices = hook.list_voices()
    assert any(v["voice_id"] == "minimax_english_radiant_girl" for v in voices)
    models = hook.list_models()
    assert models["default_model"] == "speech-2.8-hd"
    assert models["provider_groups"]


def test_media_is_fetched_without_the_token(hook: PixVerseHook, pixverse_sandbox: PixVerseSandbox) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id="minimax_english_radiant_girl", status="COMPLETED")
    with hook.open_media(clip["url"]) as media:
        body = b"".join(media.chunks)
    assert media.content_length == len(body) == clip["file_size"]
    media_requests = [r for r in pixverse_sandbox.requests if r.kind == "media"]
    assert len(media_requests) == 1
    assert "authorization" not in {k.lower() for k in media_requests[0].headers}
    assert pixverse_sandbox.token not in str(media_requests[0].headers)


def test_plain_http_media_is_refused_when_the_api_is_https(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "pixverse_https", host="https://api.useapi.net", password="test-token-for-a-dead-end")
    hook = PixVerseHook("pixverse_https")
    with (
        pytest.raises(PixVerseInvalidInputError, match="only https"),
        hook.open_media("http://media.pixverse.ai/a.mp3"),
    ):
        pass


def test_missing_token_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, "pixverse_empty", host="https://api.useapi.net")
    with pytest.raises(PixVerseError, match="pixverse_empty.*no API token"):
        PixVerseHook("pixverse_empty").list_models()
