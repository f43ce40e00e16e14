"""The checks a metadata record read from storage passes before anything in it is used.

A record stored with a spoken object (object metadata or a sidecar, see
:mod:`airflow_provider_pixverse.speech_metadata`) is input, as hostile as any answer: it may have
been edited by hand, copied with its object to another place, or written by another release.
:func:`checked_record` keeps the fields this release writes, each of its type and within its
bounds, or refuses the record with a reason. Where the object is, is never read from the record
(its ``destination`` is replaced by the place it was found at); how many parts there are is
bounded by :data:`MAX_PARTS` and by the text (every part holds at least one character).
"""

from __future__ import annotations

import math
import re
from typing import Any

# The most parts one stored speech may say it has: 1,000 parts of 5,000 characters (the smallest
# documented model limit) are 5 million characters, more than a text read from storage may hold.
MAX_PARTS = 1000
# The most bytes one stored object may say it has (the download cap is 1 GiB by default).
MAX_RECORDED_BYTES = 64 * 1024**3
_MAX_STRING = 512
_MAX_AUDIO_ID = 256
_HEX64 = re.compile(r"[0-9a-f]{64}")


class RecordError(ValueError):
    """A stored record that does not pass the checks; the message says which field and why."""


def max_parts_of(text: str) -> int:
    """The most parts the speech of ``text`` can have: one character each, and never over :data:`MAX_PARTS`."""
    return max(1, min(MAX_PARTS, len(text)))


def checked_record(
    record: dict[str, Any], *, content_key: str, uri: str, max_parts: int, part: int | None = None
) -> dict[str, Any]:
    """The record's known fields, checked, with ``destination`` set to ``uri``; :class:`RecordError` when not valid.

    :param record: The stored record (a JSON object).
    :param content_key: The content key the record must carry.
    :param uri: Where the object was found: the record's ``destination`` is replaced by it.
    :param max_parts: The most parts the request can have (see :func:`max_parts_of`).
    :param part: The part number the object must be (``split="parts"``), or ``None`` for one object.
    """
    key = record.get("content_key")
    if key != content_key:
        shown = key[:12] if isinstance(key, str) else type(key).__name__
        raise RecordError(f"holds other speech (content key {shown}...)")
    parts = _whole(record, "parts", 1, max_parts)
    checked: dict[str, Any] = {
        "content_key": content_key,
        "parts": parts,
        "bytes": _whole(record, "bytes", 1, MAX_RECORDED_BYTES),
        "sha256": _hex64(record, "sha256"),
        "text_sha256": _hex64(record, "text_sha256"),
        "text_length": _whole(record, "text_length", 0, 1 << 40),
        "voice_id": _string(record, "voice_id"),
        "model": _string(record, "model"),
        "created_at": _string(record, "created_at"),
        "settings": _settings(record.get("settings")),
        "credits_estimated": _amount(record, "credits_estimated"),
        "credits_charged": _amount(record, "credits_charged"),
        "duration": _amount(record, "duration"),
        "audio_ids": _audio_ids(record.get("audio_ids"), parts if part is None else 1),
        "destination": uri,
        "reused": bool(record.get("reused") is True),
    }
    if part is not None:
        number = _whole(record, "part", 1, parts)
        if number != part:
            raise RecordError(f"is part {number}, not part {part}")
        checked["part"] = number
    return checked


def _whole(record: dict[str, Any], name: str, low: int, high: int) -> int:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"has {name}={_shown(value)}, not a whole number")
    if not low <= value <= high:
        raise RecordError(f"has {name}={value}, outside {low}..{high}")
    return value


def _hex64(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise RecordError(f"has {name}={_shown(value)}, not 64 lowercase hex digits")
    return value


def _string(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_STRING:
        raise RecordError(f"has {name}={_shown(value)}, not a string of at most {_MAX_STRING} characters")
    return value


def _amount(record: dict[str, Any], name: str) -> float | int | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RecordError(f"has {name}={_shown(value)}, not a number from 0")
    return value


def _settings(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise RecordError(f"has settings={_shown(value)}, not a mapping of at most 32 settings")
    for name, setting in value.items():
        if len(name) > 64 or not (setting is None or isinstance(setting, str | int | float | bool)):
            raise RecordError(f"has the setting {name[:64]!r}={_shown(setting)}, not a plain value")
    return dict(value)


def _audio_ids(value: object, expected: int) -> list[str]:
    if not isinstance(value, list) or len(value) != expected:
        raise RecordError(f"has audio_ids={_shown(value)}, not a list of {expected} clip id(s)")
    for audio_id in value:
        if not isinstance(audio_id, str) or not 0 < len(audio_id) <= _MAX_AUDIO_ID:
            raise RecordError(f"has the audio_id {_shown(audio_id)}, not a clip id")
    return list(value)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."
