"""The clip model: every documented field typed, unknown fields kept."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_pixverse._api.errors import PixVerseResponseError
from airflow_provider_pixverse._api.status import AudioStatus

_INT_FIELDS = ("asset_id", "audio_status", "file_size", "sample_rate", "bitrate", "channel")
_NUMBER_FIELDS = ("duration", "credits")


@dataclass(frozen=True)
class SpeechClip:
    """A speech clip as ``GET speech/{audio_id}`` answers it (every field optional)."""

    audio_id: str | None = None
    asset_id: int | None = None
    audio_status: int | None = None
    status: str | None = None
    create_mode: str | None = None
    provider: str | None = None
    model: str | None = None
    voice_id: str | None = None
    voice_name: str | None = None
    language_code: str | None = None
    prompt: str | None = None
    path: str | None = None
    url: str | None = None
    name: str | None = None
    duration: float | None = None
    file_size: int | None = None
    format: str | None = None
    sample_rate: int | None = None
    bitrate: int | None = None
    channel: int | None = None
    credits: float | None = None
    created_at: str | None = None
    updated_at: str | None = None
    fail_code: str | None = None
    fail_reason: str | None = None
    audio_status_name: str | None = None
    audio_status_final: bool | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object, *, audio_id: str | None = None) -> SpeechClip:
        """Build a clip from a decoded JSON answer; refuse anything that is not a clip."""
        if not isinstance(data, dict):
            raise PixVerseResponseError(
                f"expected a JSON object for the clip, got {type(data).__name__}", audio_id=audio_id
            )
        known = _known_fields(cls)
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known and _fits(key, value):
                values[key] = value
            else:
                # Unknown fields, and known ones of an unexpected type, are kept as sent.
                extra[key] = value
        if audio_id is not None and values.get("audio_id") is None:
            values["audio_id"] = audio_id
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The clip as a JSON dict (what the API sent, unknown fields included)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        data = {key: value for key, value in data.items() if value is not None}
        data.update(self.extra)
        return data

    @property
    def audio_status_enum(self) -> AudioStatus | None:
        """The documented status, or ``None`` when the value is unknown or missing."""
        return AudioStatus.from_value(self.audio_status)

    @property
    def status_label(self) -> str:
        """A readable status for messages: the name, else the raw value."""
        known = self.audio_status_enum
        if known is not None:
            return known.name
        return self.audio_status_name or f"unknown audio_status {self.audio_status!r}"

    @property
    def is_final(self) -> bool:
        """Final per ``audio_status_final`` when sent, else per the documented status."""
        if self.audio_status_final is not None:
            return self.audio_status_final
        known = self.audio_status_enum
        return known is not None and known.is_final

    @property
    def is_failed(self) -> bool:
        """Whether the clip ended FAILED."""
        known = self.audio_status_enum
        return known is not None and known.is_failed

    @property
    def is_completed(self) -> bool:
        """Whether the clip is ready to download."""
        return self.audio_status_enum is AudioStatus.COMPLETED


_KNOWN_FIELDS: dict[type, frozenset[str]] = {}


def _known_fields(cls: type[SpeechClip]) -> frozenset[str]:
    """The documented fields of ``cls`` (every field but ``extra``): read once, not once per clip."""
    known = _KNOWN_FIELDS.get(cls)
    if known is None:
        known = _KNOWN_FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls)) - {"extra"}
    return known


def _fits(key: str, value: Any) -> bool:
    if value is None:
        return True
    if key in _INT_FIELDS:
        return isinstance(value, int) and not isinstance(value, bool)
    if key in _NUMBER_FIELDS:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == "audio_status_final":
        return isinstance(value, bool)
    return isinstance(value, str)
