"""One speech request, normalised: what is sent, what is keyed, and whether a listed clip is it.

This is the one rule for "the same speech". The content key (stored with each object written),
``reuse_from`` (a finished clip of the account taken instead of paying again) and the recovery of
a create whose answer was lost all ask a :class:`SpeechRequest`.

A clip, as the API lists or retrieves it, shows four things of the request that made it:
:data:`LISTED_FIELDS` (its ``prompt``, ``voice_id``, ``model`` and ``language_code``). Every other
setting that changes the audio (:data:`HIDDEN_SETTINGS`: ``speed``, ``volume``, ``pitch``,
``emotion``, ``stability``, ``similarity_boost``, ``style``, ``use_speaker_boost``) is not on the
clip, so :meth:`SpeechRequest.matches` never says "the same" for a request that sets one of them:
it says :attr:`Match.UNSURE`, and the caller does something safe instead of adopting the clip.

The text is normalised as :func:`~airflow_provider_pixverse._api.content.normalise_text` says, and
a byte order mark (U+FEFF) at its start is dropped: an editor's mark, never spoken, so a text
saved with one and the same text without it are the same speech, and the mark is never sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.content import AUDIO_SETTINGS, audio_settings, content_key, normalise_text
from airflow_provider_pixverse._api.create import DEFAULT_MODEL

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip

_BOM = "\ufeff"

# What a clip shows of the request that made it.
LISTED_FIELDS = ("prompt", "voice_id", "model", "language_code")
# The settings that change the audio and that no clip shows.
HIDDEN_SETTINGS = tuple(name for name in AUDIO_SETTINGS if name != "language_code")


class Match(enum.Enum):
    """Whether a clip was made by a request."""

    SAME = "same"  # every field the clip shows agrees, and the request sets nothing the clip cannot show
    DIFFERENT = "different"  # a field the clip shows differs
    UNSURE = "unsure"  # what the clip shows agrees, but the request sets a setting it does not show


@dataclass(frozen=True)
class SpeechRequest:
    """A request as it is sent and keyed: the normalised text, the voice, the model and the audio settings.

    Build one with :meth:`of`. ``settings`` holds the settings the audio depends on (unset ones left
    out, numbers in one form); the account, ``reply_url``, ``reply_ref`` and ``max_jobs`` do not
    change the audio and are not part of it.
    """

    text: str
    voice_id: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, text: str, voice_id: str, model: str | None = None, **settings: Any) -> SpeechRequest:
        """The request for ``text`` (normalised) with ``voice_id``, ``model`` (default: the API's) and ``settings``."""
        return cls(request_text(text), voice_id, model or DEFAULT_MODEL, audio_settings(settings))

    @property
    def key(self) -> str:
        """The content key: the SHA-256 (hex) of the request as canonical JSON."""
        return content_key(self.text, self.voice_id, self.model, self.settings)

    @property
    def language_code(self) -> str | None:
        """The language asked for, if any."""
        value = self.settings.get("language_code")
        return value if isinstance(value, str) else None

    @property
    def hidden_settings(self) -> tuple[str, ...]:
        """The settings this request sets that no clip shows."""
        return tuple(name for name in HIDDEN_SETTINGS if name in self.settings)

    def with_text(self, text: str) -> SpeechRequest:
        """The same voice, model and settings for another text (a part of a long one)."""
        return SpeechRequest(request_text(text), self.voice_id, self.model, dict(self.settings))

    def matches(self, clip: SpeechClip) -> Match:
        """Whether ``clip`` was made by this request, as far as a clip can show it (see the module)."""
        if clip.prompt is None or request_text(clip.prompt) != self.text:
            return Match.DIFFERENT
        if clip.voice_id != self.voice_id or (clip.model or DEFAULT_MODEL) != self.model:
            return Match.DIFFERENT
        if self.language_code is not None and clip.language_code != self.language_code:
            return Match.DIFFERENT
        return Match.UNSURE if self.hidden_settings else Match.SAME


def request_text(text: str) -> str:
    """``text`` as a request sends and keys it: normalised, without a byte order mark at its start."""
    normalised = normalise_text(text)
    return normalise_text(normalised.removeprefix(_BOM)) if normalised.startswith(_BOM) else normalised
