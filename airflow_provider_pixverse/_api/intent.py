"""A create intent: what was about to be sent, recorded first, so a lost answer never makes a second job.

The API has no idempotency key. A create whose answer was lost (a read timeout after the
request went out) may still have made a job. So the intent is recorded before sending, and a
later try that finds an intent but no ``audio_id`` looks for that job in the account's listing.

Which clip is that job is the request's rule (:meth:`SpeechRequest.matches
<airflow_provider_pixverse._api.speech_request.SpeechRequest.matches>`), among the account's
:data:`SEARCH_DEPTH` newest clips created no earlier than :data:`CLOCK_SKEW_SECONDS` before the
intent was recorded; the newest match wins. A clip that only may be it (the request sets a
setting no clip shows) is never taken: :func:`find_intended` reports it as ``unsure``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.speech_request import Match

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse._api.speech_request import SpeechRequest

# The worker's clock and the API's may disagree by this much.
CLOCK_SKEW_SECONDS = 120.0
SEARCH_DEPTH = 100


def text_digest(text: str) -> str:
    """The SHA-256 of a text (UTF-8), in hex."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CreateIntent:
    """A create about to be sent, as plain JSON: which request, which account, when."""

    text_sha256: str
    voice_id: str
    model: str
    email: str | None
    recorded_at: float
    content_key: str | None = None  # None in intents recorded by earlier releases

    @classmethod
    def of(cls, request: SpeechRequest, *, email: str | None, now: float) -> CreateIntent:
        """The intent to send ``request`` to account ``email`` (``None``: the connection's), as of ``now``."""
        return cls(text_digest(request.text), request.voice_id, request.model, email, now, request.key)

    def to_json(self) -> dict[str, Any]:
        """The intent as the task state store keeps it."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> CreateIntent | None:
        """The intent a store kept, or ``None`` when there is none (or it is not one)."""
        if not isinstance(data, dict):
            return None
        try:
            key = data.get("content_key")
            return cls(
                text_sha256=str(data["text_sha256"]),
                voice_id=str(data["voice_id"]),
                model=str(data["model"]),
                email=data.get("email"),
                recorded_at=float(data["recorded_at"]),
                content_key=key if isinstance(key, str) else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def is_for(self, request: SpeechRequest) -> bool:
        """Whether this intent was recorded for ``request`` (an earlier release's intent: by voice and model)."""
        if self.content_key is not None:
            return self.content_key == request.key
        return self.voice_id == request.voice_id and self.model == request.model


@dataclass(frozen=True)
class IntendedJob:
    """What the listing shows of an intent's job: the clip that is it, or a clip that only may be."""

    found: SpeechClip | None = None
    unsure: SpeechClip | None = None


def find_intended(
    intent: CreateIntent, request: SpeechRequest, clips: list[SpeechClip], *, claimed: frozenset[str] = frozenset()
) -> IntendedJob:
    """The newest of ``clips`` (none of ``claimed``) that ``request`` made since ``intent`` was recorded."""
    since = intent.recorded_at - CLOCK_SKEW_SECONDS
    recent = [
        clip
        for clip in clips
        if clip.audio_id and clip.audio_id not in claimed and (_timestamp(clip.created_at) or -1.0) >= since
    ]
    recent.sort(key=lambda clip: _timestamp(clip.created_at) or 0.0, reverse=True)
    matches = [(request.matches(clip), clip) for clip in recent]
    found = next((clip for match, clip in matches if match is Match.SAME), None)
    unsure = next((clip for match, clip in matches if match is Match.UNSURE), None)
    return IntendedJob(found=found, unsure=None if found is not None else unsure)


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
