from __future__ import annotations

import pytest

from airflow_provider_pixverse._api import AudioStatus, PixVerseResponseError, SpeechClip

COMPLETED_JSON = {
    "audio_id": "user:1-pixverse:a@b.c-speech:7",
    "asset_id": 11223344,
    "audio_status": 1,
    "status": "finish",
    "url": "https://media.pixverse.ai/pixverse/audio/speech/11223344.mp3",
    "name": "PixVerse_Speech_11223344.mp3",
    "duration": 3,
    "file_size": 48000,
    "credits": 1,
    "audio_status_name": "COMPLETED",
    "audio_status_final": True,
    "brand_new_field": {"nested": [1, 2]},
}


@pytest.mark.parametrize(
    ("status", "final", "failed"),
    [
        (AudioStatus.COMPLETED, True, False),
        (AudioStatus.FAILED, True, True),
        (AudioStatus.QUEUED, False, False),
        (AudioStatus.GENERATING, False, False),
    ],
)
def test_status_predicates(status: AudioStatus, final: bool, failed: bool) -> None:
    assert status.is_final is final
    assert status.is_failed is failed


@pytest.mark.parametrize("value", [2, 99, "1", None, True, 1.0])
def test_unknown_status_values_are_none(value: object) -> None:
    assert AudioStatus.from_value(value) is None


def test_clip_keeps_every_field_and_unknown_ones() -> None:
    clip = SpeechClip.from_json(COMPLETED_JSON)
    assert clip.asset_id == 11223344
    assert clip.file_size == 48000
    assert clip.is_final and clip.is_completed and not clip.is_failed
    assert clip.extra == {"brand_new_field": {"nested": [1, 2]}}
    assert clip.to_json() == COMPLETED_JSON


def test_clip_with_unexpected_type_keeps_the_value_in_extra() -> None:
    clip = SpeechClip.from_json({"audio_status": 1, "duration": "3.5"})
    assert clip.duration is None
    assert clip.to_json()["duration"] == "3.5"


def test_unknown_status_is_not_final_unless_the_api_says_so() -> None:
    pending = SpeechClip.from_json({"audio_status": 42, "audio_status_name": "RENDERING"})
    assert not pending.is_final
    assert pending.status_label == "RENDERING"
    final = SpeechClip.from_json({"audio_status": 42, "audio_status_final": True})
    assert final.is_final


def test_failed_clip() -> None:
    clip = SpeechClip.from_json({"audio_status": 8, "fail_code": "E1", "fail_reason": "backend busy"})
    assert clip.is_failed and clip.is_final and not clip.is_completed
    assert clip.status_label == "FAILED"


def test_audio_id_filled_in_from_the_request() -> None:
    clip = SpeechClip.from_json({"audio_status": 5}, audio_id="user:1-pixverse:x-speech:9")
    assert clip.audio_id == "user:1-pixverse:x-speech:9"


@pytest.mark.parametrize("body", [[], "text", 3, None])
def test_a_non_object_is_not_a_clip(body: object) -> None:
    with pytest.raises(PixVerseResponseError, match="audio_id 'id-1'.*expected a JSON object"):
        SpeechClip.from_json(body, audio_id="id-1")
