"""Checks on a downloaded MP3: is it audio, and is it whole."""

from __future__ import annotations

import re

from airflow_provider_pixverse._api.errors import PixVerseResponseError
from airflow_provider_pixverse._api.ids import audio_number

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")
_MAX_NAME = 200


def check_mp3_start(head: bytes, *, url: str, content_type: str = "") -> None:
    """Refuse a body that is not MP3 (an HTML error page, a JSON answer, ...) from its first bytes."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/html", "application/json", "text/plain"):
        raise PixVerseResponseError(f"the media URL {url} sent {kind}, not audio")
    if head.startswith(b"ID3"):
        return
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return
    raise PixVerseResponseError(f"the media URL {url} sent no MP3 (it starts with {head[:16]!r})")


def check_length(received: int, *, url: str, content_length: int | None, file_size: int | None) -> None:
    """Refuse a download whose byte count differs from what the server and the API announced."""
    if content_length is not None and received != content_length:
        raise PixVerseResponseError(f"the download from {url} ended after {received} of {content_length} bytes")
    if file_size is not None and received != file_size:
        raise PixVerseResponseError(
            f"the download from {url} has {received} bytes; the clip's file_size is {file_size}"
        )


def safe_file_name(name: str | None, audio_id: str) -> str:
    """A file name from the clip's ``name``: no folders, no ``..``, no control characters."""
    candidate = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    candidate = _UNSAFE_NAME.sub("_", candidate).replace("..", "_").strip(" .")
    if not candidate:
        candidate = audio_number(audio_id)
    if not candidate.lower().endswith(".mp3"):
        candidate += ".mp3"
    return candidate[-_MAX_NAME:]
