"""Answers as data: what the server writes, including the documented error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

ERROR_BODIES: dict[int, dict[str, Any]] = {
    400: {"error": "Bad request", "code": 400},
    401: {"error": "Unauthorized", "code": 401},
    402: {"error": "Account has no subscription or subscription expired"},
    404: {"error": "Not found"},
    412: {"error": "Not enough credits: 0 credits left, 20 needed", "code": 412},
    422: {"error": "The text was refused by moderation: it may violate the content policy", "code": 422},
    429: {"error": "Too many requests: the account is busy, try again later", "code": 429},
    500: {"error": "Internal server error", "code": 500},
    502: {"error": "Bad gateway", "code": 502},
    503: {"error": "Service unavailable", "code": 503},
    596: {"error": "The PixVerse account is in an error state", "code": 596},
}
_REASONS = {402: "Payment Required", 412: "Precondition Failed", 422: "Unprocessable Entity", 596: "Account Error"}


@dataclass
class Response:
    """One answer. ``body`` may be an iterable of chunks when ``length`` is given."""

    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    send_limit: int | None = None
    close: bool = False
    drop: bool = False

    @property
    def content_length(self) -> int:
        """The Content-Length to announce."""
        if self.length is not None:
            return self.length
        if not isinstance(self.body, bytes):
            raise TypeError("a streamed body needs its length given")
        return len(self.body)


def reason(status: int) -> str | None:
    """A reason phrase for codes ``http.HTTPStatus`` does not know."""
    return _REASONS.get(status)


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer."""
    body = json.dumps(data).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def error_response(status: int, message: str | None = None, *, with_code: bool | None = None) -> Response:
    """An error with the documented body for ``status``; ``message`` replaces its text."""
    body = dict(ERROR_BODIES.get(status, {"error": f"Error {status}", "code": status}))
    if message is not None:
        body["error"] = message
    if with_code is False:
        body.pop("code", None)
    elif with_code:
        body["code"] = status
    return json_response(status, body)


def html_page(status: int) -> bytes:
    """An HTML error page as a proxy in front of the API would send."""
    title = f"{status} Bad Gateway" if status == 502 else f"{status} Error"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def html_response(status: int) -> Response:
    """An HTML error page answer."""
    return Response(status, html_page(status), {"Content-Type": "text/html; charset=utf-8"})
