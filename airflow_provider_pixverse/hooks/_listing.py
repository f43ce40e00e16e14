"""Driving a listing over either transport: a page over the answer cap asked again smaller, skips logged.

The hook's listing calls (:meth:`PixVerseHook.list_speech`, :meth:`PixVerseHook.alist_account`)
hand a :class:`~airflow_provider_pixverse._api.listing.SpeechListing` and their way of sending one
request (which appends the answer's size in bytes to a list) to these loops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.listing import PageSizer, SpeechListing, describe_report
from airflow_provider_pixverse._api.response import AnswerTooLargeError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_provider_pixverse._api.listing import PageReport
    from airflow_provider_pixverse._api.request import ApiSettings

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


def drive(listing: SpeechListing, send: Callable[..., Any], log: Any, account: str | None) -> SpeechListing:
    """Page ``listing`` to its end with the sync ``send``."""
    while (request := listing.next_request()) is not None:
        sizes: list[int] = []
        try:
            data = send(request, sizes=sizes)
        except AnswerTooLargeError as error:
            listing.too_large(error)  # raises it when a page of one was over the cap
            continue
        log_page(log, account, listing.add_page(data, sizes[-1] if sizes else None))
    return listing


async def adrive(
    listing: SpeechListing,
    send: Callable[..., Awaitable[Any]],
    log: Any,
    account: str | None,
) -> SpeechListing:
    """Page ``listing`` to its end with the async ``send``."""
    while (request := listing.next_request()) is not None:
        sizes: list[int] = []
        try:
            data = await send(request, sizes=sizes)
        except AnswerTooLargeError as error:
            listing.too_large(error)
            continue
        log_page(log, account, listing.add_page(data, sizes[-1] if sizes else None))
    return listing


def log_page(log: Any, account: str | None, report: PageReport) -> None:
    """One warning for a page that held entries the listing skipped (none for a clean page)."""
    if report.skipped:
        log.warning("Listing %s's clips: %s", account or "the default account", describe_report(report))
