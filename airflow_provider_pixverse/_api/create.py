"""Checking and encoding the fields of ``POST speech/create`` before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError

MINIMAX = "minimax"
ELEVENLABS = "elevenlabs"


@dataclass(frozen=True)
class SpeechModel:
    """What the API is known to accept for one model."""

    name: str
    family: str
    max_characters: int
    speed_range: tuple[float, float]


MODELS: dict[str, SpeechModel] = {
    model.name: model
    for model in (
        SpeechModel("speech-2.8-hd", MINIMAX, 10_000, (0.5, 2.0)),
        SpeechModel("speech-2.8-turbo", MINIMAX, 10_000, (0.5, 2.0)),
        SpeechModel("eleven-multilingual-v2", ELEVENLABS, 10_000, (0.7, 1.2)),
        SpeechModel("eleven-v3", ELEVENLABS, 5_000, (0.7, 1.2)),
        SpeechModel("eleven-turbo-v2.5", ELEVENLABS, 40_000, (0.7, 1.2)),
    )
}
DEFAULT_MODEL = "speech-2.8-hd"
EMOTIONS = ("auto", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "neutral", "calm")

# Python keyword -> form field name, for the fields whose names differ.
_FIELD_NAMES = {"reply_url": "replyUrl", "reply_ref": "replyRef", "max_jobs": "maxJobs"}
_MINIMAX_ONLY = ("volume", "pitch", "emotion")
_ELEVENLABS_ONLY = ("stability", "similarity_boost")
_MULTILINGUAL_V2_ONLY = ("style", "use_speaker_boost")
CREATE_SETTINGS = (
    "model",
    "email",
    "language_code",
    "speed",
    *_MINIMAX_ONLY,
    *_ELEVENLABS_ONLY,
    *_MULTILINGUAL_V2_ONLY,
    "reply_url",
    "reply_ref",
    "max_jobs",
)


def build_create_form(text: str, voice_id: str, **settings: Any) -> dict[str, str]:
    """Check the create fields as the reference documents them; return the form to send.

    ``settings`` are the optional fields in snake case (``reply_url``, ``max_jobs``, ...);
    ``None`` means "not sent". A model this client does not know is passed through
    unchecked, so a model added by the API can be used before this table learns it.
    """
    unknown = sorted(set(settings) - set(CREATE_SETTINGS))
    if unknown:
        raise PixVerseInvalidInputError(f"unknown create setting(s) {unknown}; known: {', '.join(CREATE_SETTINGS)}")
    given = {key: value for key, value in settings.items() if value is not None}
    if not isinstance(text, str) or not text.strip():
        raise PixVerseInvalidInputError(f"text must be a non-empty string, got {text!r}")
    if not isinstance(voice_id, str) or not voice_id.strip():
        raise PixVerseInvalidInputError(f"voice_id must be a non-empty string, got {voice_id!r}")
    model_name = given.get("model", DEFAULT_MODEL)
    model = MODELS.get(model_name)
    if model is not None:
        _check_model_settings(model, text, given)
    for key in ("reply_url", "reply_ref"):
        if key in given and len(str(given[key])) > 1024:
            raise PixVerseInvalidInputError(f"{key} is {len(str(given[key]))} characters; at most 1024")
    if "max_jobs" in given:
        _check_range("max_jobs", given["max_jobs"], 1, 8, integer=True)
    form = {"text": text, "voice_id": voice_id}
    for key, value in given.items():
        form[_FIELD_NAMES.get(key, key)] = _encode(value)
    return form


def _check_model_settings(model: SpeechModel, text: str, given: dict[str, Any]) -> None:
    if len(text) > model.max_characters:
        raise PixVerseInvalidInputError(
            f"text is {len(text)} characters; model {model.name!r} takes at most {model.max_characters}"
        )
    wrong_family: tuple[str, ...] = (
        _ELEVENLABS_ONLY + _MULTILINGUAL_V2_ONLY if model.family == MINIMAX else _MINIMAX_ONLY
    )
    if model.name != "eleven-multilingual-v2" and model.family == ELEVENLABS:
        wrong_family = wrong_family + _MULTILINGUAL_V2_ONLY
    for key in wrong_family:
        if key in given:
            raise PixVerseInvalidInputError(f"setting {key}={given[key]!r} is not accepted by model {model.name!r}")
    if model.name == "eleven-v3" and "language_code" in given:
        raise PixVerseInvalidInputError(
            f"language_code={given['language_code']!r} is not accepted by model 'eleven-v3'"
        )
    if "speed" in given:
        low, high = model.speed_range
        _check_range("speed", given["speed"], low, high, context=f" for model {model.name!r}")
    if "volume" in given:
        _check_range("volume", given["volume"], 0, 10)
    if "pitch" in given:
        _check_range("pitch", given["pitch"], -12, 12, integer=True)
    if "emotion" in given and given["emotion"] not in EMOTIONS:
        raise PixVerseInvalidInputError(f"emotion {given['emotion']!r} is not one of {', '.join(EMOTIONS)}")
    for key in ("stability", "similarity_boost", "style"):
        if key in given:
            _check_range(key, given[key], 0, 1)
    if "use_speaker_boost" in given and not isinstance(given["use_speaker_boost"], bool):
        raise PixVerseInvalidInputError(f"use_speaker_boost must be true or false, got {given['use_speaker_boost']!r}")


def _check_range(key: str, value: Any, low: float, high: float, *, integer: bool = False, context: str = "") -> None:
    numeric = isinstance(value, int) or (isinstance(value, float) and not integer)
    in_range = numeric and not isinstance(value, bool) and low <= value <= high
    if not in_range:
        kind = "an integer" if integer else "a number"
        raise PixVerseInvalidInputError(f"{key}={value!r} must be {kind} from {low} to {high}{context}")


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
