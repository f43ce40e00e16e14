"""The clip's ``audio_status`` values and what they mean."""

from __future__ import annotations

from enum import IntEnum


class AudioStatus(IntEnum):
    """A documented ``audio_status`` value; values not listed here may appear in future."""

    COMPLETED = 1
    QUEUED = 5
    FAILED = 8
    GENERATING = 10

    @property
    def is_final(self) -> bool:
        """Whether the clip will not change any more."""
        return self in (AudioStatus.COMPLETED, AudioStatus.FAILED)

    @property
    def is_failed(self) -> bool:
        """Whether generation failed (``fail_code`` and ``fail_reason`` say why)."""
        return self is AudioStatus.FAILED

    @classmethod
    def from_value(cls, value: object) -> AudioStatus | None:
        """The status for ``value``, or ``None`` for a value this client does not know."""
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        try:
            return cls(value)
        except ValueError:
            return None
