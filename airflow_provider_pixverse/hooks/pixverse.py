"""The PixVerse hook: the one place that talks HTTP to the API and its media host."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import requests
import tenacity
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from yarl import URL

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import (
    PixVerseConnectionError,
    PixVerseError,
    PixVerseInvalidInputError,
)
from airflow_provider_pixverse._api.listing import SpeechListing
from airflow_provider_pixverse._api.request import (
    DEFAULT_HOST,
    ApiRequest,
    ApiSettings,
    create_speech_request,
    get_speech_request,
    list_models_request,
    list_voices_request,
    settings_from_connection,
)
from airflow_provider_pixverse._api.response import (
    parse_created_audio_id,
    parse_response,
    parse_voices,
    require_dict,
)
from airflow_provider_pixverse._api.retry import RetryPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

log = logging.getLogger(__name__)

MEDIA_CHUNK_SIZE = 1024 * 1024


@dataclass
class MediaStream:
    """An open download of a clip's MP3: its headers and an iterator over its bytes."""

    url: str
    status_code: int
    content_type: str
    content_length: int | None
    chunks: Iterator[bytes]


class PixVerseHook(BaseHook):
    """
    Calls the useapi.net PixVerse speech API with the token of a ``pixverse`` connection.

    Sync methods use ``requests``; the ``a``-prefixed twins use ``aiohttp`` for triggers. GETs are
    retried per ``retry_policy``; a create is never sent twice once it may have reached the server.

    :param pixverse_conn_id: The Airflow connection holding the API token (password) and,
        optionally, the API base URL (host) and ``email``/``timeout`` (extra).
    :param retry_policy: How failed calls are retried; the default suits the public API.
    :param sleep: The blocking wait between retries (tests inject a fake clock).
    :param async_sleep: The async wait between retries.
    """

    conn_name_attr = "pixverse_conn_id"
    default_conn_name = "pixverse_default"
    conn_type = "pixverse"
    hook_name = "PixVerse"

    def __init__(
        self,
        pixverse_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pixverse_conn_id = pixverse_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self.sleep = sleep
        self.async_sleep = async_sleep
        self._async_settings: ApiSettings | None = None
        self._async_client: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pixverse_conn_id={self.pixverse_conn_id!r})"

    # -- connection form (Airflow 2.11 to 3.1; 3.2+ reads provider info) -----------------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the connection form shows this connection type."""
        return {
            "hidden_fields": ["schema", "port", "login", "extra"],
            "relabeling": {"password": "API token", "host": "API base URL"},
            "placeholders": {"host": DEFAULT_HOST, "password": "useapi.net API token"},
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form: the default account email and the timeout."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from wtforms import StringField
        except ImportError:  # Airflow 3.2+ builds the form from provider info instead.
            return {}
        return {
            "email": StringField("Account email", widget=BS3TextFieldWidget()),
            "timeout": StringField("Timeout (seconds)", widget=BS3TextFieldWidget()),
        }

    # -- settings ---------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ApiSettings:
        """The API base URL, token, default email and timeout of the connection."""
        conn = self.get_connection(self.pixverse_conn_id)
        if conn.password:
            mask_secret(conn.password)
        return settings_from_connection(self.pixverse_conn_id, conn.host, conn.port, conn.password, conn.extra_dejson)

    async def aget_settings(self) -> ApiSettings:
        """The connection's settings, read without blocking the event loop."""
        if self._async_settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            # Fetching the connection masks its password already, without a blocking call.
            conn = await get_async_connection(self.pixverse_conn_id, hook=self)
            extra = await get_async_extra_dejson(conn)
            self._async_settings = settings_from_connection(
                self.pixverse_conn_id, conn.host, conn.port, conn.password, extra
            )
        return self._async_settings

    @cached_property
    def session(self) -> requests.Session:
        """The sync HTTP session for API calls (the token is added per request, not here)."""
        return requests.Session()

    # -- sync API --------------------------------------------------------------------------

    def get_speech(self, audio_id: str) -> SpeechClip:
        """Retrieve one clip: its status while generating, the finished clip when done."""
        request = get_speech_request(audio_id)
        return SpeechClip.from_json(self._call(request), audio_id=request.audio_id)

    def create_speech(self, text: str, voice_id: str, **settings: Any) -> str:
        """Start generating speech and return the new ``audio_id`` (sent once, never re-sent blindly).

        :param settings: The optional create fields in snake case: ``model``, ``email`` (default:
            the connection's), ``language_code``, ``speed``, ``volume``, ``pitch``, ``emotion``,
            ``stability``, ``similarity_boost``, ``style``, ``use_speaker_boost``, ``reply_url``,
            ``reply_ref``, ``max_jobs``.
        """
        request = self._create_request(self.settings, text, voice_id, settings)
        return parse_created_audio_id(self._call(request))

    def list_speech(self, *, email: str | None = None, max_items: int | None = None) -> list[SpeechClip]:
        """All clips of the account (newest first), following ``next_offset`` page by page."""
        listing = SpeechListing(email=email or self.settings.email, max_items=max_items)
        while (request := listing.next_request()) is not None:
            listing.add_page(self._call(request))
        return listing.result()

    def list_voices(self, *, model: str | None = None, language: str | None = None) -> list[dict[str, Any]]:
        """The voices available, optionally for one model or language."""
        return parse_voices(self._call(list_voices_request(model=model, language=language)))

    def list_models(self, *, email: str | None = None) -> dict[str, Any]:
        """The models, grouped by provider, with their limits and languages."""
        request = list_models_request(email=email or self.settings.email)
        return require_dict(self._call(request), "the models list")

    def test_connection(self) -> tuple[bool, str]:
        """Check the token with a cheap authenticated call (the UI's Test button)."""
        try:
            self.list_models()
        except (PixVerseError, PixVerseInvalidInputError) as error:
            return False, str(error)
        return True, f"Connected to the PixVerse API at {self.settings.base_url}"

    @contextlib.contextmanager
    def open_media(self, url: str, *, chunk_size: int = MEDIA_CHUNK_SIZE) -> Iterator[MediaStream]:
        """Stream a clip's MP3 from its media URL, with no token and no Authorization header.

        Only ``https`` URLs are fetched, unless the API itself is reached over ``http``
        (a local sandbox).
        """
        self._check_media_url(url)
        with requests.Session() as media_session:
            media_session.trust_env = False  # no .netrc credentials either
            try:
                response = media_session.get(url, stream=True, timeout=self.settings.timeout)
            except requests.RequestException as error:
                raise PixVerseConnectionError(f"could not fetch the media URL {url}: {error}") from error
            with response:
                if response.status_code != 200:
                    raise PixVerseConnectionError(f"the media URL {url} answered HTTP {response.status_code}")
                length = response.headers.get("content-length")
                yield MediaStream(
                    url=response.url,
                    status_code=response.status_code,
                    content_type=response.headers.get("content-type", ""),
                    content_length=int(length) if length and length.isdigit() else None,
                    chunks=_media_chunks(response, url, chunk_size),
                )

    def _check_media_url(self, url: str) -> None:
        scheme = urlsplit(url).scheme
        allowed = ("https", "http") if self.settings.origin[0] == "http" else ("https",)
        if scheme not in allowed:
            raise PixVerseInvalidInputError(
                f"refusing to download {url!r}: only {' or '.join(allowed)} media URLs are fetched"
            )

    def _call(self, request: ApiRequest) -> Any:
        settings = self.settings
        for attempt in tenacity.Retrying(sleep=self.sleep, **self._retry_arguments(request)):
            with attempt:
                return self._send(settings, request)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, settings: ApiSettings, request: ApiRequest) -> Any:
        try:
            response = self.session.request(
                request.method,
                request.url(settings),
                files=_multipart(request.form),
                headers=settings.headers(),
                timeout=settings.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise PixVerseConnectionError(
                f"{request.method} {request.path} failed: {type(error).__name__}",
                audio_id=request.audio_id,
                request_sent=not _never_sent(error),
            ) from error
        return parse_response(response.status_code, response.headers, response.content, audio_id=request.audio_id)

    # -- async API (triggers) ------------------------------------------------------------

    async def aget_speech(self, audio_id: str) -> SpeechClip:
        """Async twin of :meth:`get_speech`."""
        request = get_speech_request(audio_id)
        return SpeechClip.from_json(await self._acall(request), audio_id=request.audio_id)

    async def acreate_speech(self, text: str, voice_id: str, **settings: Any) -> str:
        """Async twin of :meth:`create_speech`."""
        request = self._create_request(await self.aget_settings(), text, voice_id, settings)
        return parse_created_audio_id(await self._acall(request))

    async def alist_speech(self, *, email: str | None = None, max_items: int | None = None) -> list[SpeechClip]:
        """Async twin of :meth:`list_speech`."""
        listing = SpeechListing(email=email or (await self.aget_settings()).email, max_items=max_items)
        while (request := listing.next_request()) is not None:
            listing.add_page(await self._acall(request))
        return listing.result()

    async def alist_voices(self, *, model: str | None = None, language: str | None = None) -> list[dict[str, Any]]:
        """Async twin of :meth:`list_voices`."""
        return parse_voices(await self._acall(list_voices_request(model=model, language=language)))

    async def alist_models(self, *, email: str | None = None) -> dict[str, Any]:
        """Async twin of :meth:`list_models`."""
        request = list_models_request(email=email or (await self.aget_settings()).email)
        return require_dict(await self._acall(request), "the models list")

    async def aget_speech_once(self, audio_id: str) -> SpeechClip:
        """One GET of a clip with no retry, for callers that run their own retry loop (the trigger)."""
        request = get_speech_request(audio_id)
        return SpeechClip.from_json(await self._asend(await self.aget_settings(), request), audio_id=audio_id)

    async def aclose(self) -> None:
        """Close the async HTTP session, if one was opened."""
        client, self._async_client = self._async_client, None
        if client is not None:
            await client.close()

    async def _acall(self, request: ApiRequest) -> Any:
        settings = await self.aget_settings()
        async for attempt in tenacity.AsyncRetrying(sleep=self.async_sleep, **self._retry_arguments(request)):
            with attempt:
                return await self._asend(settings, request)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend(self, settings: ApiSettings, request: ApiRequest) -> Any:
        if self._async_client is None:
            # One session per hook (per trigger): its connection is kept alive between polls.
            # The TLS context is built once per process: building one costs tens of ms.
            self._async_client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=shared_ssl_context(), limit=4, ttl_dns_cache=300),
                trust_env=False,
            )
        try:
            async with self._async_client.request(
                request.method,
                URL(request.url(settings), encoded=True),  # the audio_id is sent exactly as given
                data=_aiohttp_form(request.form),
                headers=settings.headers(),
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            never_sent = isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
            raise PixVerseConnectionError(
                f"{request.method} {request.path} failed: {type(error).__name__}",
                audio_id=request.audio_id,
                request_sent=not never_sent,
            ) from error
        return parse_response(response.status, response.headers, body, audio_id=request.audio_id)

    # -- shared by both paths --------------------------------------------------------------

    @staticmethod
    def _create_request(settings: ApiSettings, text: str, voice_id: str, options: dict[str, Any]) -> ApiRequest:
        if options.get("email") is None and settings.email:
            options = {**options, "email": settings.email}
        return create_speech_request(text, voice_id, **options)

    def _retry_arguments(self, request: ApiRequest) -> dict[str, Any]:
        policy = self.retry_policy

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return policy.delay(state.attempt_number, error)

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait_for = state.next_action.sleep if state.next_action else 0.0
            self.log.warning(
                "PixVerse %s %s failed (%s); try %d of %d in %.1f s",
                request.method,
                request.path,
                error,
                state.attempt_number + 1,
                policy.max_attempts,
                wait_for,
            )

        return {
            "stop": tenacity.stop_after_attempt(policy.max_attempts),
            "retry": tenacity.retry_if_exception(
                functools.partial(_should_retry, policy, idempotent=request.idempotent)
            ),
            "wait": wait,
            "before_sleep": log_retry,
            "reraise": True,
        }


def _should_retry(policy: RetryPolicy, error: BaseException, *, idempotent: bool) -> bool:
    return policy.should_retry(error, idempotent=idempotent)


def _multipart(form: dict[str, str] | None) -> dict[str, tuple[None, str]] | None:
    """Form fields as multipart parts (no file name), the encoding the create endpoint takes."""
    return {key: (None, value) for key, value in form.items()} if form else None


def _aiohttp_form(form: dict[str, str] | None) -> Any:
    """Form fields as a multipart body for aiohttp, the encoding the create endpoint takes."""
    if not form:
        return None
    data = aiohttp.FormData(default_to_multipart=True)
    for key, value in form.items():
        data.add_field(key, value)
    return data


def _never_sent(error: requests.RequestException) -> bool:
    """Whether ``requests`` failed before the request could reach the server."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = getattr(error.args[0], "reason", None) if error.args else None
        return isinstance(reason, NewConnectionError)
    return False


def _media_chunks(response: requests.Response, url: str, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from response.iter_content(chunk_size=chunk_size)
    except requests.RequestException as error:
        raise PixVerseConnectionError(f"the download from {url} broke off: {type(error).__name__}") from error


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context of every async session in the process (building one loads the CA store)."""
    return ssl.create_default_context()
