"""Driving a listing over either transport: a page over the answer cap (or refused) asked again smaller, skips logged.

The hook's listing calls (:meth:`PixVerseHook.list_speech`, :meth:`PixVerseHook.alist_account`)
hand a :class:`~airflow_provider_pixverse._api.listing.SpeechListing` and their way of sending one
request (which appends the answer's size in bytes to a list) to these loops. The async loop fetches
the pages of a listing in waves of up to ``concurrency`` pages at once, taken in order.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.listing import PageSizer, SpeechListing, describe_report

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_pixverse._api.listing import PageReport
    from airflow_provider_pixverse._api.request import ApiRequest, ApiSettings

# The clips PixVerseHook.list_speech returns at most unless told otherwise.
LIST_SPEECH_MAX_ITEMS = 1000


def new_listing(
    settings: ApiSettings, sizers: dict[str | None, PageSizer], account: str | None, **fields: Any
) -> SpeechListing:
    """A listing of ``account``'s clips (only its own are kept), paged by the account's :class:`PageSizer`."""
    sizer = sizers.get(account)
    if sizer is None:
        sizer = sizers[account] = PageSizer(configured=settings.list_page_size, max_bytes=settings.max_answer_bytes)
    return SpeechListing(
        email=account, page_size=settings.list_page_size, account=account or None, sizer=sizer, **fields
    )


async def alist(
    settings: ApiSettings,
    sizers: dict[str | None, PageSizer],
    send: Callable[..., Awaitable[Any]],
    log: Any,
    account: str,
    **fields: Any,
) -> SpeechListing:
    """A listing of ``account`` (see :func:`new_listing`) paged to its end, ``list_concurrency`` pages at once."""
    listing = new_listing(settings, sizers, account, **fields)
    return await adrive(listing, send, log, account, settings.list_concurrency)


def drive(listing: SpeechListing, send: Callable[..., Any], log: Any, account: str | None) -> SpeechListing:
    """Page ``listing`` to its end with the sync ``send``, one page at a time."""
    while (request := listing.next_request()) is not None:
        sizes: list[int] = []
        try:
            data = send(request, sizes=sizes)
        except PixVerseError as error:
            if listing.setback(request, error):  # raises the answer-cap error of a page of one
                continue
            raise
        log_page(log, account, listing.add_page(data, sizes[-1] if sizes else None, request=request))
    return listing


async def adrive(
    listing: SpeechListing,
    send: Callable[..., Awaitable[Any]],
    log: Any,
    account: str | None,
    concurrency: int = 1,
) -> SpeechListing:
    """Page ``listing`` to its end with the async ``send``, in waves of up to ``concurrency`` pages at once.

    The answers of a wave are taken in order, as one page at a time would take them; a wave's first
    failure that no smaller page cures is raised once the wave is over (the pages before it are taken).
    """
    while requests := listing.next_requests(concurrency):
        if len(requests) == 1:
            answers: list[Any] = [await _fetched(send, requests[0])]
        else:
            answers = await asyncio.gather(*(_fetched(send, request) for request in requests))
        for request, answer in zip(requests, answers, strict=True):
            if not listing.takes(request):
                break  # the listing is done, or this page no longer follows the last one taken
            if isinstance(answer, PixVerseError):
                if listing.setback(request, answer):
                    break
                raise answer
            data, size = answer
            log_page(log, account, listing.add_page(data, size, request=request))
    return listing


async def _fetched(send: Callable[..., Awaitable[Any]], request: ApiRequest) -> tuple[Any, int | None] | PixVerseError:
    """One page's answer and its size in bytes, or the error it failed with."""
    sizes: list[int] = []
    try:
        data = await send(request, sizes=sizes)
    except PixVerseError as error:
        return error
    return data, sizes[-1] if sizes else None


def log_page(log: Any, account: str | None, report: PageReport) -> None:
    """One warning for a page that held entries the listing skipped (none for a clean page)."""
    if report.skipped:
        log.warning("Listing %s's clips: %s", account or "the default account", describe_report(report))
