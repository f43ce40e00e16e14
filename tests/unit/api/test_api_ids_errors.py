from __future__ import annotations

import pytest

from airflow_provider_pixverse._api import (
    PixVerseAuthError,
    PixVerseBadRequestError,
    PixVerseError,
    PixVerseInvalidInputError,
    PixVerseJobFailedError,
    PixVerseModerationError,
    PixVerseNotFoundError,
    PixVersePaymentError,
    PixVerseRateLimitError,
    PixVerseResponseError,
    PixVerseServerError,
    validate_audio_id,
)
from airflow_provider_pixverse._api.errors import error_for_status
from airflow_provider_pixverse._api.ids import account_of, audio_number


@pytest.mark.parametrize(
    "audio_id",
    [
        "user:1234-pixverse:jane.doe+tts@example.com-speech:100001",
        "user:u-1-pixverse:a.b@c.d-speech:x!$&'()*,;=~",
    ],
)
def test_valid_ids_are_returned_unchanged(audio_id: str) -> None:
    assert validate_audio_id(audio_id) == audio_id


@pytest.mark.parametrize("audio_id", [".", "models", "voices", "create", "plain-id", "a.b", "speech:1", "user:1"])
def test_ids_that_are_not_clip_ids_are_refused(audio_id: str) -> None:
    """Endpoint names and "." would reach another endpoint (the list, the models) and be read as a clip."""
    with pytest.raises(PixVerseInvalidInputError, match="not a clip id"):
        validate_audio_id(audio_id)


def test_the_account_is_read_from_the_id() -> None:
    assert account_of("user:1234-pixverse:jane.doe+tts@example.com-speech:100001") == "jane.doe+tts@example.com"


@pytest.mark.parametrize(
    "audio_id",
    [
        "",
        "a/b",
        "a?b=1",
        "a#frag",
        "user%3A1",
        "a b",
        "a\tb",
        "a\nb",
        "a\x00b",
        "a\x7fb",
        "..",
        "a/../b",
        "x..y",
        "üser:1",
    ],
)
def test_hostile_ids_are_refused_naming_the_id(audio_id: str) -> None:
    with pytest.raises(PixVerseInvalidInputError) as info:
        validate_audio_id(audio_id)
    assert isinstance(info.value, ValueError)
    assert repr(audio_id) in str(info.value) or "empty" in str(info.value)


@pytest.mark.parametrize("audio_id", [None, 5, b"bytes"])
def test_non_string_ids_are_refused(audio_id: object) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="must be a string"):
        validate_audio_id(audio_id)


def test_audio_number() -> None:
    assert audio_number("user:1-pixverse:a@b.c-speech:100042") == "100042"
    assert audio_number("odd:id@x") == "odd_id_x"


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, PixVerseBadRequestError),
        (401, PixVerseAuthError),
        (402, PixVersePaymentError),
        (404, PixVerseNotFoundError),
        (412, PixVersePaymentError),
        (422, PixVerseModerationError),
        (429, PixVerseRateLimitError),
        (500, PixVerseServerError),
        (503, PixVerseServerError),
        (596, PixVerseServerError),
        (418, PixVerseResponseError),
    ],
)
def test_status_maps_to_error_class(status: int, error_class: type[PixVerseError]) -> None:
    error = error_for_status(status, "boom", audio_id="id-9")
    assert type(error) is error_class
    assert isinstance(error, PixVerseError)
    assert error.http_status == status
    assert "audio_id 'id-9'" in str(error) and f"HTTP {status}" in str(error) and "boom" in str(error)


def test_not_found_says_deleted_or_never_existed() -> None:
    assert "deleted or never existed" in str(error_for_status(404, "Speech x not found"))


def test_job_failed_carries_code_and_reason() -> None:
    error = PixVerseJobFailedError(audio_id="id-3", fail_code="E42", fail_reason="voice backend down")
    assert error.fail_code == "E42"
    assert "E42" in str(error) and "voice backend down" in str(error) and "FAILED" in str(error)
    assert "id-3" in str(error)
