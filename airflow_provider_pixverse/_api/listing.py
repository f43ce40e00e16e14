"""Paging through GET speech/: which page to ask for next, and the clips gathered so far.

The stop rule of a listing that looks for ``wanted`` clips (the shared poll of waiting clips)
and, for watchers of new speech, for every clip newer than ``down_to`` (a clip number): stop
once every wanted clip has been seen and a clip numbered ``down_to`` or lower too, or at the
last page, or after ``max_pages`` pages (by default twice the pages the wanted clips would fill,
and two more: room for the account's other clips between them; ten more with ``down_to``).
A wanted clip not seen by then is looked up by its own GET.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.ids import clip_number
from airflow_provider_pixverse._api.request import LIST_PAGE_SIZE, ApiRequest, list_speech_request
from airflow_provider_pixverse._api.response import parse_speech_page


@dataclass
class SpeechListing:
    """The state of one listing; both transports drive it with the same two calls."""

    email: str | None = None
    max_items: int | None = None
    page_size: int = LIST_PAGE_SIZE
    wanted: frozenset[str] = frozenset()
    down_to: int | None = None
    max_pages: int | None = None
    clips: list[SpeechClip] = field(default_factory=list)
    next_offset: int | None = 0
    pages: int = 0
    _unseen: set[str] = field(default_factory=set)
    _reached_floor: bool = True

    def __post_init__(self) -> None:
        self._unseen = set(self.wanted)
        self._reached_floor = self.down_to is None
        searching = bool(self.wanted) or self.down_to is not None
        if searching and self.max_pages is None:
            extra = 10 if self.down_to is not None else 0
            self.max_pages = 2 * math.ceil(len(self.wanted) / self.page_size) + 2 + extra

    def next_request(self) -> ApiRequest | None:
        """The request for the next page, or ``None`` when the listing is complete."""
        if self.next_offset is None or (self.max_items is not None and len(self.clips) >= self.max_items):
            return None
        if (self.wanted or self.down_to is not None) and not self._unseen and self._reached_floor:
            return None
        if self.max_pages is not None and self.pages >= self.max_pages:
            return None
        return list_speech_request(email=self.email, offset=self.next_offset, limit=self.page_size)

    def add_page(self, data: object) -> None:
        """Take in one decoded page."""
        page, self.next_offset = parse_speech_page(data)
        self.pages += 1
        for item in page:
            clip = SpeechClip.from_json(item)
            self.clips.append(clip)
            self._unseen.discard(clip.audio_id or "")
            number = clip_number(clip.audio_id)
            if self.down_to is not None and number is not None and number <= self.down_to:
                self._reached_floor = True

    def result(self) -> list[SpeechClip]:
        """The clips, newest first, at most ``max_items``."""
        return self.clips if self.max_items is None else self.clips[: self.max_items]
