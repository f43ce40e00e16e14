"""The PixVerse speech API without I/O: statuses, clips, errors, requests, answers, retries.

Both transports (``requests`` for the sync hook, ``aiohttp`` for the async one) call into
this package for every decision, so the two paths cannot drift apart.
"""

from __future__ import annotations

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import (
    PixVerseAuthError,
    PixVerseBadRequestError,
    PixVerseConnectionError,
    PixVerseError,
    PixVerseInvalidInputError,
    PixVerseJobFailedError,
    PixVerseModerationError,
    PixVerseNotFoundError,
    PixVersePaymentError,
    PixVerseRateLimitError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse._api.ids import validate_audio_id
from airflow_provider_pixverse._api.status import AudioStatus

__all__ = [
    "AudioStatus",
    "PixVerseAuthError",
    "PixVerseBadRequestError",
    "PixVerseConnectionError",
    "PixVerseError",
    "PixVerseInvalidInputError",
    "PixVerseJobFailedError",
    "PixVerseModerationError",
    "PixVerseNotFoundError",
    "PixVersePaymentError",
    "PixVerseRateLimitError",
    "PixVerseResponseError",
    "PixVerseServerError",
    "SpeechClip",
    "validate_audio_id",
]
