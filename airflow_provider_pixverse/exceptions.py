"""Every error the provider raises, under one base class: :class:`PixVerseError`.

This is the documented import path (``airflow_provider_pixverse._api`` is private).
"""

from __future__ import annotations

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
    PixVerseStorageError,
)

__all__ = [
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
    "PixVerseStorageError",
]
