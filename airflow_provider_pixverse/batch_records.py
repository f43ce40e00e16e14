"""What a corpus task and its engine hand each other, as plain JSON: the parts queued and in flight, a run's result.

:class:`QueuedPart` and :class:`FlyingPart` go into the trigger's kwargs (texts and settings, never
a secret); :class:`CorpusRun` comes back as the trigger's event (see
:mod:`airflow_provider_pixverse.batch_driver`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.intent import CreateIntent
from airflow_provider_pixverse._api.speech_request import SpeechRequest

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.errors import PixVerseError

__all__ = ["CorpusRun", "FlyingPart", "QueuedPart"]


@dataclass(frozen=True)
class QueuedPart:
    """A part to create: its reference in the task's state, its request, and when its intent was saved."""

    ref: str
    request: SpeechRequest
    recorded_at: float

    def to_json(self) -> dict[str, Any]:
        """The part as trigger kwargs carry it (its text and settings; no secret)."""
        request = self.request
        return {
            "ref": self.ref,
            "text": request.text,
            "voice_id": request.voice_id,
            "model": request.model,
            "settings": dict(request.settings),
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueuedPart:
        """The part :meth:`to_json` wrote."""
        request = SpeechRequest(str(data["text"]), str(data["voice_id"]), str(data["model"]), dict(data["settings"]))
        return cls(str(data["ref"]), request, float(data["recorded_at"]))

    def intent(self) -> CreateIntent:
        """The intent the task saved for this part (any of the run's accounts may have made its job)."""
        return CreateIntent.of(self.request, email=None, now=self.recorded_at)


@dataclass(frozen=True)
class FlyingPart:
    """A part created and not final yet: its reference, its clip, the account it runs on, its wait's deadline."""

    ref: str
    audio_id: str
    email: str | None
    deadline: float

    def to_json(self) -> list[Any]:
        """The part as trigger kwargs carry it."""
        return [self.ref, self.audio_id, self.email, self.deadline]

    @classmethod
    def from_json(cls, data: list[Any]) -> FlyingPart:
        """The part :meth:`to_json` wrote."""
        ref, audio_id, email, deadline = data
        return cls(str(ref), str(audio_id), None if email is None else str(email), float(deadline))


@dataclass
class CorpusRun:
    """What a run did, as one plain-JSON event (see :meth:`to_event`).

    ``created`` maps each part's reference to the clip its create (or the lost-run search) made;
    ``events`` are the final clips' events (a clip trigger's, one per clip, with ``ref``);
    ``refused`` the parts whose create the API refused (a bad request: no job), with the reason;
    ``fatal`` the error that ended the run at once, if any, and the part it hit; ``in_flight`` what
    is still running; ``windows`` the accounts' windows as the run leaves them.
    """

    created: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    fatal: PixVerseError | None = None
    fatal_ref: str | None = None
    busy: int = 0
    in_flight: list[FlyingPart] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    windows: dict[str, Any] | None = None
    requests: int = 0

    def to_event(self) -> dict[str, Any]:
        """The event a corpus trigger fires, read back by :meth:`from_event`."""
        return {
            "status": "corpus",
            "created": dict(self.created),
            "events": list(self.events),
            "refused": dict(self.refused),
            "fatal": None if self.fatal is None else self.fatal.details(),
            "fatal_type": None if self.fatal is None else type(self.fatal).__name__,
            "fatal_ref": self.fatal_ref,
            "busy": self.busy,
            "in_flight": [part.to_json() for part in self.in_flight],
            "queued": list(self.queued),
            "windows": self.windows,
            "requests": self.requests,
        }
