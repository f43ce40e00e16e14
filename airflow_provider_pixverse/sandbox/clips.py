"""One speech clip: its timeline, its audio and its JSON as the API answers it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_provider_pixverse.sandbox import mp3
from airflow_provider_pixverse.sandbox.voices_and_models import MODELS, find_voice, plain_number

USER_ID = 1234
COMPLETED, QUEUED, FAILED, GENERATING = 1, 5, 8, 10
_STATUSES = {
    COMPLETED: ("COMPLETED", "finish", True),
    QUEUED: ("QUEUED", "queued", False),
    FAILED: ("FAILED", "failed", True),
    GENERATING: ("GENERATING", "generating", False),
}
_BY_NAME = {name: code for code, (name, _, _) in _STATUSES.items()}
DEFAULT_FAIL_CODE = "500054"
DEFAULT_FAIL_REASON = "Speech generation failed on the provider, please try again"
CHARACTERS_PER_SECOND = 15  # about the pace of read-aloud English
MIN_SECONDS, MAX_SECONDS = 1.0, 600.0


def status_code(status: str | int) -> int:
    """The audio_status for a name such as "COMPLETED" or a number (unknown numbers pass)."""
    if isinstance(status, int):
        return status
    if status.upper() in _BY_NAME:
        return _BY_NAME[status.upper()]
    if status.lstrip("-").isdigit():
        return int(status)
    raise ValueError(f"unknown status {status!r}; known: {', '.join(_BY_NAME)}")


def speech_seconds(text: str) -> float:
    """How long ``text`` takes to say: 15 characters a second, 1 s to 10 min, in hundredths."""
    return round(min(MAX_SECONDS, max(MIN_SECONDS, len(text) / CHARACTERS_PER_SECOND)), 2)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Clip:
    """One speech clip and its timeline."""

    number: int
    asset_id: int
    email: str
    text: str
    voice_id: str
    model: str
    language_code: str | None
    created_wall: float
    created_mono: float
    queued_seconds: float
    generating_seconds: float
    credits: float = 0
    end_status: int = COMPLETED
    fixed: bool = False
    fail_code: str | None = None
    fail_reason: str | None = None
    layout: mp3.Mp3Layout = field(default_factory=lambda: mp3.layout_for_duration(3))
    settings: dict[str, Any] = field(default_factory=dict)
    polls_left: int | None = None

    @property
    def audio_id(self) -> str:
        """The id as the API spells it."""
        return f"user:{USER_ID}-pixverse:{self.email}-speech:{self.number}"

    @property
    def duration(self) -> float:
        """The audio's length in seconds, as the file decodes (to the millisecond)."""
        return plain_number(round(self.layout.duration, 3))

    def status_at(self, now: float) -> tuple[int, float]:
        """audio_status at monotonic time ``now`` and the seconds after creation it began."""
        if self.fixed:
            return self.end_status, 0.0
        elapsed = now - self.created_mono
        ready = self.queued_seconds + self.generating_seconds
        if elapsed >= ready:
            return self.end_status, ready
        if elapsed >= self.queued_seconds:
            return GENERATING, self.queued_seconds
        return QUEUED, 0.0

    def _media_json(self, media_base: str) -> dict[str, Any]:
        path = f"pixverse/audio/speech/{self.asset_id}.mp3"
        return {
            "path": path,
            "url": f"{media_base}/media/{path}",
            "name": f"PixVerse_Speech_{self.asset_id}.mp3",
            "duration": self.duration,
            "file_size": self.layout.size,
            "format": "mp3",
            "sample_rate": mp3.SAMPLE_RATE,
            "bitrate": mp3.BITRATE,
            "channel": mp3.CHANNELS,
        }

    def to_json(self, now: float, media_base: str) -> dict[str, Any]:
        """The clip as GET speech/{audio_id} answers it at monotonic time ``now``."""
        code, since = self.status_at(now)
        name, status, final = _STATUSES.get(code, (f"STATUS_{code}", "unknown", False))
        voice = find_voice(self.voice_id)
        body: dict[str, Any] = {
            "audio_id": self.audio_id,
            "asset_id": self.asset_id,
            "audio_status": code,
            "status": status,
            "create_mode": "voice",
            "provider": MODELS[self.model].provider,
            "model": self.model,
            "voice_id": self.voice_id,
            "voice_name": voice.display_name if voice else self.voice_id,
            "language_code": self.language_code or (voice.languages[0] if voice else "en"),
            "prompt": self.text,
        }
        if code == COMPLETED:
            body |= self._media_json(media_base)
        body |= {
            "credits": self.credits,
            "created_at": _iso(self.created_wall),
            "updated_at": _iso(self.created_wall + since),
        }
        if code == FAILED:
            body["fail_code"] = self.fail_code or DEFAULT_FAIL_CODE
            body["fail_reason"] = self.fail_reason or DEFAULT_FAIL_REASON
        body["audio_status_name"] = name
        body["audio_status_final"] = final
        return body
