"""Paging through GET speech/: which page to ask for next, and the clips gathered so far."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.request import LIST_PAGE_SIZE, ApiRequest, list_speech_request
from airflow_provider_pixverse._api.response import parse_speech_page


@dataclass
class SpeechListing:
    """The state of one listing; both transports drive it with the same two calls."""

    email: str | None = None
    max_items: int | None = None
    clips: list[SpeechClip] = field(default_factory=list)
    next_offset: int | None = 0

    def next_request(self) -> ApiRequest | None:
        """The request for the next page, or ``None`` when the listing is complete."""
        if self.next_offset is None or (self.max_items is not None and len(self.clips) >= self.max_items):
            return None
        return list_speech_request(email=self.email, offset=self.next_offset, limit=LIST_PAGE_SIZE)

    def add_page(self, data: object) -> None:
        """Take in one decoded page."""
        page, self.next_offset = parse_speech_page(data)
        self.clips.extend(SpeechClip.from_json(item) for item in page)

    def result(self) -> list[SpeechClip]:
        """The clips, newest first, at most ``max_items``."""
        return self.clips if self.max_items is None else self.clips[: self.max_items]
