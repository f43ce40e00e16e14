"""Which failures are worth another try, and how long to wait before it."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from airflow_provider_pixverse._api.errors import (
    PixVerseConnectionError,
    PixVerseError,
    PixVerseRateLimitError,
    PixVerseServerError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter; ``Retry-After`` wins when the API sends it.

    :param max_attempts: tries per call in all, the first included.
    :param base_delay: the wait before the second try, in seconds; it doubles each try.
    :param max_delay: the cap on one backoff wait.
    :param max_retry_after: the cap on a ``Retry-After`` wait.
    :param jitter: the fraction of each backoff wait that is random (0 = none).

    Every wait it gives lies between ``base_delay * (1 - jitter)`` and ``max_retry_after``: a
    ``Retry-After`` of zero, a negative one or a date in the past never makes a hot loop.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    jitter: float = 0.5

    def should_retry(self, error: BaseException, *, idempotent: bool) -> bool:
        """Whether a call that failed with ``error`` may be sent again.

        A GET is retried on connection errors, timeouts, 429 and 5xx. A create is
        retried only when it surely did not reach the server (no connection) or the
        server refused it unprocessed (429); anything else might have made a job.
        """
        if isinstance(error, PixVerseRateLimitError):
            return True
        if isinstance(error, PixVerseConnectionError):
            return idempotent or not error.request_sent
        if isinstance(error, PixVerseServerError):
            return idempotent
        return False

    def delay(self, attempt: int, error: BaseException | None = None, *, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        retry_after = error.retry_after if isinstance(error, PixVerseRateLimitError) else None
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, self.base_delay), self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** min(max(attempt - 1, 0), 32))
        draw = (rng or random).random()
        return max(backoff * (1 - self.jitter * draw), self.min_delay)

    @property
    def min_delay(self) -> float:
        """The shortest wait this policy ever gives."""
        return self.base_delay * (1 - self.jitter)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may go away by itself (the poll loop keeps going on these)."""
    return isinstance(error, (PixVerseConnectionError, PixVerseRateLimitError, PixVerseServerError))


def is_permanent(error: BaseException) -> bool:
    """Whether ``error`` is a PixVerse error that no wait will cure (401, 402, 404, 412, 422, ...)."""
    return isinstance(error, PixVerseError) and not is_transient(error)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    ``None`` when there is no usable value (absent, garbled, ``nan``, ``inf``): the backoff applies.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)
