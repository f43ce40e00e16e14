"""The models and voices the sandbox offers (GET speech/models, GET speech/voices)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "speech-2.8-hd"
MINIMAX = "minimax"
ELEVENLABS = "elevenlabs"

_MINIMAX_LANGUAGES = ("en", "zh", "ja", "ko", "es", "fr", "de", "pt", "it", "ru", "ar", "hi")
_ELEVEN_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "hi", "ja", "ko", "zh", "nl", "sv", "tr")
EMOTIONS = ("auto", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "neutral", "calm")
UNIT_CHARACTERS = 50  # billing unit: characters, rounded up to whole units


def plain_number(value: float) -> float:
    """``value`` as an int when it is whole (JSON shows 1, not 1.0)."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class SpeechModel:
    """One speech model and what it accepts."""

    model: str
    display_name: str
    provider: str
    max_characters: int
    unit_credits: float
    language_codes: tuple[str, ...]

    def credits_for(self, text: str) -> float:
        """What a create of ``text`` costs: whole units of 50 characters, rounded up."""
        return plain_number(math.ceil(len(text) / UNIT_CHARACTERS) * self.unit_credits)

    def to_json(self) -> dict[str, Any]:
        """The model as GET speech/models lists it."""
        body: dict[str, Any] = {
            "model": self.model,
            "display_name": self.display_name,
            "provider": self.provider,
            "max_characters": self.max_characters,
            "supported_language_codes": list(self.language_codes),
            "credit_formula": {
                "unit_characters": UNIT_CHARACTERS,
                "unit_credits": plain_number(self.unit_credits),
                "round_up": True,
            },
        }
        if self.provider == MINIMAX:
            body["emotions"] = list(EMOTIONS)
        return body


MODELS: dict[str, SpeechModel] = {
    m.model: m
    for m in (
        # 20 credits per 1,000 characters (1 a unit of 50) for HD, multilingual and v3; 10 for turbo.
        SpeechModel("speech-2.8-hd", "Speech 2.8 HD", MINIMAX, 10_000, 1, _MINIMAX_LANGUAGES),
        SpeechModel("speech-2.8-turbo", "Speech 2.8 Turbo", MINIMAX, 10_000, 0.5, _MINIMAX_LANGUAGES),
        SpeechModel("eleven-multilingual-v2", "Eleven Multilingual v2", ELEVENLABS, 10_000, 1, _ELEVEN_LANGUAGES),
        SpeechModel("eleven-v3", "Eleven v3", ELEVENLABS, 5_000, 1, _ELEVEN_LANGUAGES),
        SpeechModel("eleven-turbo-v2.5", "Eleven Turbo v2.5", ELEVENLABS, 40_000, 0.5, _ELEVEN_LANGUAGES),
    )
}


def models_json() -> dict[str, Any]:
    """The GET speech/models answer."""
    groups = [
        {"provider": provider, "models": [m.to_json() for m in MODELS.values() if m.provider == provider]}
        for provider in (MINIMAX, ELEVENLABS)
    ]
    return {"default_model": DEFAULT_MODEL, "provider_groups": groups}


def _models_of(provider: str) -> list[str]:
    return [m.model for m in MODELS.values() if m.provider == provider]


@dataclass(frozen=True)
class Voice:
    """One voice."""

    voice_id: str
    display_name: str
    gender: str
    age: str
    accent: str
    languages: tuple[str, ...]
    provider: str

    @property
    def compatible_models(self) -> list[str]:
        """The models that speak with this voice: those of its provider."""
        return _models_of(self.provider)

    def to_json(self) -> dict[str, Any]:
        """The voice as GET speech/voices lists it."""
        return {
            "voice_id": self.voice_id,
            "display_name": self.display_name,
            "gender": self.gender,
            "age": self.age,
            "accent": self.accent,
            "languages": list(self.languages),
            "preview_url": f"https://media.pixverse.ai/pixverse/audio/voice/{self.voice_id}.mp3",
            "compatible_models": self.compatible_models,
        }


VOICES: tuple[Voice, ...] = (
    Voice("minimax_english_radiant_girl", "Radiant Girl", "female", "young", "american", ("en",), MINIMAX),
    Voice("minimax_english_calm_narrator", "Calm Narrator", "male", "middle_aged", "british", ("en",), MINIMAX),
    Voice("minimax_chinese_gentle_lady", "Gentle Lady", "female", "adult", "mandarin", ("zh",), MINIMAX),
    Voice("minimax_spanish_warm_host", "Warm Host", "male", "adult", "castilian", ("es",), MINIMAX),
    Voice("eleven_rachel", "Rachel", "female", "young", "american", ("en",), ELEVENLABS),
    Voice("eleven_adam", "Adam", "male", "middle_aged", "american", ("en",), ELEVENLABS),
    Voice("eleven_charlotte", "Charlotte", "female", "young", "swedish", ("en", "sv", "fr", "de"), ELEVENLABS),
)
_VOICE_BY_ID = {v.voice_id: v for v in VOICES}


def find_voice(voice_id: str) -> Voice | None:
    """The voice with this id, or None."""
    return _VOICE_BY_ID.get(voice_id)


def first_voice(model: str) -> Voice:
    """The first voice on offer that ``model`` can speak with."""
    return next(v for v in VOICES if v.provider == MODELS[model].provider)


def voices_json(model: str | None = None, language: str | None = None) -> dict[str, Any]:
    """The GET speech/voices answer, filtered by model and language when given."""
    voices = [v.to_json() for v in VOICES]
    if model:
        voices = [v for v in voices if model in v["compatible_models"]]
    if language:
        prefix = language.lower().split("-")[0]
        voices = [v for v in voices if prefix in v["languages"]]
    return {"voices": voices}
