"""The state of one text-to-speech request on its way: its parts, their clips, what it was expected to cost.

Plain JSON, kept in the task state store (so a task retry resumes it and pays nothing twice) and
passed through a deferral. A part is a span of the normalised text; its ``audio_id`` is set once
created, its ``clip`` once COMPLETED, and its ``intent`` is recorded before its create is sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STATE_VERSION = 1


@dataclass
class PartState:
    """One part of the text: ``text[start:end]`` of the normalised text."""

    index: int
    start: int
    end: int
    audio_id: str | None = None
    intent: dict[str, Any] | None = None
    resubmits: int = 0
    clip: dict[str, Any] | None = None

    def text_of(self, text: str) -> str:
        """The part's text, out of the whole normalised ``text``."""
        return text[self.start : self.end]


@dataclass
class SpeechJob:
    """Every part of one request, its content key, its model's limit and the cost estimate."""

    content_key: str
    max_characters: int
    estimate: dict[str, Any]
    replace: bool = False
    parts: list[PartState] = field(default_factory=list)

    def pending(self) -> list[PartState]:
        """The parts not COMPLETED yet."""
        return [part for part in self.parts if part.clip is None]

    def to_json(self) -> dict[str, Any]:
        """The job as the task state store and the deferral keep it."""
        return {"version": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: object) -> SpeechJob | None:
        """The job a store kept, or ``None`` when there is none (or it is not one this release reads)."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return None
        try:
            parts = [PartState(**part) for part in data["parts"]]
            return cls(
                content_key=str(data["content_key"]),
                max_characters=int(data["max_characters"]),
                estimate=dict(data["estimate"]),
                replace=bool(data.get("replace", False)),
                parts=parts,
            )
        except (KeyError, TypeError, ValueError):
            return None
