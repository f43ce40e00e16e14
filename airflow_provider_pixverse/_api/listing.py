"""Paging through GET speech/: which page to ask for next, and the clips gathered so far.

The stop rule of a listing that looks for ``wanted`` clips (the shared poll of waiting clips)
and, for watchers of new speech, for every clip newer than ``down_to`` (a clip number): stop
once every wanted clip has been seen and the listing has reached ``down_to``, or at the last
page, or once it has asked for ``max_pages`` pages' worth of clips (by default twice the pages
the wanted clips would fill, and two more: room for the account's other clips between them; ten
more with ``down_to``). A wanted clip not seen by then is looked up by its own GET.

The listing's order (newest first) is unconfirmed, so it is checked, not trusted: ``down_to``
counts as reached only when a clip numbered ``down_to`` or lower was seen and every clip number
so far came in falling order. Otherwise only the last page completes the listing.

Entries that are not clips (``null``, a number, an object without a valid ``audio_id``) and, with
``account``, clips of another account are skipped and counted per page, for one log line a page.

Pages may be fetched in waves (:meth:`SpeechListing.next_requests`): their offsets follow from the
page size, and the pages of a wave are taken in order (:meth:`SpeechListing.takes`), so the stop
rules mean what they mean one page at a time: a page whose offset no longer follows (the API sent
fewer clips than asked) or that comes after the listing is done is dropped, never taken.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import PixVerseBadRequestError, PixVerseError, PixVerseInvalidInputError
from airflow_provider_pixverse._api.ids import account_of, clip_number
from airflow_provider_pixverse._api.request import (
    LIST_PAGE_GOAL,
    LIST_PAGE_SIZE,
    MAX_ANSWER_BYTES,
    ApiRequest,
    list_speech_request,
)
from airflow_provider_pixverse._api.response import AnswerTooLargeError, parse_speech_page

# Pages are sized to fill at most this share of the answer cap, judged by the bytes per clip seen.
PAGE_FILL = 0.75


@dataclass
class PageSizer:
    """The page size of one account's listings, kept from round to round.

    Pages are asked for at ``configured`` clips (100 by default: the API's maximum is unconfirmed),
    and the API's answers set the limit: a page that holds fewer clips than asked while more follow
    shows the most the API sends (``cap``), and a 400 to a page over the documented default of 50
    falls back to 50. Halved when a page comes back over the answer cap (that offset is asked
    again), and grown back (at most doubling a page) towards ``configured`` while pages stay well
    under the cap: a page is sized to fill at most :data:`PAGE_FILL` of ``max_bytes`` at the bytes
    per clip seen.
    """

    configured: int = LIST_PAGE_GOAL
    max_bytes: int = MAX_ANSWER_BYTES
    size: int = 0
    cap: int | None = None  # the most clips a page of the API was seen to hold (or accepted)

    def __post_init__(self) -> None:
        self.size = self.size or self.configured

    @property
    def most(self) -> int:
        """The largest page asked for: ``configured``, or less where the API showed its own maximum."""
        return self.configured if self.cap is None else min(self.configured, self.cap)

    def seen(self, entries: int, size: int | None, *, asked: int | None = None, more: bool = False) -> None:
        """A page of ``entries`` entries took ``size`` bytes (``asked``: its limit; ``more``: more follow)."""
        if entries <= 0:
            return
        if more and asked is not None and entries < asked:
            self.cap = entries  # the API sent fewer than asked, and more follow: that is its maximum
        fits = sys.maxsize if size is None else int(self.max_bytes * PAGE_FILL * entries / max(size, 1))
        self.size = max(1, min(self.most, 2 * self.size, fits))

    def shrink(self, error: PixVerseError) -> None:
        """A page came back over the cap: halve the page, or raise ``error`` when a page of one was."""
        if self.size <= 1:
            raise error
        self.size = max(1, self.size // 2)

    def refused(self, limit: int) -> bool:
        """The API answered 400 to a page of ``limit``: fall back to its documented page, if that is smaller."""
        if limit <= LIST_PAGE_SIZE:
            return False
        self.cap = LIST_PAGE_SIZE
        self.size = min(self.size, LIST_PAGE_SIZE)
        return True


@dataclass
class PageReport:
    """What one page held that the listing did not take: for one log line per page."""

    offset: int
    not_clips: int = 0
    other_accounts: int = 0
    example: str = ""

    @property
    def skipped(self) -> int:
        """Entries skipped on this page."""
        return self.not_clips + self.other_accounts


@dataclass
class SpeechListing:
    """The state of one listing; both transports drive it with the same calls.

    :param account: Keep only clips whose id names this account (the others are skipped).
    :param start_offset: Where the listing starts; with ``anchor``, the position of the clip
        numbered ``anchor`` that an earlier listing ended on (a listing continued across rounds).
        The first page must show that clip there, or the listing is :attr:`broken` and stops.
    """

    email: str | None = None
    max_items: int | None = None
    page_size: int = LIST_PAGE_SIZE
    wanted: frozenset[str] = frozenset()
    down_to: int | None = None
    max_pages: int | None = None
    account: str | None = None
    start_offset: int = 0
    anchor: int | None = None
    sizer: PageSizer | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)  # the clips taken, as the API sent them
    next_offset: int | None = None
    pages: int = 0
    broken: bool = False
    reports: list[PageReport] = field(default_factory=list)
    last_seen: tuple[int, int] | None = None  # (position, number) of the last clip taken, in listing order
    _unseen: set[str] = field(default_factory=set)
    _reached_floor: bool = True
    _falling: bool = True
    _lowest: int | None = None
    _slots: int = 0
    _asked: int = 0
    _asked_now: int = 0
    _previous: int | None = None

    def __post_init__(self) -> None:
        self._unseen = set(self.wanted)
        self._reached_floor = self.down_to is None
        self.next_offset = self.start_offset
        self._pager = self.sizer = self.sizer or PageSizer(configured=self.page_size)
        searching = bool(self.wanted) or self.down_to is not None
        if searching and self.max_pages is None:
            extra = 10 if self.down_to is not None else 0
            self.max_pages = 2 * math.ceil(len(self.wanted) / self.page_size) + 2 + extra
        self._slots = sys.maxsize if self.max_pages is None else self.max_pages * self.page_size
        self._previous = self.anchor

    @property
    def done(self) -> bool:
        """Whether the listing needs no further page (by the stop rules of the module)."""
        if self.next_offset is None or self.broken:
            return True
        if self.max_items is not None and len(self.entries) >= self.max_items:
            return True
        if (self.wanted or self.down_to is not None) and not self._unseen and self._reached_floor:
            return True
        return self._asked >= self._slots

    def next_request(self) -> ApiRequest | None:
        """The request for the next page, or ``None`` when the listing is done."""
        requests = self.next_requests(1)
        return requests[0] if requests else None

    def next_requests(self, pages: int) -> list[ApiRequest]:
        """Requests for up to ``pages`` pages that follow one another (a wave); none when the listing is done.

        Their offsets follow from the page size; a wave never asks for more than ``max_pages`` or
        ``max_items`` leave to ask for.
        """
        if self.done or self.next_offset is None:
            return []
        requests: list[ApiRequest] = []
        offset, asked = self.next_offset, self._asked
        wanting = None if self.max_items is None else self.max_items - len(self.entries)
        pages = min(pages, self._pages_ahead())
        while len(requests) < max(pages, 1) and asked < self._slots:
            if wanting is not None and asked - self._asked >= wanting:
                break
            limit = max(1, min(self._pager.size, self._slots - asked))
            requests.append(list_speech_request(email=self.email, offset=offset, limit=limit))
            offset, asked = offset + limit, asked + limit
        self._asked_now = int(requests[0].params["limit"]) if requests else 0
        return requests

    def _pages_ahead(self) -> int:
        """How many more pages the listing will likely need (a wave asks for no more than that).

        One page first (it shows where the account's clips begin); then as many as the clips still
        wanted fill, or as the clip numbers left to go down to (to the lowest clip still wanted, or
        to ``down_to``) would fill while the numbers fall; without wanted clips or a floor, no limit.
        """
        if self.pages == 0:
            return 1
        if not self.wanted and self.down_to is None:
            return sys.maxsize
        size = self._pager.size
        ahead = math.ceil(len(self._unseen) / size)
        if self._falling and self._lowest is not None:
            floors = [n for n in map(clip_number, self._unseen) if n is not None]
            if self.down_to is not None and not self._reached_floor:
                floors.append(self.down_to)
            if floors:
                ahead = max(ahead, math.ceil((self._lowest - min(floors)) / size))
        return max(ahead, 1)

    def takes(self, request: ApiRequest) -> bool:
        """Whether the answer to ``request`` is the page the listing goes on with (not done, the offset follows)."""
        return not self.done and request.params.get("offset") == str(self.next_offset)

    def too_large(self, error: AnswerTooLargeError) -> None:
        """The page just asked for was over the answer cap: ask for that offset again, in a smaller page."""
        self._pager.shrink(error)

    def setback(self, request: ApiRequest, error: PixVerseError) -> bool:
        """Whether the listing can ask again after ``error`` answered ``request`` (a smaller page); raises
        the answer-cap error of a page of one."""
        if isinstance(error, AnswerTooLargeError):
            self.too_large(error)
            return True
        return isinstance(error, PixVerseBadRequestError) and self._pager.refused(int(request.params["limit"]))

    def add_page(self, data: object, size: int | None = None, *, request: ApiRequest | None = None) -> PageReport:
        """Take in one decoded page (``size``: its bytes, to size the next pages); what it skipped is reported.

        :param request: The request it answers (default: the first of the last :meth:`next_requests`).
        """
        entries, next_offset = parse_speech_page(data)
        offset = self.next_offset or 0
        asked = int(request.params["limit"]) if request is not None else self._asked_now
        self.pages += 1
        self._asked += min(asked, max(len(entries), 1))  # slots are clips: a page the API cut counts its own
        if self.sizer is not None:
            self.sizer.seen(len(entries), size, asked=asked, more=next_offset is not None)
        report = PageReport(offset)
        for index, entry in enumerate(entries):
            audio_id = self._take(entry, report)
            if audio_id is None:
                continue
            number = clip_number(audio_id)
            if self.anchor is not None and self._lowest is None and number != self.anchor:
                self.broken = True  # clips came or went where the earlier listing ended
                return report
            self._see(number, offset + index)
            self.entries.append(entry)
            self._unseen.discard(audio_id)
        if report.skipped:
            self.reports.append(report)
        if self.down_to is not None:  # decided on the whole page: its order counts too
            self._reached_floor = self._falling and self._lowest is not None and self._lowest <= self.down_to
        self.next_offset = next_offset
        return report

    def _take(self, entry: Any, report: PageReport) -> str | None:
        """The ``audio_id`` of ``entry`` when it is a clip of the account (else ``None``: skipped, reported)."""
        audio_id = entry.get("audio_id") if isinstance(entry, dict) else None
        try:
            owner = account_of(audio_id) if isinstance(audio_id, str) else None
        except PixVerseInvalidInputError:
            owner = None
        if owner is None:
            report.not_clips += 1
            report.example = report.example or repr(entry)[:80]
            return None
        if self.account is not None and owner != self.account:
            report.other_accounts += 1
            report.example = report.example or str(audio_id)[:120]
            return None
        return audio_id

    def _see(self, number: int | None, position: int) -> None:
        if number is None:
            return
        if self._previous is not None and number > self._previous:
            self._falling = False  # not newest first: only the last page completes the listing
        self._previous = number
        self._lowest = number if self._lowest is None else min(self._lowest, number)
        self.last_seen = (position, number)

    @property
    def covered_above(self) -> int | None:
        """Every clip numbered above this was listed (``None``: the listing reached its last page).

        ``sys.maxsize`` when nothing can be said: the order was not newest first, or nothing was listed.
        """
        if self.next_offset is None and not self.broken:
            return None
        if not self._falling or self._lowest is None or self.broken:
            return sys.maxsize
        return self._lowest - 1

    @property
    def more(self) -> bool:
        """Whether the server said more clips follow the last page read."""
        return self.next_offset is not None

    @property
    def clips(self) -> list[SpeechClip]:
        """The clips taken so far, in the order listed (built from :attr:`entries` on each call)."""
        return [SpeechClip.from_json(entry) for entry in self.entries]

    def result(self) -> list[SpeechClip]:
        """The clips in the order listed, at most ``max_items``."""
        return [SpeechClip.from_json(entry) for entry in self.raw()]

    def raw(self) -> list[dict[str, Any]]:
        """:meth:`result` as the API sent it: the clips' JSON objects, unbuilt (each has a valid ``audio_id``)."""
        return self.entries if self.max_items is None else self.entries[: self.max_items]


def describe_report(report: PageReport) -> str:
    """One log line's worth about what a page held that is not a clip of the account."""
    return (
        f"the listing page at offset {report.offset} held {report.not_clips} entries that are not clips and "
        f"{report.other_accounts} clips of other accounts, skipped (first: {report.example})"
    )
