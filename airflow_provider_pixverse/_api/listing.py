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
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import PixVerseError, PixVerseInvalidInputError
from airflow_provider_pixverse._api.ids import account_of, clip_number
from airflow_provider_pixverse._api.request import (
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

    Halved when a page comes back over the answer cap (that offset is asked again), and grown
    back (at most doubling a page) towards ``configured`` while pages stay well under the cap:
    a page is sized to fill at most :data:`PAGE_FILL` of ``max_bytes`` at the bytes per clip seen.
    """

    configured: int = LIST_PAGE_SIZE
    max_bytes: int = MAX_ANSWER_BYTES
    size: int = 0

    def __post_init__(self) -> None:
        self.size = self.size or self.configured

    def seen(self, entries: int, size: int) -> None:
        """A page of ``entries`` entries took ``size`` bytes."""
        if entries <= 0:
            return
        fits = int(self.max_bytes * PAGE_FILL * entries / max(size, 1))
        self.size = max(1, min(self.configured, 2 * self.size, fits))

    def shrink(self, error: PixVerseError) -> None:
        """A page came back over the cap: halve the page, or raise ``error`` when a page of one was."""
        if self.size <= 1:
            raise error
        self.size = max(1, self.size // 2)


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
    clips: list[SpeechClip] = field(default_factory=list)
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
        if self.sizer is None:
            self.sizer = PageSizer(configured=self.page_size)
        searching = bool(self.wanted) or self.down_to is not None
        if searching and self.max_pages is None:
            extra = 10 if self.down_to is not None else 0
            self.max_pages = 2 * math.ceil(len(self.wanted) / self.page_size) + 2 + extra
        self._slots = sys.maxsize if self.max_pages is None else self.max_pages * self.page_size
        self._previous = self.anchor

    def next_request(self) -> ApiRequest | None:
        """The request for the next page, or ``None`` when the listing is done."""
        if self.next_offset is None or self.broken:
            return None
        if self.max_items is not None and len(self.clips) >= self.max_items:
            return None
        if (self.wanted or self.down_to is not None) and not self._unseen and self._reached_floor:
            return None
        if self._asked >= self._slots:
            return None
        assert self.sizer is not None
        self._asked_now = max(1, min(self.sizer.size, self._slots - self._asked))
        return list_speech_request(email=self.email, offset=self.next_offset, limit=self._asked_now)

    def too_large(self, error: AnswerTooLargeError) -> None:
        """The page just asked for was over the answer cap: ask for that offset again, in a smaller page."""
        assert self.sizer is not None
        self.sizer.shrink(error)

    def add_page(self, data: object, size: int | None = None) -> PageReport:
        """Take in one decoded page (``size``: its bytes, to size the next pages); what it skipped is reported."""
        entries, next_offset = parse_speech_page(data)
        offset = self.next_offset or 0
        self.pages += 1
        self._asked += self._asked_now
        if size is not None and self.sizer is not None:
            self.sizer.seen(len(entries), size)
        report = PageReport(offset)
        for index, entry in enumerate(entries):
            clip = self._take(entry, report)
            if clip is None:
                continue
            number = clip_number(clip.audio_id)
            if self.anchor is not None and self._lowest is None and number != self.anchor:
                self.broken = True  # clips came or went where the earlier listing ended
                return report
            self._see(number, offset + index)
            self.clips.append(clip)
            self._unseen.discard(clip.audio_id or "")
        if report.skipped:
            self.reports.append(report)
        if self.down_to is not None:  # decided on the whole page: its order counts too
            self._reached_floor = self._falling and self._lowest is not None and self._lowest <= self.down_to
        self.next_offset = next_offset
        return report

    def _take(self, entry: Any, report: PageReport) -> SpeechClip | None:
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
        return SpeechClip.from_json(entry)

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

    def result(self) -> list[SpeechClip]:
        """The clips in the order listed, at most ``max_items``."""
        return self.clips if self.max_items is None else self.clips[: self.max_items]


def describe_report(report: PageReport) -> str:
    """One log line's worth about what a page held that is not a clip of the account."""
    return (
        f"the listing page at offset {report.offset} held {report.not_clips} entries that are not clips and "
        f"{report.other_accounts} clips of other accounts, skipped (first: {report.example})"
    )
