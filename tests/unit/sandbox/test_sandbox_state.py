"""The clip clock and the create checks, without a server."""

from __future__ import annotations

import pytest

from airflow_provider_pixverse.sandbox.state import SandboxState
from airflow_provider_pixverse.sandbox.validation import ValidationError, validate_create

VOICE = "minimax_english_radiant_girl"


class FakeClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_status_follows_the_clock_exactly() -> None:
    clock = FakeClock()
    state = SandboxState(queued_seconds=2, generating_seconds=3, clock=clock)
    clip = state.create(validate_create({"text": "Hello", "voice_id": VOICE}))
    statuses = []
    for at in (0, 1.99, 2, 4.99, 5, 100):
        clock.now = 100 + at
        statuses.append(state.clip_json(clip)["audio_status"])
    assert statuses == [5, 5, 10, 10, 1, 1]


def test_clock_change_applies_to_new_clips() -> None:
    clock = FakeClock()
    state = SandboxState(queued_seconds=10, generating_seconds=10, clock=clock)
    old = state.create(validate_create({"text": "a", "voice_id": VOICE}))
    state.set_clock(queued_seconds=0, generating_seconds=0)
    new = state.create(validate_create({"text": "a", "voice_id": VOICE}))
    assert state.clip_json(old)["audio_status"] == 5
    assert state.clip_json(new)["audio_status"] == 1


def test_numbers_and_assets_increase() -> None:
    state = SandboxState()
    first = state.create(validate_create({"text": "a", "voice_id": VOICE, "email": "a@b.c"}))
    second = state.create(validate_create({"text": "a", "voice_id": VOICE}))
    assert first.audio_id == "user:1234-pixverse:a@b.c-speech:100000"
    assert second.audio_id == "user:1234-pixverse:sandbox@example.com-speech:100001"
    assert second.asset_id == first.asset_id + 1


def test_settings_are_typed() -> None:
    request = validate_create(
        {
            "text": "a",
            "voice_id": "eleven_rachel",
            "model": "eleven-multilingual-v2",
            "use_speaker_boost": "false",
            "style": "0.3",
        }
    )
    assert request.settings == {"use_speaker_boost": False, "style": 0.3}
    assert validate_create({"text": "a", "voice_id": VOICE, "pitch": "-3"}).settings == {"pitch": -3}


@pytest.mark.parametrize("email", ["no-at-sign", "a/b@c.d", "a@b.c?x"])
def test_email_that_would_break_the_id_is_refused(email: str) -> None:
    with pytest.raises(ValidationError, match="email"):
        validate_create({"text": "a", "voice_id": VOICE, "email": email})
