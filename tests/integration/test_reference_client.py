"""The client reads each documented body of GET speech/{audio_id}: the clip's fields, or the error's kind."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import pytest
from test_reference_fixtures import load

from airflow_provider_pixverse.exceptions import (
    PixVerseAuthError,
    PixVerseBadRequestError,
    PixVerseError,
    PixVerseNotFoundError,
)
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.models import AudioStatus, SpeechClip

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox


def test_the_documented_200_gives_every_field_typed() -> None:
    documented = load("retrieve-200.json")
    clip = SpeechClip.from_json(documented)
    assert {key: getattr(clip, key) for key in documented} == documented
    assert clip.extra == {}, "a documented field was not recognised"
    assert clip.audio_status_enum is AudioStatus.COMPLETED
    assert (clip.is_final, clip.is_completed, clip.is_failed) == (True, True, False)
    assert clip.to_json() == documented


def test_every_field_of_the_model_is_an_attribute_of_the_clip() -> None:
    attributes = {f.name for f in dataclasses.fields(SpeechClip)}
    assert set(load("clip-model.json")) <= attributes


@pytest.mark.parametrize("row", load("audio-status-values.json"), ids=lambda row: row["audio_status_name"])
def test_each_documented_status_parses(row: dict[str, Any]) -> None:
    clip = SpeechClip.from_json({key: row[key] for key in ("audio_status", "audio_status_name", "audio_status_final")})
    status = clip.audio_status_enum
    assert status is not None and status.name == row["audio_status_name"]
    assert clip.is_final is row["audio_status_final"] is status.is_final
    assert clip.is_failed is (row["audio_status_name"] == "FAILED")
    assert clip.status_label == row["audio_status_name"]


@pytest.mark.parametrize(
    ("fixture", "error_class"),
    [
        ("retrieve-400.json", PixVerseBadRequestError),
        ("retrieve-401.json", PixVerseAuthError),
        ("retrieve-404.json", PixVerseNotFoundError),
    ],
)
def test_each_documented_error_reaches_the_caller_as_its_kind(
    pixverse_sandbox: PixVerseSandbox, fixture: str, error_class: type[PixVerseError]
) -> None:
    """The hook, answered with the documented body and status, raises the matching error at once."""
    documented = load(fixture)
    status = int(fixture.split("-")[1].split(".")[0])
    audio_id = pixverse_sandbox.add_clip()["audio_id"]
    pixverse_sandbox.add_fault("status", code=status, body=json.dumps(documented), count=-1)
    with pytest.raises(error_class) as caught:
        PixVerseHook().get_speech(audio_id)
    assert documented["error"] in str(caught.value)
    assert pixverse_sandbox.request_counts()["get"] == 1, "a documented client error was retried"
