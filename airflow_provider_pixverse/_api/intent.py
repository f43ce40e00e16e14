"""A create intent: what was about to be sent, recorded first, so a lost answer never makes a second job.

The API has no idempotency key. A create whose answer was lost (a read timeout after the
request went out) may still have made a job. So the intent is recorded before sending, and a
later try that finds an intent but no ``audio_id`` looks for that job in the account's listing.

What is matched: the same account, ``prompt`` equal to the text (compared by SHA-256),
the same ``voice_id`` and ``model``, and ``created_at`` no earlier than :data:`CLOCK_SKEW_SECONDS`
before the intent was recorded. Among the account's :data:`SEARCH_DEPTH` newest clips, the
newest match wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip

# The worker's clock and the API's may disagree by this much.
CLOCK_SKEW_SECONDS = 120.0
SEARCH_DEPTH = 100


def text_digest(text: str) -> str:
    """The SHA-256 of a text (UTF-8), in hex."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CreateIntent:
    """A create about to be sent: enough to recognise its job in a listing, as plain JSON."""

    text_sha256: str
    voice_id: str
    model: str
    email: str | None
    recorded_at: float

    def to_json(self) -> dict[str, Any]:
        """The intent as the task state store keeps it."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> CreateIntent | None:
        """The intent a store kept, or ``None`` when there is none (or it is not one)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                text_sha256=str(data["text_sha256"]),
                voice_id=str(data["voice_id"]),
                model=str(data["model"]),
                email=data.get("email"),
                recorded_at=float(data["recorded_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def matches(self, clip: SpeechClip) -> bool:
        """Whether ``clip`` is the job this intent would have made."""
        if clip.prompt is None or text_digest(clip.prompt) != self.text_sha256:
            return False
        if clip.voice_id != self.voice_id or clip.model != self.model:
            return False
        created = _timestamp(clip.created_at)
        return created is not None and created >= self.recorded_at - CLOCK_SKEW_SECONDS


def find_intended(intent: CreateIntent, clips: list[SpeechClip]) -> SpeechClip | None:
    """The newest of ``clips`` that matches ``intent``."""
    matching = [clip for clip in clips if intent.matches(clip)]
    return max(matching, key=lambda clip: _timestamp(clip.created_at) or 0.0, default=None)


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
