"""What makes two speech requests the same: the normalised text, the voice, the model, the audio settings.

The content key is the SHA-256 of that, as canonical JSON. It is stored with the object a request
produced, so a later run with the same key finds the object instead of paying for it again.

- The text is normalised: Unicode NFC, line ends as ``\\n``, no spaces at the end of a line, no
  blank lines or spaces around the whole. The normalised text is what is sent.
- The model is the API's default when none is given, so "none" and ``speech-2.8-hd`` match.
- Numbers are compared as numbers (``speed=1`` and ``speed=1.0`` match); unset settings are left out.
- What does not change the audio is left out: the account, ``reply_url``, ``reply_ref`` and ``max_jobs``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.create import DEFAULT_MODEL

if TYPE_CHECKING:
    from collections.abc import Mapping

# The create settings the audio depends on (see build_create_form for their checks).
AUDIO_SETTINGS = (
    "language_code",
    "speed",
    "volume",
    "pitch",
    "emotion",
    "stability",
    "similarity_boost",
    "style",
    "use_speaker_boost",
)
KEY_VERSION = 1
_LINE_END = re.compile(r"\r\n?")
# Spaces at the end of a line; matched only from the start of a run, never given back: linear time.
_TRAILING_SPACE = re.compile(r"(?<![^\S\n])[^\S\n]++\n")


def normalise_text(text: str) -> str:
    """``text`` as it is keyed and sent (see the module)."""
    text = unicodedata.normalize("NFC", text)
    text = _LINE_END.sub("\n", text)
    return _TRAILING_SPACE.sub("\n", text).strip()


def audio_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the audio depends on, unset ones left out, numbers in one form."""
    return {key: _canonical(key, settings[key]) for key in AUDIO_SETTINGS if settings.get(key) is not None}


def content_key(text: str, voice_id: str, model: str | None, settings: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of the normalised request."""
    request = {
        "version": KEY_VERSION,
        "text": normalise_text(text),
        "voice_id": voice_id,
        "model": model or DEFAULT_MODEL,
        "settings": audio_settings(settings),
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _canonical(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if key == "pitch" and float(value).is_integer():
        return int(value)
    return float(value)
