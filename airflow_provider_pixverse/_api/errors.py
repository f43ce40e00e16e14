"""One error hierarchy for every way a call to the API can fail.

Every message names the audio_id (where there is one) and the HTTP status (where there
is one); none carries the API token.
"""

from __future__ import annotations

from typing import Any

REDACTED = "***"


class PixVerseError(Exception):
    """Base class of every error this provider raises about the PixVerse API.

    Every error pickles whole (class, message and fields), and :meth:`details` /
    :func:`error_from_details` carry it through a trigger event as plain JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        audio_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.reason = message
        self.audio_id = audio_id
        self.http_status = http_status
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.audio_id is not None:
            parts.append(f"audio_id {self.audio_id!r}")
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        prefix = ", ".join(parts)
        return f"{prefix}: {self.reason}" if prefix else self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds from ``args`` alone, which loses the keyword-only fields.
        return (_rebuild, (type(self), dict(self.__dict__), self.args))

    def details(self) -> dict[str, Any]:
        """The error as JSON: its class name and every field (nothing secret is ever among them)."""
        fields = {key: value for key, value in self.__dict__.items() if isinstance(value, (str, int, float, bool))}
        return {"error_type": type(self).__name__, "fields": fields, "message": str(self)}


def _rebuild(cls: type[PixVerseError], state: dict[str, Any], args: tuple[Any, ...]) -> PixVerseError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


def error_from_details(details: dict[str, Any]) -> PixVerseError:
    """The error that :meth:`PixVerseError.details` described, of the same class with the same fields."""
    cls = error_class_named(details.get("error_type"))
    fields = details.get("fields")
    state = dict(fields) if isinstance(fields, dict) else {"reason": str(details.get("message"))}
    state.setdefault("reason", str(details.get("message")))
    state.setdefault("audio_id", None)
    state.setdefault("http_status", None)
    return _rebuild(cls, state, (str(details.get("message")),))


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (a server may echo the token back)."""
    if not secret:
        return text
    return text.replace(secret, REDACTED)


class PixVerseInvalidInputError(PixVerseError, ValueError):
    """A value was refused before any request was sent (bad audio_id, bad create setting)."""


class PixVerseBadRequestError(PixVerseError):
    """400: the API refused the request (bad id, bad field)."""


class PixVerseAuthError(PixVerseError):
    """401: the API token is missing, wrong or revoked."""


class PixVersePaymentError(PixVerseError):
    """402 or 412: no subscription, or not enough credits."""


class PixVerseNotFoundError(PixVerseError):
    """404: the clip was deleted or never existed (not "still generating")."""


class PixVerseModerationError(PixVerseError):
    """422: the text was refused by moderation."""


class PixVerseRateLimitError(PixVerseError):
    """429: the account is busy or rate limited; ``retry_after`` is in seconds when given."""

    def __init__(
        self,
        message: str,
        *,
        audio_id: str | None = None,
        http_status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, audio_id=audio_id, http_status=http_status)


class PixVerseAccountBusyError(PixVerseRateLimitError):
    """429 to a create: the account runs as many jobs as it may at once. No job was made; it is safe to send again.

    The creating operators wait (deferred) for the account's capacity instead of failing, until
    their ``capacity_timeout``; this is raised when that runs out, or by the hook to callers that
    asked it not to wait (``retry_busy=False``).
    """


class PixVerseServerError(PixVerseError):
    """5xx (596: the account is in an error state): the service failed to answer."""


class PixVerseResponseError(PixVerseError):
    """The answer could not be understood: not JSON, wrong shape, or an unexpected redirect."""


class PixVerseConnectionError(PixVerseError):
    """The transport failed: no connection, a timeout, or a connection dropped mid-answer.

    ``request_sent`` is False only when the request certainly never reached the server,
    which is the one case where a create may be sent again.
    """

    def __init__(
        self,
        message: str,
        *,
        audio_id: str | None = None,
        request_sent: bool = True,
    ) -> None:
        self.request_sent = request_sent
        super().__init__(message, audio_id=audio_id)


class PixVerseJobFailedError(PixVerseError):
    """The clip ended FAILED, or final and not COMPLETED; ``fail_code`` and ``fail_reason`` say why."""

    def __init__(
        self,
        *,
        audio_id: str | None,
        fail_code: str | None,
        fail_reason: str | None,
        status: str = "FAILED",
    ) -> None:
        self.fail_code = fail_code
        self.fail_reason = fail_reason
        self.status = status
        super().__init__(
            f"status {status}: speech generation did not complete (fail_code={fail_code!r}, "
            f"fail_reason={fail_reason!r})",
            audio_id=audio_id,
        )


class PixVerseLostAnswerError(PixVerseError):
    """A create's answer was lost, and the account's listing cannot tell whether a clip it shows is that job."""


def error_for_status(
    http_status: int,
    message: str,
    *,
    audio_id: str | None = None,
    retry_after: float | None = None,
) -> PixVerseError:
    """The error class that an HTTP error status maps to, built with ``message``."""
    if http_status == 429:
        return PixVerseRateLimitError(message, audio_id=audio_id, retry_after=retry_after)
    error_class: type[PixVerseError]
    if http_status == 400:
        error_class = PixVerseBadRequestError
    elif http_status == 401:
        error_class = PixVerseAuthError
    elif http_status in (402, 412):
        error_class = PixVersePaymentError
    elif http_status == 404:
        error_class = PixVerseNotFoundError
        message = f"{message} (the clip was deleted or never existed)"
    elif http_status == 422:
        error_class = PixVerseModerationError
    elif http_status >= 500:
        error_class = PixVerseServerError
    else:
        error_class = PixVerseResponseError
    return error_class(message, audio_id=audio_id, http_status=http_status)


def error_class_named(name: str | None) -> type[PixVerseError]:
    """The error class called ``name`` (as carried by a trigger event), else the base class.

    Any subclass of :class:`PixVerseError` counts, wherever it is defined (the storage errors of
    :mod:`airflow_provider_pixverse.exceptions` too, once the module that raises them is loaded).
    """
    if not name:
        return PixVerseError
    pending: list[type[PixVerseError]] = [PixVerseError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return PixVerseError
