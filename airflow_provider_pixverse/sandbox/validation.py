"""Checks on the fields of POST speech/create, as the reference documents them."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse.sandbox.voices_and_models import (
    DEFAULT_MODEL,
    ELEVENLABS,
    EMOTIONS,
    MINIMAX,
    MODELS,
    VOICES,
    find_voice,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_EMAIL = "sandbox@example.com"
_EMAIL = re.compile(r"[^@\s/?#%\\]+@[^@\s/?#%\\]+")
_SPEED = {MINIMAX: (0.5, 2.0), ELEVENLABS: (0.7, 1.2)}
_MINIMAX_ONLY = ("volume", "pitch", "emotion")
_ELEVEN_ONLY = ("stability", "similarity_boost", "style", "use_speaker_boost")
_MULTILINGUAL_ONLY = ("style", "use_speaker_boost")


class ValidationError(ValueError):
    """A create request the API would refuse with 400."""


@dataclass(frozen=True)
class CreateRequest:
    """A create request that passed every check."""

    text: str
    voice_id: str
    model: str
    email: str
    language_code: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _present(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name)
    return value is not None and value != ""


def _number(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> float:
    """A number in [low, high], or a ValidationError naming the field and value."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if integer and number != int(number):
            raise ValueError
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise ValidationError(f"Parameter {name} ({value!r}) must be {kind}") from None
    if not low <= number <= high:
        raise ValidationError(f"Parameter {name} ({value}) must be between {low:g} and {high:g}")
    return int(number) if integer else number


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationError(f"Parameter {name} ({value!r}) must be true or false")


def _family_settings(fields: Mapping[str, Any], model: str, provider: str) -> dict[str, Any]:
    """Settings of one model family, refusing those of the other family."""
    settings: dict[str, Any] = {}
    foreign = _ELEVEN_ONLY if provider == MINIMAX else _MINIMAX_ONLY
    for name in foreign:
        if _present(fields, name):
            raise ValidationError(f"Parameter {name} ({fields[name]}) is not supported by model {model}")
    if provider == MINIMAX:
        if _present(fields, "volume"):
            settings["volume"] = _number("volume", fields["volume"], 0, 10)
        if _present(fields, "pitch"):
            settings["pitch"] = _number("pitch", fields["pitch"], -12, 12, integer=True)
        if _present(fields, "emotion"):
            if fields["emotion"] not in EMOTIONS:
                raise ValidationError(f"Parameter emotion ({fields['emotion']}) must be one of {', '.join(EMOTIONS)}")
            settings["emotion"] = fields["emotion"]
        return settings
    for name in _MULTILINGUAL_ONLY:
        if _present(fields, name) and model != "eleven-multilingual-v2":
            raise ValidationError(f"Parameter {name} ({fields[name]}) is supported only by eleven-multilingual-v2")
    for name in ("stability", "similarity_boost", "style"):
        if _present(fields, name):
            settings[name] = _number(name, fields[name], 0, 1)
    if _present(fields, "use_speaker_boost"):
        settings["use_speaker_boost"] = _boolean("use_speaker_boost", fields["use_speaker_boost"])
    return settings


def _check_voice(voice_id: str, model: str) -> None:
    """Refuse a voice the sandbox does not offer, or one of the other model family."""
    voice = find_voice(voice_id)
    if voice is None:
        close = difflib.get_close_matches(voice_id, [v.voice_id for v in VOICES], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValidationError(f"Parameter voice_id ({voice_id}) is not a known voice{hint}: see GET speech/voices")
    if model not in voice.compatible_models:
        raise ValidationError(
            f"Parameter voice_id ({voice_id}) does not work with model {model}; "
            f"its models: {', '.join(voice.compatible_models)}"
        )


def _common_settings(fields: Mapping[str, Any], provider: str) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if _present(fields, "speed"):
        settings["speed"] = _number("speed", fields["speed"], *_SPEED[provider])
    for name in ("replyUrl", "replyRef"):
        if _present(fields, name):
            value = str(fields[name])
            if len(value) > 1024:
                raise ValidationError(f"Parameter {name} ({value[:40]}...) must be at most 1024 characters")
            settings[name] = value
    if _present(fields, "maxJobs"):
        settings["maxJobs"] = _number("maxJobs", fields["maxJobs"], 1, 8, integer=True)
    return settings


def validate_create(fields: Mapping[str, Any]) -> CreateRequest:
    """Check the create fields; raise :class:`ValidationError` naming the first bad one."""
    model = str(fields.get("model") or DEFAULT_MODEL)
    spec = MODELS.get(model)
    if spec is None:
        raise ValidationError(f"Parameter model ({model}) must be one of {', '.join(MODELS)}")
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Parameter text is required")
    if len(text) > spec.max_characters:
        raise ValidationError(
            f"Parameter text ({len(text)} characters) exceeds {spec.max_characters} characters for {model}"
        )
    voice_id = fields.get("voice_id")
    if not isinstance(voice_id, str) or not voice_id.strip():
        raise ValidationError("Parameter voice_id is required")
    _check_voice(voice_id, model)
    email = str(fields.get("email") or DEFAULT_EMAIL)
    if not _EMAIL.fullmatch(email):
        raise ValidationError(f"Parameter email ({email}) is not a valid email")
    language = fields.get("language_code") or None
    if language is not None:
        if model == "eleven-v3":
            raise ValidationError(f"Parameter language_code ({language}) is not supported by model {model}")
        if language not in spec.language_codes:
            raise ValidationError(f"Parameter language_code ({language}) is not supported by model {model}")
    settings = _common_settings(fields, spec.provider) | _family_settings(fields, model, spec.provider)
    return CreateRequest(text, voice_id, model, email, language, settings)
