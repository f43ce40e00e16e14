"""The sandbox's clips and their clock. No I/O: the server asks, this answers."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse.sandbox import mp3
from airflow_provider_pixverse.sandbox.catalog import MODELS, voice_language, voice_name
from airflow_provider_pixverse.sandbox.validation import DEFAULT_EMAIL, CreateRequest

if TYPE_CHECKING:
    from collections.abc import Callable

USER_ID = 1234
FIRST_NUMBER = 100_000
FIRST_ASSET_ID = 11_223_344
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


def status_code(status: str | int) -> int:
    """The audio_status for a name such as "COMPLETED" or a number (unknown numbers pass)."""
    if isinstance(status, int):
        return status
    if status.upper() in _BY_NAME:
        return _BY_NAME[status.upper()]
    if status.lstrip("-").isdigit():
        return int(status)
    raise ValueError(f"unknown status {status!r}; known: {', '.join(_BY_NAME)}")


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
    end_status: int = COMPLETED
    fixed: bool = False
    fail_code: str | None = None
    fail_reason: str | None = None
    layout: mp3.Mp3Layout = field(default_factory=lambda: mp3.layout_for_duration(3))
    duration: float = 3
    settings: dict[str, Any] = field(default_factory=dict)
    polls_left: int | None = None

    @property
    def audio_id(self) -> str:
        """The id as the API spells it."""
        return f"user:{USER_ID}-pixverse:{self.email}-speech:{self.number}"

    @property
    def credits(self) -> int:
        """Cost in credits: per character, by model."""
        return max(1, math.ceil(len(self.text) * MODELS[self.model].credits_per_1000 / 1000))

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

    def to_json(self, now: float, media_base: str) -> dict[str, Any]:
        """The clip as GET speech/{audio_id} answers it at monotonic time ``now``."""
        code, since = self.status_at(now)
        name, status, final = _STATUSES.get(code, (f"STATUS_{code}", "unknown", False))
        body: dict[str, Any] = {
            "audio_id": self.audio_id,
            "asset_id": self.asset_id,
            "audio_status": code,
            "status": status,
            "create_mode": "voice",
            "provider": MODELS[self.model].provider,
            "model": self.model,
            "voice_id": self.voice_id,
            "voice_name": voice_name(self.voice_id),
            "language_code": self.language_code or voice_language(self.voice_id),
            "prompt": self.text,
            "credits": self.credits,
            "created_at": _iso(self.created_wall),
            "updated_at": _iso(self.created_wall + since),
        }
        if code == COMPLETED:
            path = f"pixverse/audio/speech/{self.asset_id}.mp3"
            body |= {
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
        elif code == FAILED:
            body["fail_code"] = self.fail_code or DEFAULT_FAIL_CODE
            body["fail_reason"] = self.fail_reason or DEFAULT_FAIL_REASON
        body["audio_status_name"] = name
        body["audio_status_final"] = final
        return body


class ClipNotFound(KeyError):
    """No clip with this id (never made, or deleted)."""


class SandboxState:
    """Every clip, the clock settings and the pending job failures. Thread-safe."""

    def __init__(
        self,
        queued_seconds: float = 0.2,
        generating_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.queued_seconds = queued_seconds
        self.generating_seconds = generating_seconds
        self.media_base = "http://127.0.0.1"
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.RLock()
        self._clips: dict[str, Clip] = {}
        self._by_asset: dict[int, Clip] = {}
        self._next_number = FIRST_NUMBER
        self._next_asset = FIRST_ASSET_ID
        self._fail_next: list[tuple[str | None, str | None]] = []

    def set_clock(self, queued_seconds: float | None = None, generating_seconds: float | None = None) -> None:
        """Change how long clips created from now on stay QUEUED and GENERATING."""
        with self._lock:
            if queued_seconds is not None:
                self.queued_seconds = float(queued_seconds)
            if generating_seconds is not None:
                self.generating_seconds = float(generating_seconds)

    def fail_next_jobs(self, n: int = 1, fail_code: str | None = None, fail_reason: str | None = None) -> None:
        """Make the next ``n`` created clips end FAILED instead of COMPLETED."""
        with self._lock:
            self._fail_next.extend([(fail_code, fail_reason)] * n)

    def create(
        self,
        request: CreateRequest,
        *,
        duration: float | None = None,
        size_bytes: int | None = None,
        status: str | int | None = None,
        ready_after: float | None = None,
        fail_code: str | None = None,
        fail_reason: str | None = None,
    ) -> Clip:
        """Record a new clip; without ``status`` or ``ready_after`` it follows the clock."""
        if duration is None and size_bytes is None:
            duration = max(1, round(len(request.text) / 15))
        layout = mp3.mp3_layout(duration, size_bytes)
        if size_bytes is not None:
            duration = round(layout.duration, 3)
        with self._lock:
            queued, generating = self.queued_seconds, self.generating_seconds
            if ready_after is not None:
                queued = min(queued, ready_after)
                generating = ready_after - queued
            end_status = COMPLETED if status is None else status_code(status)
            if status is None and self._fail_next:
                end_status = FAILED
                fail_code, fail_reason = self._fail_next.pop(0)
            clip = Clip(
                number=self._next_number,
                asset_id=self._next_asset,
                email=request.email or DEFAULT_EMAIL,
                text=request.text,
                voice_id=request.voice_id,
                model=request.model,
                language_code=request.language_code,
                created_wall=self._wall(),
                created_mono=self._clock(),
                queued_seconds=queued,
                generating_seconds=generating,
                end_status=end_status,
                fixed=status is not None and ready_after is None,
                fail_code=fail_code,
                fail_reason=fail_reason,
                layout=layout,
                duration=duration if duration is not None else 3,
                settings=dict(request.settings),
            )
            self._next_number += 1
            self._next_asset += 1
            self._clips[clip.audio_id] = clip
            self._by_asset[clip.asset_id] = clip
            return clip

    def get(self, audio_id: str) -> Clip:
        """The clip, or :class:`ClipNotFound`."""
        with self._lock:
            clip = self._clips.get(audio_id)
            if clip is None:
                raise ClipNotFound(audio_id)
            return clip

    def poll(self, audio_id: str) -> dict[str, Any]:
        """The JSON a GET answers; counts down a pending delete-after-polls."""
        with self._lock:
            clip = self.get(audio_id)
            if clip.polls_left is not None:
                if clip.polls_left <= 0:
                    self.delete(audio_id)
                    raise ClipNotFound(audio_id)
                clip.polls_left -= 1
            return self.clip_json(clip)

    def clip_json(self, clip: Clip) -> dict[str, Any]:
        """The clip's JSON now."""
        return clip.to_json(self._clock(), self.media_base)

    def finish(self, audio_id: str) -> None:
        """End a clip now, with the status it was going to end with."""
        with self._lock:
            clip = self.get(audio_id)
            clip.queued_seconds = clip.generating_seconds = 0.0

    def delete(self, audio_id: str) -> None:
        """Forget a clip (its GET answers 404 from now on)."""
        with self._lock:
            clip = self._clips.pop(audio_id, None)
            if clip is None:
                raise ClipNotFound(audio_id)
            self._by_asset.pop(clip.asset_id, None)

    def delete_after_polls(self, audio_id: str, polls: int) -> None:
        """Let ``polls`` more GETs of the clip answer, then make it disappear."""
        with self._lock:
            self.get(audio_id).polls_left = int(polls)

    def media(self, asset_id: int) -> Clip | None:
        """The completed clip behind a media file, if any."""
        with self._lock:
            clip = self._by_asset.get(asset_id)
        if clip is None or clip.status_at(self._clock())[0] != COMPLETED:
            return None
        return clip

    def listing(self, email: str | None, limit: int, offset: int) -> dict[str, Any]:
        """The GET speech/ answer: clips newest first, one page."""
        with self._lock:
            clips = sorted(self._clips.values(), key=lambda c: c.number, reverse=True)
            if email:
                clips = [c for c in clips if c.email == email]
            page = clips[offset : offset + limit]
            data = [self.clip_json(c) for c in page]
        return {"data": data, "next_offset": offset + len(data), "has_more": offset + len(data) < len(clips)}
