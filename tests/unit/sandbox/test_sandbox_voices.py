"""Create checks its voice_id against the voices on offer and the model family, as GET speech/voices lists them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_pixverse.sandbox.validation import ValidationError, validate_create
from airflow_provider_pixverse.sandbox.voices_and_models import MODELS, VOICES

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox


def test_a_misspelt_voice_is_a_400_naming_it_and_the_voice_meant(api: Api) -> None:
    answer = api.create(voice_id="minimax_english_radiant_gril")
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"error", "code"} and body["code"] == 400
    assert "minimax_english_radiant_gril" in body["error"]
    assert "did you mean minimax_english_radiant_girl" in body["error"]


def test_a_made_up_voice_is_a_400(api: Api, sandbox: PixVerseSandbox) -> None:
    answer = api.create(voice_id="Gril")
    assert answer.status_code == 400
    assert "Gril" in answer.json()["error"]
    assert sandbox.request_counts()["create"] == 1
    assert api.get("/speech/").json()["data"] == []  # nothing was made


@pytest.mark.parametrize(
    ("voice_id", "model"),
    [("eleven_rachel", "speech-2.8-hd"), ("minimax_english_calm_narrator", "eleven-v3")],
)
def test_a_voice_of_the_other_family_is_a_400(api: Api, voice_id: str, model: str) -> None:
    answer = api.create(voice_id=voice_id, model=model)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert voice_id in error and model in error


def test_every_listed_voice_creates_with_every_model_it_lists(api: Api, sandbox: PixVerseSandbox) -> None:
    sandbox.set_max_jobs(None)  # dozens of creates in a row: about the voices, not the account's job limit
    for voice in api.get("/speech/voices").json()["voices"]:
        for model in voice["compatible_models"]:
            answer = api.create(voice_id=voice["voice_id"], model=model)
            assert answer.status_code == 200, (voice["voice_id"], model, answer.text)
            assert answer.json()["voice_name"] == voice["display_name"]


def test_each_model_has_a_voice() -> None:
    for model in MODELS:
        assert any(model in v.compatible_models for v in VOICES), model


def test_seeded_clips_are_checked_too_and_default_to_a_voice_of_their_model(sandbox: PixVerseSandbox) -> None:
    assert sandbox.add_clip(model="eleven-v3")["voice_id"] == "eleven_rachel"
    assert sandbox.add_clip()["voice_id"] == "minimax_english_radiant_girl"
    with pytest.raises(ValidationError, match="voice_id"):
        sandbox.add_clip(voice_id="nobody")
    with pytest.raises(ValidationError, match="eleven_adam"):
        validate_create({"text": "Hi", "voice_id": "eleven_adam", "model": "speech-2.8-turbo"})
