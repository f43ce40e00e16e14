"""Sending creates: the request both transports send, several at once under a concurrency bound, the async one,
and what a 429 to a create means."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import (
    PixVerseAccountBusyError,
    PixVerseError,
    PixVerseInvalidInputError,
    PixVerseRateLimitError,
)
from airflow_provider_pixverse._api.request import create_speech_request
from airflow_provider_pixverse._api.response import parse_created_audio_id
from airflow_provider_pixverse.hooks._transport import api_session

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Sequence

    import requests

    from airflow_provider_pixverse._api.request import ApiRequest, ApiSettings

    CreateOne = Callable[[str, str, dict[str, Any], requests.Session], str]


def create_request(api: ApiSettings, text: str, voice_id: str, settings: dict[str, Any]) -> tuple[ApiRequest, bool]:
    """The create both transports send (the connection's ``email`` when none is given), and its ``retry_busy``.

    Checked before anything is sent (see :func:`~airflow_provider_pixverse._api.create.build_create_form`).
    """
    settings = dict(settings)
    retry_busy = bool(settings.pop("retry_busy", True))
    if settings.get("email") is None and api.email:
        settings["email"] = api.email
    return create_speech_request(text, voice_id, **settings), retry_busy


async def acreate(
    send: Callable[[ApiRequest], Awaitable[Any]], api: ApiSettings, text: str, voice_id: str, settings: dict[str, Any]
) -> str:
    """Send one create with ``send`` (once: never again, whatever happens) and read its ``audio_id``.

    The request is :func:`create_request`'s; a 429 raises :class:`PixVerseAccountBusyError` (no job
    was made) with the answer's ``retry_after``.
    """
    if "retry_busy" in settings:
        raise PixVerseInvalidInputError("the async create is sent once and never retried: it takes no retry_busy")
    request, _ = create_request(api, text, voice_id, settings)
    try:
        return parse_created_audio_id(await send(request))
    except PixVerseRateLimitError as error:
        raise busy_error(error) from error


def busy_error(error: PixVerseRateLimitError) -> PixVerseAccountBusyError:
    """A 429 to a create as what it means: the account is busy, no job was made (``retry_after`` kept)."""
    if isinstance(error, PixVerseAccountBusyError):
        return error
    return PixVerseAccountBusyError(
        f"{error.reason} (no job was made)",
        http_status=error.http_status,
        retry_after=error.retry_after,
    )


def send_creates(
    create: CreateOne,
    creates: Sequence[tuple[str, dict[str, Any]]],
    *,
    concurrency: int,
    session: requests.Session,
) -> Generator[tuple[int, str | PixVerseError]]:
    """Send ``creates`` with ``create``, at most ``concurrency`` at once; ``(index, audio_id or error)`` as each ends.

    Each create is sent once. With more than one at once each thread has an HTTP session of its
    own (``session`` serves the one-at-a-time case). Closing the iterator early (at a failure, say)
    cancels the creates not started yet.
    """
    if concurrency <= 1 or len(creates) <= 1:
        for index, (text, arguments) in enumerate(creates):
            yield index, _create_or_error(create, text, arguments, session)
        return
    local = threading.local()
    sessions: list[requests.Session] = []

    def in_thread(text: str, arguments: dict[str, Any]) -> str | PixVerseError:
        own = getattr(local, "session", None)
        if own is None:
            own = local.session = api_session()
            sessions.append(own)
        return _create_or_error(create, text, arguments, own)

    pool = ThreadPoolExecutor(max_workers=min(concurrency, len(creates)), thread_name_prefix="pixverse-create")
    futures = {pool.submit(in_thread, text, arguments): index for index, (text, arguments) in enumerate(creates)}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for own in sessions:
            own.close()


def _create_or_error(
    create: CreateOne, text: str, arguments: dict[str, Any], session: requests.Session
) -> str | PixVerseError:
    arguments = dict(arguments)
    voice_id = arguments.pop("voice_id")
    try:
        return create(text, voice_id, arguments, session)
    except PixVerseError as error:
        return error
