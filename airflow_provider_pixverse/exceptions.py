"""Every error the provider raises, under one base class: :class:`PixVerseError`.

This is the one list of error classes and their documented import path (``_api`` is private)::

    PixVerseError                      base of them all; every message names the audio_id and HTTP status
    ├── PixVerseInvalidInputError      refused before anything was sent (also a ValueError)
    ├── PixVerseBadRequestError        400
    ├── PixVerseAuthError              401
    ├── PixVersePaymentError           402, 412: no subscription, not enough credits
    ├── PixVerseNotFoundError          404: deleted or never existed
    ├── PixVerseModerationError        422: the text was refused
    ├── PixVerseRateLimitError         429: busy or rate limited (``retry_after``)
    │   └── PixVerseAccountBusyError   429 to a create: the account's job limit; no job made
    ├── PixVerseServerError            5xx, 596
    ├── PixVerseResponseError          an answer that cannot be understood, or is over a limit
    ├── PixVerseConnectionError        the transport failed (``request_sent``)
    ├── PixVerseJobFailedError         the clip ended FAILED (``fail_code``, ``fail_reason``)
    ├── PixVerseLostAnswerError        a create's answer was lost and its job cannot be told apart
    ├── PixVerseStorageError           the object store refused a read or a write
    ├── DestinationExistsError         the destination holds other content and ``overwrite`` is off
    └── PixVerseBatchItemsFailedError  items of a corpus failed for good (named; the others were written)

The API's errors are defined in the no-I/O core (``_api/errors.py``) and re-exported here; the
storage and corpus errors, which the core never raises, are defined here.
"""

from __future__ import annotations

from airflow_provider_pixverse._api.errors import (
    PixVerseAccountBusyError,
    PixVerseAuthError,
    PixVerseBadRequestError,
    PixVerseConnectionError,
    PixVerseError,
    PixVerseInvalidInputError,
    PixVerseJobFailedError,
    PixVerseLostAnswerError,
    PixVerseModerationError,
    PixVerseNotFoundError,
    PixVersePaymentError,
    PixVerseRateLimitError,
    PixVerseResponseError,
    PixVerseServerError,
)


class PixVerseStorageError(PixVerseError):
    """The object store refused a read or a write (missing bucket, no permission, not a folder, ...)."""


class DestinationExistsError(PixVerseError):
    """The destination holds a different object and ``overwrite`` is off (nothing was replaced)."""


class PixVerseBatchItemsFailedError(PixVerseError):
    """Items of a corpus failed for good; the message names them, the manifest says why; the others were written."""


__all__ = [
    "DestinationExistsError",
    "PixVerseAccountBusyError",
    "PixVerseAuthError",
    "PixVerseBadRequestError",
    "PixVerseBatchItemsFailedError",
    "PixVerseConnectionError",
    "PixVerseError",
    "PixVerseInvalidInputError",
    "PixVerseJobFailedError",
    "PixVerseLostAnswerError",
    "PixVerseModerationError",
    "PixVerseNotFoundError",
    "PixVersePaymentError",
    "PixVerseRateLimitError",
    "PixVerseResponseError",
    "PixVerseServerError",
    "PixVerseStorageError",
]
