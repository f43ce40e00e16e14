"""The transport seams of the hook: HTTP sessions, and each transport's failures mapped to the provider's errors.

Every ``requests``, ``urllib3`` or ``aiohttp`` failure becomes :class:`PixVerseConnectionError` here,
and only here, with ``request_sent`` saying whether the request may have reached the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
import requests

from airflow_provider_pixverse._api.errors import PixVerseConnectionError, PixVerseResponseError
from airflow_provider_pixverse._api.response import AnswerTooLargeError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


def api_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no .netrc credentials, no proxy settings that could see the token
    return session


# -- the transport seams: each transport's failures become PixVerseConnectionError here, and only here.


@contextlib.contextmanager
def requests_failures(what: str, *, audio_id: str | None = None) -> Iterator[None]:
    """Map a ``requests``/``urllib3`` failure to :class:`PixVerseConnectionError`."""
    from urllib3.exceptions import HTTPError as Urllib3Error

    try:
        yield
    except (requests.RequestException, Urllib3Error) as error:
        raise PixVerseConnectionError(
            f"{what} failed: {type(error).__name__}", audio_id=audio_id, request_sent=not never_sent(error)
        ) from error


@contextlib.asynccontextmanager
async def aiohttp_failures(what: str, *, audio_id: str | None = None) -> AsyncIterator[None]:
    """Map an ``aiohttp`` failure (or its timeout) to :class:`PixVerseConnectionError`."""
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as error:
        never_sent = isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
        raise PixVerseConnectionError(
            f"{what} failed: {type(error).__name__}", audio_id=audio_id, request_sent=not never_sent
        ) from error


def never_sent(error: BaseException) -> bool:
    """Whether ``requests`` failed before the request could reach the server."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = getattr(error.args[0], "reason", None) if error.args else None
        return isinstance(reason, NewConnectionError)
    return False


def refuse_announced(content_length: str | None, limit: int, what: str) -> None:
    if content_length and content_length.isdigit():
        refuse_size(int(content_length), limit, what)


def refuse_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise AnswerTooLargeError(f"the answer to {what} is over the {limit}-byte limit of an API answer")


def redirect_target(url: str, location: str) -> str:
    from urllib.parse import urljoin

    if not location:
        raise PixVerseResponseError(f"the media URL {url} redirected nowhere (no Location header)")
    return urljoin(url, location)


def multipart_fields(form: dict[str, str] | None) -> dict[str, tuple[None, str]] | None:
    """Form fields as multipart parts (no file name), the encoding the create endpoint takes."""
    return {key: (None, value) for key, value in form.items()} if form else None


def aiohttp_form(form: dict[str, str] | None) -> Any:
    """Form fields as a multipart body for aiohttp, the encoding the create endpoint takes."""
    if not form:
        return None
    data = aiohttp.FormData(default_to_multipart=True)
    for key, value in form.items():
        data.add_field(key, value)
    return data


class SessionPool:
    """One aiohttp session per event loop, shared by every hook of that loop, closed with its last user.

    A thousand waiting clips in one triggerer then keep one session and one connection pool between
    them, not one each. Requests carry their own headers (the token), so sharing is safe across
    connections; one request's failure or cancellation leaves the session to the others.
    """

    def __init__(self) -> None:
        self._sessions: dict[asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, int]] = {}

    def acquire(self) -> aiohttp.ClientSession:
        """The loop's session, opened on first use; count one more user."""
        loop = asyncio.get_running_loop()
        session, users = self._sessions.get(loop, (None, 0))
        if session is None or session.closed:
            # The TLS context is built once per process: building one costs tens of ms.
            connector = aiohttp.TCPConnector(ssl=shared_ssl_context(), limit=SESSION_CONNECTIONS, ttl_dns_cache=300)
            session, users = aiohttp.ClientSession(connector=connector, trust_env=False), 0
        self._sessions[loop] = (session, users + 1)
        return session

    async def release(self) -> None:
        """One user fewer; the last one closes the session."""
        loop = asyncio.get_running_loop()
        session, users = self._sessions.get(loop, (None, 0))
        if session is None:
            return
        if users > 1:
            self._sessions[loop] = (session, users - 1)
            return
        del self._sessions[loop]
        await session.close()

    def users(self) -> int:
        """How many hooks of the running loop hold its session (for tests)."""
        return self._sessions.get(asyncio.get_running_loop(), (None, 0))[1]


# Connections one event loop keeps open to the API at most.
SESSION_CONNECTIONS = 16
SESSIONS = SessionPool()


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context of every async session in the process (building one loads the CA store)."""
    return ssl.create_default_context()
