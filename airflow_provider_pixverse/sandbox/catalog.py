"""The models and voices the sandbox offers (GET speech/models, GET speech/voices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "speech-2.8-hd"
MINIMAX = "minimax"
ELEVENLABS = "elevenlabs"

_MINIMAX_LANGUAGES = ("en", "zh", "ja", "ko", "es", "fr", "de", "pt", "it", "ru", "ar", "hi")
_ELEVEN_LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "hi", "ja", "ko", "zh", "nl", "sv", "tr")


@dataclass(frozen=True)
class SpeechModel:
    """One speech model and what it accepts."""

    model: str
    display_name: str
    provider: str
    max_characters: int
    credits_per_1000: int
    language_codes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The model as GET speech/models lists it."""
        return {
            "model": self.model,
            "display_name": self.display_name,
            "max_characters": self.max_characters,
            "supported_language_codes": list(self.language_codes),
        }


MODELS: dict[str, SpeechModel] = {
    m.model: m
    for m in (
        SpeechModel("speech-2.8-hd", "Speech 2.8 HD", MINIMAX, 10_000, 20, _MINIMAX_LANGUAGES),
        SpeechModel("speech-2.8-turbo", "Speech 2.8 Turbo", MINIMAX, 10_000, 10, _MINIMAX_LANGUAGES),
        SpeechModel("eleven-multilingual-v2", "Eleven Multilingual v2", ELEVENLABS, 10_000, 20, _ELEVEN_LANGUAGES),
        SpeechModel("eleven-v3", "Eleven v3", ELEVENLABS, 5_000, 20, _ELEVEN_LANGUAGES),
        SpeechModel("eleven-turbo-v2.5", "Eleven Turbo v2.5", ELEVENLABS, 40_000, 10, _ELEVEN_LANGUAGES),
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
            "compatible_models": _models_of(self.provider),
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


def voice_name(voice_id: str) -> str:
    """Display name of a voice, or a readable name made from an unknown id."""
    voice = _VOICE_BY_ID.get(voice_id)
    if voice is not None:
        return voice.display_name
    return voice_id.rsplit("_", 1)[-1].replace("-", " ").title() or voice_id


def voice_language(voice_id: str) -> str:
    """The first language of a voice ("en" for unknown voices)."""
    voice = _VOICE_BY_ID.get(voice_id)
    return voice.languages[0] if voice is not None else "en"


def voices_json(model: str | None = None, language: str | None = None) -> dict[str, Any]:
    """The GET speech/voices answer, filtered by model and language when given."""
    voices = [v.to_json() for v in VOICES]
    if model:
        voices = [v for v in voices if model in v["compatible_models"]]
    if language:
        prefix = language.lower().split("-")[0]
        voices = [v for v in voices if prefix in v["languages"]]
    return {"voices": voices}
