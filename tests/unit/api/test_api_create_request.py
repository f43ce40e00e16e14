from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_pixverse._api import PixVerseInvalidInputError
from airflow_provider_pixverse._api.create import build_create_form
from airflow_provider_pixverse._api.request import (
    ApiSettings,
    create_speech_request,
    get_speech_request,
    list_speech_request,
    settings_from_connection,
)


def test_minimal_form() -> None:
    assert build_create_form("Hello", "voice-1") == {"text": "Hello", "voice_id": "voice-1"}


def test_settings_are_encoded_with_api_field_names() -> None:
    form = build_create_form(
        "Hi",
        "v",
        model="eleven-multilingual-v2",
        speed=1.1,
        style=0.3,
        use_speaker_boost=True,
        reply_url="https://example.com/cb",
        max_jobs=3,
        email=None,
    )
    assert form == {
        "text": "Hi",
        "voice_id": "v",
        "model": "eleven-multilingual-v2",
        "speed": "1.1",
        "style": "0.3",
        "use_speaker_boost": "true",
        "replyUrl": "https://example.com/cb",
        "maxJobs": "3",
    }


@pytest.mark.parametrize(
    ("model", "limit"),
    [("speech-2.8-hd", 10_000), ("eleven-v3", 5_000), ("eleven-turbo-v2.5", 40_000)],
)
def test_text_length_limit_per_model(model: str, limit: int) -> None:
    assert build_create_form("x" * limit, "v", model=model)["text"] == "x" * limit
    with pytest.raises(PixVerseInvalidInputError, match=f"{limit + 1} characters.*{model}"):
        build_create_form("x" * (limit + 1), "v", model=model)


@pytest.mark.parametrize(
    ("settings", "bad"),
    [
        ({"model": "speech-2.8-hd", "stability": 0.5}, "stability=0.5"),
        ({"model": "speech-2.8-turbo", "style": 0.5}, "style=0.5"),
        ({"model": "eleven-v3", "volume": 3}, "volume=3"),
        ({"model": "eleven-v3", "emotion": "happy"}, "emotion='happy'"),
        ({"model": "eleven-turbo-v2.5", "use_speaker_boost": True}, "use_speaker_boost=True"),
        ({"model": "eleven-v3", "language_code": "en"}, "language_code='en'"),
        ({"speed": 2.5}, "speed=2.5"),
        ({"model": "eleven-v3", "speed": 1.5}, "speed=1.5"),
        ({"pitch": 1.5}, "pitch=1.5"),
        ({"pitch": 13}, "pitch=13"),
        ({"volume": -1}, "volume=-1"),
        ({"emotion": "bored"}, "emotion 'bored'"),
        ({"model": "eleven-v3", "stability": 2}, "stability=2"),
        ({"max_jobs": 9}, "max_jobs=9"),
        ({"reply_ref": "r" * 1025}, "reply_ref is 1025"),
        ({"speed": True}, "speed=True"),
        ({"colour": "blue"}, "unknown create setting"),
    ],
)
def test_bad_settings_are_refused_before_sending(settings: dict[str, Any], bad: str) -> None:
    with pytest.raises(PixVerseInvalidInputError, match=bad.replace("(", r"\(").replace(".", r"\.")):
        build_create_form("Hello", "v", **settings)


@pytest.mark.parametrize(("text", "voice"), [("", "v"), ("   ", "v"), ("hi", ""), (None, "v")])
def test_text_and_voice_are_required(text: Any, voice: str) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="must be a non-empty string"):
        build_create_form(text, voice)


def test_unknown_model_passes_through_for_the_api_to_judge() -> None:
    form = build_create_form("x" * 50_000, "v", model="speech-3.0-future", stability=0.4)
    assert form["model"] == "speech-3.0-future"


def test_requests_are_built_with_the_id_unencoded() -> None:
    settings = ApiSettings(base_url="http://127.0.0.1:9/v2/pixverse", token="t")
    request = get_speech_request("user:1-pixverse:a+b@c.d-speech:5")
    assert request.url(settings) == "http://127.0.0.1:9/v2/pixverse/speech/user:1-pixverse:a+b@c.d-speech:5"
    assert request.idempotent
    create = create_speech_request("Hi", "v")
    assert create.method == "POST" and not create.idempotent and create.form == {"text": "Hi", "voice_id": "v"}
    assert list_speech_request(email="a@b.c", offset=50).params == {"limit": "50", "offset": "50", "email": "a@b.c"}


@pytest.mark.parametrize(
    ("host", "port", "base_url"),
    [
        (None, None, "https://api.useapi.net/v2/pixverse"),
        ("", None, "https://api.useapi.net/v2/pixverse"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080/v2/pixverse"),
        ("http://127.0.0.1:8080/", None, "http://127.0.0.1:8080/v2/pixverse"),
        ("api.example.org", None, "https://api.example.org/v2/pixverse"),
        ("http://localhost", 9000, "http://localhost:9000/v2/pixverse"),
        ("https://proxy.example.org/v2/pixverse", None, "https://proxy.example.org/v2/pixverse"),
    ],
)
def test_base_url_from_connection(host: str | None, port: int | None, base_url: str) -> None:
    settings = settings_from_connection("c", host, port, "tok", {})
    assert settings.base_url == base_url
    assert settings.timeout == 30.0


@pytest.mark.parametrize("extra", [{"email": None, "timeout": None}, {"email": "", "timeout": ""}, {}])
def test_empty_form_fields_mean_the_defaults(extra: dict[str, Any]) -> None:
    settings = settings_from_connection("c", None, None, "tok", extra)
    assert settings.timeout == 30.0 and settings.email is None


def test_listings_ask_for_pages_of_100_four_at_once_unless_the_connection_says_otherwise() -> None:
    settings = settings_from_connection("c", None, None, "tok", {})
    assert (settings.list_page_size, settings.list_concurrency) == (100, 4)
    settings = settings_from_connection("c", None, None, "tok", {"list_page_size": "30", "list_concurrency": "2"})
    assert (settings.list_page_size, settings.list_concurrency) == (30, 2)


def test_settings_extra_and_secret_repr() -> None:
    settings = settings_from_connection("c", None, None, "s3cr3t-token", {"email": "me@x.y", "timeout": "12"})
    assert settings.email == "me@x.y" and settings.timeout == 12.0
    assert settings.headers()["Authorization"] == "Bearer s3cr3t-token"
    assert "s3cr3t-token" not in repr(settings)


@pytest.mark.parametrize(
    ("host", "password", "extra", "message"),
    [
        (None, None, {}, "no API token"),
        (None, "", {}, "no API token"),
        ("ftp://x", "t", {}, "unusable API base URL 'ftp://x'"),
        (None, "t", {"timeout": "soon"}, "timeout='soon'"),
        (None, "t", {"timeout": 0}, "timeout=0"),
        (None, "t", {"list_concurrency": 0}, "list_concurrency=0"),
        (None, "t", {"list_concurrency": "many"}, "list_concurrency='many'"),
        (None, "t", {"list_concurrency": 17}, "list_concurrency=17 in its extra; give a whole number from 1 to 16"),
        (None, "t", {"list_page_size": 1001}, "list_page_size=1001"),
    ],
)
def test_bad_connections_are_refused(
    host: str | None, password: str | None, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(PixVerseInvalidInputError, match=message.replace("(", r"\(")) as info:
        settings_from_connection("my_conn", host, None, password, extra)
    assert "my_conn" in str(info.value)
