"""The media side: which URLs may be fetched, how long a download may take, is the MP3 whole."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError, PixVerseResponseError
from airflow_provider_pixverse._api.ids import audio_number

# "#", "?" and "%" would change what a URI built from the name points at.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|#%]")
# File systems cap a name at 255 bytes; the temporary name adds ".", ".<32 hex>.part" (39 bytes).
MAX_NAME_BYTES = 255
TEMPORARY_NAME_BYTES = 39
MAX_REDIRECTS = 5
# A download must average at least this rate once it has started (64 KiB/s): an MP3 of 10 MB
# may take 160 s on top of the connection's timeout, a hostile host dribbling bytes no longer.
MIN_MEDIA_RATE = 64 * 1024


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` removed: it is never stored, logged or sent as credentials."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def check_media_url(url: str, *, api_scheme: str) -> str:
    """``url`` when it may be fetched: ``https`` (or ``http`` when the API itself is), no credentials in it."""
    parts = urlsplit(url)
    allowed = ("https", "http") if api_scheme == "http" else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise PixVerseInvalidInputError(
            f"refusing to download {without_userinfo(url)!r}: only {' or '.join(allowed)} media URLs are fetched"
        )
    if "@" in parts.netloc:
        raise PixVerseInvalidInputError(
            f"refusing to download {without_userinfo(url)!r}: a media URL carries no user name or password"
        )
    return url


def media_deadline(timeout: float, expected_bytes: int | None) -> float:
    """Seconds a whole download may take: the connection's timeout, plus the size at ``MIN_MEDIA_RATE``."""
    return timeout + (expected_bytes or 0) / MIN_MEDIA_RATE


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
    return fit_name(candidate, MAX_NAME_BYTES - TEMPORARY_NAME_BYTES)


def fit_name(name: str, max_bytes: int) -> str:
    """``name`` cut to ``max_bytes`` of UTF-8 (whole characters, the suffix kept)."""
    if len(name.encode()) <= max_bytes:
        return name
    stem, dot, suffix = name.rpartition(".")
    tail = f"{dot}{suffix}" if dot and len(suffix.encode()) < 16 else ""
    head = (stem if tail else name).encode()[: max_bytes - len(tail.encode())]
    return head.decode(errors="ignore") + tail
