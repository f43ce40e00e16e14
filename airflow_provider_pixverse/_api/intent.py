"""A create intent: what was about to be sent, recorded first, so a lost answer never makes a second job.

The API has no idempotency key. A create whose answer was lost (a read timeout after the
request went out) may still have made a job. So the intent is recorded before sending, and a
later try that finds an intent but no ``audio_id`` looks for that job in the account's listing.

Which clip is that job is the request's rule (:meth:`SpeechRequest.matches
<airflow_provider_pixverse._api.speech_request.SpeechRequest.matches>`), among the account's
:data:`SEARCH_DEPTH` newest clips created no earlier than :data:`CLOCK_SKEW_SECONDS` before the
intent was recorded; the newest match wins. A clip that only may be it (the request sets a
setting no clip shows) is never taken: :func:`find_intended` reports it as ``unsure``. A clip that
ended FAILED is never taken either: it is no speech to keep, and it may be the very clip a
re-submitted part replaces (whose intent is recorded seconds after it), so the create is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseLostAnswerError
from airflow_provider_pixverse._api.speech_request import Match
from airflow_provider_pixverse._api.waiting import ClipOutcome, classify_clip

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse._api.speech_request import SpeechRequest

# The worker's clock and the API's may disagree by this much.
CLOCK_SKEW_SECONDS = 120.0
SEARCH_DEPTH = 100


def search_depth(lost: int) -> int:
    """How many of an account's newest clips to look through for ``lost`` jobs: each, and :data:`SEARCH_DEPTH` more."""
    return max(lost, 0) + SEARCH_DEPTH


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
        if clip.audio_id
        and clip.audio_id not in claimed
        and (_timestamp(clip.created_at) or -1.0) >= since
        and classify_clip(clip) is not ClipOutcome.FAILED
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


def match_lost_jobs(
    lost: Sequence[tuple[CreateIntent, SpeechRequest]],
    clips: list[SpeechClip],
    *,
    claimed: frozenset[str] = frozenset(),
    on_lost_answer: str = "fail",
    log: Any = None,
) -> list[str | None]:
    """The job each lost create made, in order: its clip's audio_id, or ``None`` (there is none: create it).

    The one rule for every operator and trigger that finds lost answers: each intent takes the
    newest clip :func:`find_intended` says is its job, none taken twice (nor any of ``claimed``).
    A clip that only may be it raises :class:`PixVerseLostAnswerError` naming the clip, unless
    ``on_lost_answer="create"`` (then ``None``: created anew, perhaps paying twice).
    """
    taken = set(claimed)
    found: list[str | None] = []
    for intent, request in lost:
        audio_id = _match_one(intent, request, clips, frozenset(taken), on_lost_answer, log)
        if audio_id is not None:
            taken.add(audio_id)
        found.append(audio_id)
    return found


def _match_one(
    intent: CreateIntent,
    request: SpeechRequest,
    clips: list[SpeechClip],
    claimed: frozenset[str],
    on_lost_answer: str,
    log: Any,
) -> str | None:
    if not intent.is_for(request):
        _say(log, "info", "An earlier try meant to create another request (the text or settings changed): creating")
        return None
    job = find_intended(intent, request, clips, claimed=claimed)
    if job.found is not None and job.found.audio_id:
        _say(log, "warning", f"An earlier try created {job.found.audio_id} but never got the answer; resuming it")
        return job.found.audio_id
    if job.unsure is not None:
        hidden = ", ".join(request.hidden_settings)
        message = (
            f"an earlier try sent a create whose answer was lost; the account's clip {job.unsure.audio_id} has "
            f"this text, voice and model, but a clip does not show {hidden}, so it may be another request's"
        )
        if on_lost_answer == "create":
            _say(log, "warning", f"{message}: creating anew (on_lost_answer='create'; this may pay twice)")
            return None
        raise PixVerseLostAnswerError(
            f"{message}. Nothing was sent. Check that clip; to create anew (perhaps paying twice), "
            "set on_lost_answer='create' or clear the task's state"
        )
    _say(log, "info", "An earlier try meant to create a clip, and the account shows none like it: creating")
    return None


def _say(log: Any, level: str, message: str) -> None:
    if log is not None:
        getattr(log, level)("%s", message)
