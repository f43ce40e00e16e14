from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from requests.structures import CaseInsensitiveDict

from airflow_provider_pixverse._api import (
    PixVerseAuthError,
    PixVerseBadRequestError,
    PixVerseConnectionError,
    PixVerseModerationError,
    PixVerseNotFoundError,
    PixVersePaymentError,
    PixVerseRateLimitError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse._api.response import parse_created_audio_id, parse_response, parse_speech_page
from airflow_provider_pixverse._api.retry import RetryPolicy, is_permanent, is_transient, parse_retry_after

NO_HEADERS: CaseInsensitiveDict[str] = CaseInsensitiveDict()


def test_success_is_decoded() -> None:
    assert parse_response(200, NO_HEADERS, b'{"audio_id": "x"}') == {"audio_id": "x"}


def test_non_json_success_is_a_clear_error() -> None:
    with pytest.raises(PixVerseResponseError, match="not JSON: 'oops'"):
        parse_response(200, NO_HEADERS, b"oops")


def test_html_error_page_is_mapped_by_status_with_readable_text() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
    with pytest.raises(PixVerseServerError, match="HTTP 502: 502 Bad Gateway Bad Gateway") as info:
        parse_response(502, NO_HEADERS, page, audio_id="a1")
    assert "audio_id 'a1'" in str(info.value)


def test_documented_error_bodies() -> None:
    with pytest.raises(PixVerseNotFoundError, match="Speech x not found"):
        parse_response(404, NO_HEADERS, b'{"error": "Speech x not found"}')
    with pytest.raises(PixVerseAuthError, match="Unauthorized"):
        parse_response(401, NO_HEADERS, b'{"error": "Unauthorized", "code": 401}')
    with pytest.raises(PixVersePaymentError, match="Not enough credits"):
        parse_response(412, NO_HEADERS, b'{"error": "Not enough credits: 0", "code": 412}')
    with pytest.raises(PixVerseModerationError):
        parse_response(422, NO_HEADERS, b'{"error": "refused", "code": 422}')
    with pytest.raises(PixVerseBadRequestError, match="HTTP 400: bad id"):
        parse_response(400, NO_HEADERS, b'{"error": "bad id", "code": 400}')


def test_429_carries_retry_after() -> None:
    headers = CaseInsensitiveDict({"Retry-After": "7"})
    with pytest.raises(PixVerseRateLimitError) as info:
        parse_response(429, headers, b"")
    assert info.value.retry_after == 7.0


def test_redirect_is_refused_naming_the_target_host() -> None:
    headers = CaseInsensitiveDict({"Location": "http://evil.example:81/steal"})
    with pytest.raises(PixVerseResponseError, match="redirect to evil.example:81"):
        parse_response(302, headers, b"")


def test_list_page_and_create_answer() -> None:
    assert parse_speech_page({"data": [{"a": 1}], "next_offset": 50, "has_more": True}) == ([{"a": 1}], 50)
    assert parse_speech_page({"data": [{"a": 1}], "next_offset": 50, "has_more": False}) == ([{"a": 1}], None)
    with pytest.raises(PixVerseResponseError, match="no 'data' list"):
        parse_speech_page({"items": []})
    assert parse_created_audio_id({"audio_id": "id-1", "audio_status": 5}) == "id-1"
    with pytest.raises(PixVerseResponseError, match="no audio_id"):
        parse_created_audio_id({"status": "ok"})


def test_retry_after_forms() -> None:
    now = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.5)
    no_jitter = RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.0)
    assert [no_jitter.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    rng = random.Random(1)
    delays = [policy.delay(4, rng=rng) for _ in range(200)]
    assert all(4.0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 100


def test_retry_after_overrides_backoff_up_to_a_cap() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.delay(1, PixVerseRateLimitError("busy", retry_after=17)) == 17
    assert policy.delay(1, PixVerseRateLimitError("busy", retry_after=600)) == 60


@pytest.mark.parametrize(
    ("error", "get_retried", "create_retried"),
    [
        (PixVerseConnectionError("refused", request_sent=False), True, True),
        (PixVerseConnectionError("read timeout", request_sent=True), True, False),
        (PixVerseRateLimitError("busy"), True, True),
        (PixVerseServerError("boom", http_status=503), True, False),
        (PixVerseAuthError("no", http_status=401), False, False),
        (PixVerseNotFoundError("gone", http_status=404), False, False),
        (PixVerseResponseError("garbage"), False, False),
        (ValueError("not ours"), False, False),
    ],
)
def test_which_errors_are_retried(error: BaseException, get_retried: bool, create_retried: bool) -> None:
    policy = RetryPolicy()
    assert policy.should_retry(error, idempotent=True) is get_retried
    assert policy.should_retry(error, idempotent=False) is create_retried


def test_transient_and_permanent() -> None:
    assert is_transient(PixVerseServerError("x")) and not is_permanent(PixVerseServerError("x"))
    assert is_permanent(PixVerseAuthError("x")) and not is_transient(PixVerseAuthError("x"))
    assert not is_permanent(ValueError())
