"""The documented endpoints: auth, create, the clock, retrieve, list, voices, models."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox


def _wait_final(api: Api, audio_id: str, timeout: float = 5) -> list[int]:
    """Poll until final; the distinct statuses seen, in order."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        clip = api.get(f"/speech/{audio_id}").json()
        if not seen or seen[-1] != clip["audio_status"]:
            seen.append(clip["audio_status"])
        if clip["audio_status_final"]:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"not final after {timeout}s: {seen}")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}], ids=str)
def test_api_refuses_a_missing_or_wrong_token(sandbox: PixVerseSandbox, headers: dict[str, str]) -> None:
    answer = requests.get(sandbox.api_url + "/speech/models", headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Unauthorized", "code": 401}


def test_create_answers_a_queued_clip(api: Api) -> None:
    answer = api.create(text="Hello there", email="me@example.org")
    assert answer.status_code == 200
    clip = answer.json()
    assert clip["audio_id"] == "user:1234-pixverse:me@example.org-speech:100000"
    assert clip["audio_status"] == 5
    assert clip["audio_status_name"] == "QUEUED"
    assert clip["audio_status_final"] is False
    assert clip["prompt"] == "Hello there"
    assert clip["model"] == "speech-2.8-hd"
    assert clip["voice_id"] == "minimax_english_radiant_girl"
    assert api.create().json()["asset_id"] == clip["asset_id"] + 1


def test_create_accepts_json_and_urlencoded(api: Api, sandbox: PixVerseSandbox) -> None:
    url = sandbox.api_url + "/speech/create"
    fields: dict[str, Any] = {"text": "Hi", "voice_id": "eleven_adam", "model": "eleven-v3"}
    assert api.session.post(url, json=fields, timeout=10).json()["model"] == "eleven-v3"
    assert api.session.post(url, data=fields, timeout=10).json()["provider"] == "elevenlabs"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"text": ""}, "text"),
        ({"voice_id": ""}, "voice_id"),
        ({"model": "speech-9"}, "model"),
        ({"model": "eleven-v3", "text": "x" * 5001}, "text"),
        ({"text": "x" * 10_001}, "text"),
        ({"speed": 3}, "speed"),
        ({"model": "eleven-turbo-v2.5", "speed": 0.6}, "speed"),
        ({"volume": 11}, "volume"),
        ({"pitch": 1.5}, "pitch"),
        ({"pitch": -13}, "pitch"),
        ({"emotion": "bored"}, "emotion"),
        ({"model": "eleven-v3", "volume": 5}, "volume"),
        ({"stability": 0.5}, "stability"),
        ({"model": "eleven-v3", "style": 0.5}, "style"),
        ({"model": "eleven-turbo-v2.5", "use_speaker_boost": "true"}, "use_speaker_boost"),
        ({"model": "eleven-multilingual-v2", "similarity_boost": 1.5}, "similarity_boost"),
        ({"model": "eleven-v3", "language_code": "en"}, "language_code"),
        ({"language_code": "xx"}, "language_code"),
        ({"replyUrl": "http://x/" + "a" * 1020}, "replyUrl"),
        ({"replyRef": "r" * 1025}, "replyRef"),
        ({"maxJobs": 9}, "maxJobs"),
        ({"maxJobs": 0}, "maxJobs"),
    ],
)
def test_create_refuses_bad_fields_naming_them(api: Api, fields: dict[str, Any], named: str) -> None:
    answer = api.create(**fields)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 400
    assert named in body["error"]


def test_create_accepts_every_documented_setting(api: Api) -> None:
    minimax = api.create(speed=2, volume=10, pitch=-12, emotion="calm", language_code="en", maxJobs=8)
    assert minimax.status_code == 200
    eleven = api.create(
        model="eleven-multilingual-v2", voice_id="eleven_rachel", speed=0.7, stability=0, similarity_boost=1, style=0.5,
        use_speaker_boost="true", replyUrl="https://example.com/hook", replyRef="ref-1",
    )  # fmt: skip
    assert eleven.status_code == 200


def test_clock_runs_queued_generating_completed(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.set_clock(queued_seconds=0.1, generating_seconds=0.3)
    audio_id = api.create().json()["audio_id"]
    assert _wait_final(api, audio_id) == [5, 10, 1]
    clip = api.get(f"/speech/{audio_id}").json()
    assert clip["status"] == "finish"
    assert clip["audio_status_name"] == "COMPLETED"
    assert clip["audio_status_final"] is True
    asset = clip["asset_id"]
    assert clip["url"] == f"{sandbox.url}/media/pixverse/audio/speech/{asset}.mp3"
    assert clip["name"] == f"PixVerse_Speech_{asset}.mp3"
    assert clip["format"] == "mp3"
    assert clip["sample_rate"] == 44100
    assert clip["file_size"] > 0
    assert clip["created_at"].endswith("Z") and clip["updated_at"].endswith("Z")


def test_fail_next_jobs_ends_failed_with_code_and_reason(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.fail_next_jobs(1, fail_code="E42", fail_reason="provider hiccup")
    failed = api.create().json()["audio_id"]
    fine = api.create().json()["audio_id"]
    assert _wait_final(api, failed)[-1] == 8
    clip = api.get(f"/speech/{failed}").json()
    assert (clip["status"], clip["audio_status_name"]) == ("failed", "FAILED")
    assert (clip["fail_code"], clip["fail_reason"]) == ("E42", "provider hiccup")
    assert "url" not in clip
    assert _wait_final(api, fine)[-1] == 1


def test_percent_encoded_id_is_refused(sandbox: PixVerseSandbox, api: Api) -> None:
    audio_id = sandbox.add_clip(status="COMPLETED")["audio_id"]
    encoded = audio_id.replace(":", "%3A").replace("@", "%40")
    answer = api.get(f"/speech/{encoded}")
    assert answer.status_code == 400
    assert answer.json()["code"] == 400
    assert api.get(f"/speech/{audio_id}").status_code == 200


def test_raw_path_is_recorded_as_sent(sandbox: PixVerseSandbox, api: Api) -> None:
    audio_id = sandbox.add_clip()["audio_id"]
    api.get(f"/speech/{audio_id}")
    assert sandbox.requests[-1].raw_path == f"/v2/pixverse/speech/{audio_id}"
    assert sandbox.requests[-1].headers["authorization"] == f"Bearer {sandbox.token}"


def test_unknown_id_answers_the_documented_404(api: Api) -> None:
    audio_id = "user:1234-pixverse:nobody@example.com-speech:999"
    answer = api.get(f"/speech/{audio_id}")
    assert answer.status_code == 404
    assert answer.json() == {"error": f"Speech {audio_id} not found"}


def test_deleted_clip_answers_404(sandbox: PixVerseSandbox, api: Api) -> None:
    audio_id = sandbox.add_clip()["audio_id"]
    sandbox.delete_clip(audio_id)
    assert api.get(f"/speech/{audio_id}").status_code == 404


def test_voices_shape_and_filters(api: Api) -> None:
    voices = api.get("/speech/voices").json()["voices"]
    radiant = next(v for v in voices if v["voice_id"] == "minimax_english_radiant_girl")
    assert radiant["display_name"] == "Radiant Girl"
    keys = {"voice_id", "display_name", "gender", "age", "accent", "languages", "preview_url"}
    assert keys | {"compatible_models"} <= set(radiant)
    eleven = api.get("/speech/voices", params={"model": "eleven-v3"}).json()["voices"]
    assert eleven and all("eleven-v3" in v["compatible_models"] for v in eleven)
    chinese = api.get("/speech/voices", params={"language": "zh"}).json()["voices"]
    assert [v["voice_id"] for v in chinese] == ["minimax_chinese_gentle_lady"]


def test_models_shape(api: Api) -> None:
    body = api.get("/speech/models", params={"email": "sandbox@example.com"}).json()
    assert body["default_model"] == "speech-2.8-hd"
    groups = {g["provider"]: g["models"] for g in body["provider_groups"]}
    assert set(groups) == {"minimax", "elevenlabs"}
    limits = {m["model"]: m["max_characters"] for models in groups.values() for m in models}
    assert limits == {
        "speech-2.8-hd": 10_000,
        "speech-2.8-turbo": 10_000,
        "eleven-multilingual-v2": 10_000,
        "eleven-v3": 5_000,
        "eleven-turbo-v2.5": 40_000,
    }
    assert all(m["supported_language_codes"] for models in groups.values() for m in models)


def test_seeded_clip_with_a_fixed_or_unknown_status(sandbox: PixVerseSandbox, api: Api) -> None:
    failed = sandbox.add_clip(status="FAILED", fail_code="X", fail_reason="because")
    assert (failed["audio_status"], failed["fail_reason"]) == (8, "because")
    future = sandbox.add_clip(status=7)
    assert (future["audio_status"], future["audio_status_final"]) == (7, False)
    later = sandbox.add_clip(ready_after=0.1)
    assert later["audio_status"] in (5, 10)
    assert _wait_final(api, later["audio_id"])[-1] == 1
    assert sandbox.clip(later["audio_id"])["audio_status"] == 1


def test_finish_clip_over_the_control_surface(sandbox: PixVerseSandbox, api: Api) -> None:
    clip = sandbox.add_clip(ready_after=3600)
    assert sandbox.clip(clip["audio_id"])["audio_status_final"] is False
    answer = requests.post(f"{sandbox.url}/_sandbox/clips/{clip['audio_id']}/finish", timeout=10)
    assert answer.status_code == 200 and answer.json()["audio_status_name"] == "COMPLETED"
    assert api.get(f"/speech/{clip['audio_id']}").json()["audio_status_final"] is True
