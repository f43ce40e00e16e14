"""Which clips of an account are newly final: the memory of a watcher of new speech.

Clips are numbered in the order they were made (the ``speech:<number>`` of their ids) but end in
any order, so one number is not enough. The watermark keeps ``settled``, the number at or below
which every clip is done with (announced, or final before the watcher started), and ``seen``,
the numbers above it already done with. Both stay small: ``settled`` moves up as soon as the
clips just above it are final, so ``seen`` holds only clips that finished before an older one.

``settled`` moves only over what a listing covered whole: a listing that stopped short of it (more
clips ended than a round lists) announces what it saw (``seen`` grows) and moves nothing, until a
:class:`SpeechSweep` has paged down to ``settled`` across rounds; then :meth:`settle` moves it.
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

    def take(self, clips: list[SpeechClip], *, include_failed: bool, advance: bool = True) -> list[SpeechClip]:
        """The clips of ``clips`` to announce now (oldest first): final, and not done with before.

        :param advance: Whether ``clips`` are every clip numbered above ``settled`` (a listing that
            reached it), so that ``settled`` may move up over them.
        """
        announce = []
        for clip in sorted(clips, key=lambda c: clip_number(c.audio_id) or 0):
            number = clip_number(clip.audio_id)
            if number is None or number <= self.settled or number in self.seen or not _is_final(clip):
                continue
            self.seen.add(number)
            if include_failed or classify_clip(clip) is ClipOutcome.COMPLETED:
                announce.append(clip)
        if advance:
            self._advance(clips)
        return announce

    def settle(self, up_to: int) -> None:
        """Every clip numbered ``up_to`` or lower is done with (a sweep listed them all, final)."""
        self.settled = max(self.settled, up_to)
        self.seen = {n for n in self.seen if n > self.settled}

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


@dataclass
class SpeechSweep:
    """A listing of the clips above a watermark that takes more than one round: where it goes on.

    ``position`` and ``anchor`` are where the last page ended (the clip numbered ``anchor`` stood
    at ``position``); ``top`` is the highest clip number listed since the sweep began, and ``open``
    the lowest number above the watermark of a clip listed not final. Once the sweep reaches the
    watermark, every clip numbered up to ``min(top, open - 1)`` was listed final: :meth:`reach` says so.
    """

    position: int
    anchor: int
    top: int
    open: int | None = None
    rounds: int = 0

    @classmethod
    def begin(cls, last_seen: tuple[int, int], clips: list[SpeechClip], settled: int) -> SpeechSweep:
        """A sweep that goes on after a round's listing, which ended at ``last_seen``."""
        sweep = cls(position=last_seen[0], anchor=last_seen[1], top=last_seen[1])
        sweep.extend(clips, settled)
        return sweep

    def extend(self, clips: list[SpeechClip], settled: int) -> None:
        """Take in the clips of one more stretch of the sweep."""
        for clip in clips:
            number = clip_number(clip.audio_id)
            if number is None or number <= settled:
                continue
            self.top = max(self.top, number)
            if not _is_final(clip):
                self.open = number if self.open is None else min(self.open, number)

    def reach(self) -> int:
        """The watermark's new ``settled`` once the sweep reached it."""
        return self.top if self.open is None else min(self.top, self.open - 1)
