"""The audio_id goes into the URL path as it is, so an id that could change the request is refused."""

from __future__ import annotations

import re

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError

# "/", "?", "#" and "%" would change the path or the query; whitespace, control and
# non-ASCII characters would break the request line or need the percent-encoding the API refuses.
_FORBIDDEN = re.compile(r"[/?#%\\]|[^\x21-\x7e]")
# The documented shape, ``user:<userid>-pixverse:<email>-speech:<number>``: anything else (".",
# "models", "voices", ...) would reach another endpoint of the API.
_CLIP_ID = re.compile(r"user:(?P<user>[^:]+)-pixverse:(?P<email>.+)-speech:(?P<number>[^:]+)")


def validate_audio_id(audio_id: object) -> str:
    """Return ``audio_id`` unchanged when it is safe to put into the path; raise otherwise."""
    if not isinstance(audio_id, str):
        raise PixVerseInvalidInputError(f"audio_id must be a string, got {type(audio_id).__name__}: {audio_id!r}")
    if not audio_id:
        raise PixVerseInvalidInputError("audio_id is empty")
    bad = _FORBIDDEN.search(audio_id)
    if bad:
        raise PixVerseInvalidInputError(
            f"audio_id {audio_id!r} contains {bad.group()!r}, which would change the request; "
            "pass the audio_id exactly as speech/create returned it"
        )
    if ".." in audio_id:
        raise PixVerseInvalidInputError(f"audio_id {audio_id!r} contains '..'")
    if not _CLIP_ID.fullmatch(audio_id):
        raise PixVerseInvalidInputError(
            f"audio_id {audio_id!r} is not a clip id: speech/create returns ids shaped "
            "'user:<userid>-pixverse:<email>-speech:<number>'"
        )
    return audio_id


def account_of(audio_id: str) -> str:
    """The account email encoded in a (valid) clip id."""
    match = _CLIP_ID.fullmatch(validate_audio_id(audio_id))
    if match is None:  # validate_audio_id refuses these already; a check that stays under ``python -O``
        raise PixVerseInvalidInputError(f"audio_id {audio_id!r} is not a clip id: it names no account")
    return match.group("email")


def audio_number(audio_id: str) -> str:
    """The trailing number of ``user:...-speech:<number>``, or a filesystem-safe form of the id."""
    tail = audio_id.rsplit("speech:", 1)[-1]
    if tail.isdigit():
        return tail
    return re.sub(r"[^A-Za-z0-9_.-]", "_", audio_id).strip(".") or "speech"


def clip_number(audio_id: str | None) -> int | None:
    """The clip's number (the ``speech:<number>`` of its id): later clips have larger ones. ``None`` if it has none."""
    if not audio_id:
        return None
    match = _CLIP_ID.fullmatch(audio_id)
    number = match.group("number") if match else ""
    return int(number) if number.isdigit() else None
