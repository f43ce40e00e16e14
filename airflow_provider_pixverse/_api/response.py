"""Reading answers: JSON or not, success or which error."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_pixverse._api.errors import PixVerseResponseError, error_for_status, redact
from airflow_provider_pixverse._api.retry import parse_retry_after

if TYPE_CHECKING:
    from collections.abc import Mapping

_SNIPPET = 200
_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


def parse_response(
    http_status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    audio_id: str | None = None,
    secret: str | None = None,
) -> Any:
    """Return the decoded JSON of a successful answer; raise the mapped error otherwise.

    ``headers`` must look up names case-insensitively (both transports' header maps do).
    ``secret`` (the API token) is blanked out of every message built from the answer.
    """
    if 200 <= http_status < 300:
        try:
            return decode_json(body)
        except PixVerseResponseError as error:
            raise PixVerseResponseError(
                redact(error.reason, secret), audio_id=audio_id, http_status=http_status
            ) from None
    if 300 <= http_status < 400:
        location = headers.get("location", "")
        target = urlsplit(location).netloc or "the same host"
        raise PixVerseResponseError(
            f"the API answered with a redirect to {target}; redirects are not followed, "
            "so the token is never sent to another address. Check the connection's API base URL",
            audio_id=audio_id,
            http_status=http_status,
        )
    raise error_for_status(
        http_status,
        redact(_error_message(body), secret),
        audio_id=audio_id,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def decode_json(body: bytes) -> Any:
    """The JSON in ``body``; a :class:`PixVerseResponseError` for anything else, nesting too deep included."""
    try:
        return json.loads(body)
    except ValueError:
        raise PixVerseResponseError(f"the answer is not JSON: {_snippet(body)!r}") from None
    except RecursionError:
        raise PixVerseResponseError(f"the answer's JSON is nested too deeply to read ({len(body)} bytes)") from None


def _error_message(body: bytes) -> str:
    try:
        data = decode_json(body)
    except PixVerseResponseError:
        return _snippet(body) or "(empty answer)"
    message = data.get("error") if isinstance(data, dict) else None
    if isinstance(message, str):
        return message
    return _snippet(body)


def _snippet(body: bytes) -> str:
    """The start of a body as readable text, HTML tags stripped."""
    text = body[: _SNIPPET * 8].decode("utf-8", errors="replace")
    text = _SPACES.sub(" ", _TAGS.sub(" ", text)).strip()
    return text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")


class AnswerTooLargeError(PixVerseResponseError):
    """An answer over the per-answer byte cap (a listing asks again for a smaller page)."""


def require_dict(data: Any, what: str, *, audio_id: str | None = None) -> dict[str, Any]:
    """``data`` when it is a JSON object; a clear error otherwise."""
    if not isinstance(data, dict):
        raise PixVerseResponseError(f"expected a JSON object for {what}, got {type(data).__name__}", audio_id=audio_id)
    return data


def parse_speech_page(data: Any) -> tuple[list[dict[str, Any]], int | None]:
    """The entries of one list page, as sent, and the offset of the next page (``None`` when last).

    The entries are not checked here: :class:`~airflow_provider_pixverse._api.listing.SpeechListing`
    skips those that are not clips, so that one bad entry costs only the clips it might have been.
    """
    page = require_dict(data, "the speech list")
    clips = page.get("data")
    if not isinstance(clips, list):
        raise PixVerseResponseError(f"the speech list has no 'data' list: {_snippet(json.dumps(page).encode())}")
    next_offset = page.get("next_offset")
    if not page.get("has_more") or not isinstance(next_offset, int) or not clips:
        return clips, None
    return clips, next_offset


def parse_voices(data: Any) -> list[dict[str, Any]]:
    """The voices list, whether sent bare or under ``voices`` / ``data``."""
    if isinstance(data, dict):
        data = data.get("voices", data.get("data"))
    if not isinstance(data, list):
        raise PixVerseResponseError("the voices answer holds no list of voices")
    return data


def parse_created_audio_id(data: Any) -> str:
    """The ``audio_id`` of a create answer."""
    answer = require_dict(data, "the create answer")
    audio_id = answer.get("audio_id")
    if not isinstance(audio_id, str) or not audio_id:
        raise PixVerseResponseError(f"the create answer carries no audio_id: {_snippet(json.dumps(answer).encode())}")
    return audio_id
