"""The PixVerse hook: the one place that talks HTTP to the API and its media host."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import aiohttp
import requests
import tenacity
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from yarl import URL

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.clock import SYSTEM_CLOCK, Clock
from airflow_provider_pixverse._api.errors import (
    PixVerseConnectionError,
    PixVerseError,
    PixVerseRateLimitError,
    PixVerseResponseError,
)
from airflow_provider_pixverse._api.media import MAX_REDIRECTS, check_media_url, media_deadline, without_userinfo
from airflow_provider_pixverse._api.request import (
    DEFAULT_HOST,
    ApiRequest,
    ApiSettings,
    get_speech_request,
    list_models_request,
    list_voices_request,
    settings_from_connection,
)
from airflow_provider_pixverse._api.response import parse_created_audio_id, parse_voices, require_dict
from airflow_provider_pixverse._api.retry import RetryPolicy
from airflow_provider_pixverse.hooks._creates import acreate, busy_error, create_request, send_creates
from airflow_provider_pixverse.hooks._listing import LIST_SPEECH_MAX_ITEMS, alist, drive, new_listing
from airflow_provider_pixverse.hooks._transport import (
    SESSIONS,
    aiohttp_failures,
    aiohttp_form,
    api_session,
    multipart_fields,
    redirect_target,
    refuse_announced,
    refuse_size,
    requests_failures,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator, Sequence

    from airflow_provider_pixverse._api.listing import PageSizer, SpeechListing

__all__ = ["PixVerseHook"]

MEDIA_CHUNK_SIZE = 1024 * 1024
_ANSWER_CHUNK_SIZE = 64 * 1024


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

    Sync methods use ``requests`` and retry GETs per ``retry_policy`` (a create is never sent twice
    once it may have reached the server). The async calls (``aiohttp``, for triggers) never retry:
    the wait that calls them decides what a failure means.

    Every call is bounded: an answer may hold at most ``max_answer_bytes`` (16 MiB, compressed or
    decoded) and must arrive whole within the connection's ``timeout``.

    :param pixverse_conn_id: The Airflow connection holding the API token (password) and,
        optionally, the API base URL (host) and ``email``, ``timeout``, ``list_page_size`` and
        ``accounts`` (extra; the corpus operator's accounts, see ``operators/batch_accounts.py``).
    :param retry_policy: How failed calls are retried; the default suits the public API.
    :param clock: What waits between retries and tells the time (tests use a fake one).
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
        clock: Clock = SYSTEM_CLOCK,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pixverse_conn_id = pixverse_conn_id
        self.retry_policy = retry_policy or RetryPolicy()
        self.clock = clock
        self._async_settings: ApiSettings | None = None
        self._async_client: aiohttp.ClientSession | None = None
        self._page_sizers: dict[str | None, PageSizer] = {}  # per account, kept from one listing to the next

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
        """Extra fields of the connection form: every extra the hook reads, labelled and described."""
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
            from wtforms import StringField
        except ImportError:  # Airflow 3.2+ builds the form from provider info instead.
            return {}
        from airflow_provider_pixverse.get_provider_info import CONNECTION_EXTRA_FIELDS

        return {
            name: StringField(field["label"], description=field["description"], widget=BS3TextFieldWidget())
            for name, field in CONNECTION_EXTRA_FIELDS.items()
        }

    # -- settings ---------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ApiSettings:
        """The API base URL, token, default email and timeout of the connection."""
        conn = self.get_connection(self.pixverse_conn_id)
        settings = settings_from_connection(
            self.pixverse_conn_id, conn.host, conn.port, conn.password, conn.extra_dejson
        )
        mask_secret(settings.token)
        return settings

    async def aget_settings(self) -> ApiSettings:
        """The connection's settings, read without blocking the event loop."""
        if self._async_settings is None:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )

            conn = await get_async_connection(self.pixverse_conn_id, hook=self)
            extra = await get_async_extra_dejson(conn)
            settings = settings_from_connection(self.pixverse_conn_id, conn.host, conn.port, conn.password, extra)
            mask_secret(settings.token)
            self._async_settings = settings
        return self._async_settings

    @cached_property
    def session(self) -> requests.Session:
        """The sync HTTP session for API calls (the token is added per request, not here)."""
        return api_session()

    # -- sync API --------------------------------------------------------------------------

    def get_speech(self, audio_id: str) -> SpeechClip:
        """Retrieve one clip (retrying transient failures): its status, or the finished clip."""
        request = get_speech_request(audio_id)
        return SpeechClip.from_json(self._call(request), audio_id=request.audio_id)

    def poll_speech(self, audio_id: str) -> SpeechClip:
        """One look at a clip, with no retry: for waits that decide themselves what a failure means."""
        request = get_speech_request(audio_id)
        return SpeechClip.from_json(self._send(self.settings, request), audio_id=request.audio_id)

    def create_speech(self, text: str, voice_id: str, **settings: Any) -> str:
        """Start generating speech and return the new ``audio_id`` (sent once, never re-sent blindly).

        :param settings: The optional create fields in snake case: ``model``, ``email`` (default:
            the connection's), ``language_code``, ``speed``, ``volume``, ``pitch``, ``emotion``,
            ``stability``, ``similarity_boost``, ``style``, ``use_speaker_boost``, ``reply_url``,
            ``reply_ref``, ``max_jobs``; and ``retry_busy`` (default True): whether a create refused as
            busy (429) is sent again by the retry policy, or raised at once as
            :class:`~airflow_provider_pixverse.exceptions.PixVerseAccountBusyError` (no job was made).
        """
        return self._create(text, voice_id, settings, self.session)

    def create_speech_many(
        self, creates: Sequence[tuple[str, dict[str, Any]]], *, concurrency: int
    ) -> Generator[tuple[int, str | PixVerseError]]:
        """Send several creates, at most ``concurrency`` at once; yield ``(index, audio_id or error)`` as each ends.

        Each of ``creates`` is ``(text, arguments)``, ``arguments`` those of :meth:`create_speech`
        (``voice_id`` among them), each sent once from a thread with an HTTP session of its own
        (see :func:`~airflow_provider_pixverse.hooks._creates.send_creates`).
        """
        self.settings  # noqa: B018 -- read here, not in the threads
        return send_creates(self._create, creates, concurrency=concurrency, session=self.session)

    def _create(self, text: str, voice_id: str, settings: dict[str, Any], session: requests.Session) -> str:
        request, retry_busy = create_request(self.settings, text, voice_id, settings)
        try:
            return parse_created_audio_id(self._call(request, session, retry_rate_limits=retry_busy))
        except PixVerseRateLimitError as error:
            raise busy_error(error) from error

    def list_speech(self, *, email: str | None = None, max_items: int | None = None) -> list[SpeechClip]:
        """The account's clips as listed (newest first), page by page; entries that are not its clips skipped.

        :param max_items: The most clips returned (``None``: 1,000). At the cap the first ``max_items``
            are returned and a warning says the account holds more; ask for more to read further.
        """
        email, cap = email or self.settings.email, max_items or LIST_SPEECH_MAX_ITEMS
        listing = new_listing(self.settings, self._page_sizers, email, max_items=cap)
        drive(listing, self._call, self.log, email)
        if listing.more and len(listing.entries) >= cap:
            self.log.warning("Listed the first %d clips of %s; it holds more (max_items)", cap, email or "the account")
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
        except PixVerseError as error:
            return False, str(error)
        return True, f"Connected to the PixVerse API at {self.settings.base_url}"

    @contextlib.contextmanager
    def open_media(
        self, url: str, *, chunk_size: int = MEDIA_CHUNK_SIZE, expected_bytes: int | None = None
    ) -> Iterator[MediaStream]:
        """Stream a clip's MP3 from its media URL, with no token, no Authorization header, no credentials.

        Every hop (redirects are followed by hand, at most ``MAX_REDIRECTS``) must be ``https``
        (or ``http`` when the API itself is, as a local sandbox is) and carry no user:password.
        A hop that sends nothing for ``timeout`` seconds fails, and the whole download must end
        within the limit :func:`media_deadline` gives for its ``Content-Length`` (else ``expected_bytes``).
        """
        api_scheme = self.settings.origin[0]
        started = self.clock.time()
        url = without_userinfo(url)
        with requests.Session() as media_session:
            media_session.trust_env = False  # no .netrc credentials either
            for _hop in range(MAX_REDIRECTS + 1):
                check_media_url(url, api_scheme=api_scheme)
                with requests_failures(f"fetching the media URL {url}"):
                    response = media_session.get(url, stream=True, timeout=self.settings.timeout, allow_redirects=False)
                if not response.is_redirect:
                    break
                response.close()
                url = redirect_target(url, response.headers.get("location", ""))
            else:
                raise PixVerseResponseError(f"the media URL {url} redirected more than {MAX_REDIRECTS} times")
            with response:
                if response.status_code != 200:
                    raise PixVerseConnectionError(f"the media URL {url} answered HTTP {response.status_code}")
                length = response.headers.get("content-length")
                content_length = int(length) if length and length.isdigit() else None
                deadline = started + media_deadline(self.settings.timeout, content_length or expected_bytes)
                yield MediaStream(
                    url=url,
                    status_code=response.status_code,
                    content_type=response.headers.get("content-type", ""),
                    content_length=content_length,
                    chunks=self._read_chunks(response, f"the download from {url}", chunk_size, deadline),
                )

    def _call(
        self,
        request: ApiRequest,
        session: requests.Session | None = None,
        *,
        retry_rate_limits: bool = True,
        **send: Any,
    ) -> Any:
        settings = self.settings
        retrying = self._retry_arguments(request, retry_rate_limits=retry_rate_limits)
        for attempt in tenacity.Retrying(sleep=self.clock.sleep, **retrying):
            with attempt:
                return self._send(settings, request, session, **send)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self, settings: ApiSettings, request: ApiRequest, session: requests.Session | None = None, *, sizes: Any = None
    ) -> Any:
        what = f"{request.method} {request.path}"
        deadline = self.clock.time() + settings.timeout
        with requests_failures(what, audio_id=request.audio_id):
            response = (session or self.session).request(
                request.method,
                request.url(settings),
                files=multipart_fields(request.form),
                headers=settings.headers(),
                timeout=settings.timeout,
                allow_redirects=False,
                stream=True,
            )
        with response:
            refuse_announced(response.headers.get("content-length"), settings.max_answer_bytes, what)
            body = bytearray()
            for chunk in self._read_chunks(response, what, _ANSWER_CHUNK_SIZE, deadline, audio_id=request.audio_id):
                body += chunk
                refuse_size(len(body), settings.max_answer_bytes, what)
        if sizes is not None:
            sizes.append(len(body))
        return settings.parse(response.status_code, response.headers, bytes(body), audio_id=request.audio_id)

    def _read_chunks(
        self,
        response: requests.Response,
        what: str,
        chunk_size: int,
        deadline: float,
        *,
        audio_id: str | None = None,
    ) -> Iterator[bytes]:
        """The body as it arrives (decoded), failing once ``deadline`` passes, however slowly it drips."""
        while True:
            with requests_failures(what, audio_id=audio_id):
                chunk = response.raw.read1(chunk_size, decode_content=True)
            if not chunk:
                return
            if self.clock.time() > deadline:
                raise PixVerseConnectionError(f"{what} took longer than its time limit", audio_id=audio_id)
            yield chunk

    # -- async API (the trigger) -----------------------------------------------------------

    async def apoll_speech(self, audio_id: str) -> SpeechClip:
        """One look at a clip, with no retry: the trigger's poll. Its wait decides what a failure means."""
        request = get_speech_request(audio_id)
        settings = await self.aget_settings()
        return SpeechClip.from_json(await self._asend(settings, request), audio_id=request.audio_id)

    async def acreate_speech(self, text: str, voice_id: str, **settings: Any) -> str:
        """:meth:`create_speech` without blocking the event loop (for triggers): the same request and answer.

        Sent once, never again (see :func:`~airflow_provider_pixverse.hooks._creates.acreate`): a 429
        raises ``PixVerseAccountBusyError`` at once. A cancelled call may have made a job: record the intent first.
        """
        api = await self.aget_settings()
        return await acreate(functools.partial(self._asend, api), api, text, voice_id, settings)

    async def alist_speech_for(
        self, account: str, wanted: frozenset[str], *, down_to: int | None = None
    ) -> list[SpeechClip]:
        """One round of the shared poll: the account's clips, as far as the ``wanted`` ones and number ``down_to``."""
        return (await self.alist_account(account, wanted, down_to=down_to)).result()

    async def alist_account(
        self, account: str, wanted: frozenset[str] = frozenset(), *, down_to: int | None = None, **more: Any
    ) -> SpeechListing:
        """:meth:`alist_speech_for`, the listing returned whole (how far it got); ``more`` goes to its
        :class:`~airflow_provider_pixverse._api.listing.SpeechListing`; ``list_concurrency`` pages at once."""
        settings = await self.aget_settings()
        send = functools.partial(self._asend, settings)
        return await alist(settings, self._page_sizers, send, self.log, account, wanted=wanted, down_to=down_to, **more)

    async def aclose(self) -> None:
        """Let go of the async HTTP session (closed with the last hook of the event loop that uses it)."""
        if self._async_client is not None:
            self._async_client = None
            await SESSIONS.release()

    async def _asend(self, settings: ApiSettings, request: ApiRequest, *, sizes: list[int] | None = None) -> Any:
        if self._async_client is None:
            self._async_client = SESSIONS.acquire()
        what = f"{request.method} {request.path}"
        async with (
            aiohttp_failures(what, audio_id=request.audio_id),
            self._async_client.request(
                request.method,
                URL(request.url(settings), encoded=True),  # the audio_id is sent exactly as given
                data=aiohttp_form(request.form),
                headers=settings.headers(),
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
                allow_redirects=False,
            ) as response,
        ):
            refuse_announced(response.headers.get("content-length"), settings.max_answer_bytes, what)
            body = bytearray()
            async for chunk in response.content.iter_chunked(_ANSWER_CHUNK_SIZE):
                body += chunk
                refuse_size(len(body), settings.max_answer_bytes, what)
        if sizes is not None:
            sizes.append(len(body))
        return settings.parse(response.status, response.headers, bytes(body), audio_id=request.audio_id)

    # -- retries of the sync calls ------------------------------------------------------------

    def _retry_arguments(self, request: ApiRequest, *, retry_rate_limits: bool = True) -> dict[str, Any]:
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
                functools.partial(_should_retry, policy, idempotent=request.idempotent, rate_limits=retry_rate_limits)
            ),
            "wait": wait,
            "before_sleep": log_retry,
            "reraise": True,
        }


def _should_retry(policy: RetryPolicy, error: BaseException, *, idempotent: bool, rate_limits: bool = True) -> bool:
    if not rate_limits and isinstance(error, PixVerseRateLimitError):
        return False
    return policy.should_retry(error, idempotent=idempotent)
