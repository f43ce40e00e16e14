"""Which clips of an account are newly final: the memory of a watcher of new speech.

Clips are numbered in the order they were made (the ``speech:<number>`` of their ids) but end in
any order, so one number is not enough. The watermark keeps ``settled``, the number at or below
which every clip is done with (announced, or final before the watcher started), and ``seen``,
the numbers above it already done with. Both stay small: ``settled`` moves up as soon as the
clips just above it are final, so ``seen`` holds only clips that finished before an older one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.ids import clip_number
from airflow_provider_pixverse._api.waiting import ClipOutcome, classify_clip

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip


@dataclass
class SpeechWatermark:
    """What a watcher has done with so far; plain JSON, so it survives a restart where it is stored."""

    settled: int
    seen: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, clips: list[SpeechClip], *, include_existing: bool) -> SpeechWatermark:
        """The watermark of a watcher that starts now, from the account's newest clips.

        Clips older than the listing are taken as done with. Unless ``include_existing``, so are
        the clips already final: only clips that end from now on are announced.
        """
        numbers = [n for n in (clip_number(c.audio_id) for c in clips) if n is not None]
        mark = cls(settled=min(numbers) - 1 if numbers else 0)
        if not include_existing:
            mark.seen = {n for c in clips if _is_final(c) and (n := clip_number(c.audio_id)) is not None}
            mark._advance(clips)
        return mark

    def take(self, clips: list[SpeechClip], *, include_failed: bool) -> list[SpeechClip]:
        """The clips of ``clips`` to announce now (oldest first): final, and not done with before."""
        announce = []
        for clip in sorted(clips, key=lambda c: clip_number(c.audio_id) or 0):
            number = clip_number(clip.audio_id)
            if number is None or number <= self.settled or number in self.seen or not _is_final(clip):
                continue
            self.seen.add(number)
            if include_failed or classify_clip(clip) is ClipOutcome.COMPLETED:
                announce.append(clip)
        self._advance(clips)
        return announce

    def _advance(self, clips: list[SpeechClip]) -> None:
        above = sorted(n for c in clips if (n := clip_number(c.audio_id)) is not None and n > self.settled)
        for number in above:
            if number not in self.seen:
                break
            self.settled = number
            self.seen.discard(number)
        self.seen = {n for n in self.seen if n > self.settled}

    def to_json(self) -> dict[str, Any]:
        """The watermark as the asset state store keeps it."""
        return {"settled": self.settled, "seen": sorted(self.seen)}

    @classmethod
    def from_json(cls, data: object) -> SpeechWatermark | None:
        """A stored watermark, or ``None`` when there is none (or it is not one)."""
        if not isinstance(data, dict) or not isinstance(data.get("settled"), int):
            return None
        seen = data.get("seen")
        return cls(
            settled=data["settled"], seen={n for n in seen if isinstance(n, int)} if isinstance(seen, list) else set()
        )


def _is_final(clip: SpeechClip) -> bool:
    return classify_clip(clip) in (ClipOutcome.COMPLETED, ClipOutcome.FAILED)
