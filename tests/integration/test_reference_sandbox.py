"""The sandbox answers GET speech/{audio_id} as the documentation prints it, field by field."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
import requests
from test_reference_fixtures import json_type, load, placeholder_pattern

from airflow_provider_pixverse.sandbox import PixVerseSandbox

if TYPE_CHECKING:
    from collections.abc import Iterator

STATUSES = load("audio-status-values.json")
MODEL = load("clip-model.json")
# Fields of the 200 example that do not depend on the account, the clip's number or the clock.
SAME_VALUES = (
    "audio_status", "status", "create_mode", "provider", "model", "voice_id", "voice_name", "language_code",
    "prompt", "duration", "credits", "audio_status_name", "audio_status_final",
)  # fmt: skip
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def sandbox() -> Iterator[PixVerseSandbox]:
    with PixVerseSandbox() as running:
        yield running


def get(sandbox: PixVerseSandbox, audio_id: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or sandbox.token}"}
    answer = requests.get(f"{sandbox.api_url}/speech/{audio_id}", headers=headers, timeout=10)
    assert answer.headers["Content-Type"].startswith("application/json")
    return answer


def check_model_types(body: dict[str, Any]) -> None:
    """Every field is one of the Model's, of the Model's type."""
    assert set(body) <= set(MODEL), f"fields the Model does not have: {set(body) - set(MODEL)}"
    for key, value in body.items():
        assert json_type(value) == MODEL[key], f"{key}: {value!r} is not a {MODEL[key]}"


def test_200_has_the_documented_fields_types_order_and_values(sandbox: PixVerseSandbox) -> None:
    documented = load("retrieve-200.json")
    seeded = sandbox.add_clip(
        text=documented["prompt"], voice_id=documented["voice_id"], model=documented["model"], status="COMPLETED"
    )
    answer = get(sandbox, seeded["audio_id"])
    assert answer.status_code == 200
    body = answer.json()
    assert set(documented) <= set(body), f"documented fields missing: {set(documented) - set(body)}"
    check_model_types(body)
    for key, value in documented.items():
        assert json_type(body[key]) == json_type(value), key
    assert [key for key in body if key in documented] == list(documented), "not in the documented order"
    assert {key: body[key] for key in SAME_VALUES} == {key: documented[key] for key in SAME_VALUES}
    assert placeholder_pattern(documented["audio_id"]).fullmatch(body["audio_id"])
    asset = body["asset_id"]
    assert body["url"].endswith(f"/pixverse/audio/speech/{asset}.mp3")
    assert documented["url"].endswith(f"/pixverse/audio/speech/{documented['asset_id']}.mp3")
    assert body["name"] == documented["name"].replace(str(documented["asset_id"]), str(asset))
    assert TIMESTAMP.fullmatch(body["created_at"]) and TIMESTAMP.fullmatch(body["updated_at"])
    assert TIMESTAMP.fullmatch(documented["created_at"])


@pytest.mark.parametrize("row", STATUSES, ids=lambda row: row["audio_status_name"])
def test_each_documented_status_answers_its_value_name_and_final_flag(
    sandbox: PixVerseSandbox, row: dict[str, Any]
) -> None:
    audio_id = sandbox.add_clip(status=row["audio_status"])["audio_id"]
    body = get(sandbox, audio_id).json()
    check_model_types(body)
    assert (body["audio_status"], body["audio_status_name"], body["audio_status_final"]) == (
        row["audio_status"],
        row["audio_status_name"],
        row["audio_status_final"],
    )
    # fail_code and fail_reason are "present only when audio_status is 8 (FAILED)"; url is the finished clip's.
    assert ("fail_code" in body, "fail_reason" in body) == (row["audio_status"] == 8,) * 2
    assert ("url" in body) == (row["audio_status"] == 1)


def test_400_has_the_documented_shape(sandbox: PixVerseSandbox) -> None:
    documented = load("retrieve-400.json")
    audio_id = sandbox.add_clip()["audio_id"]
    answer = get(sandbox, audio_id.replace(":", "%3A"))  # the id percent-encoded: refused
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == set(documented)
    assert {k: json_type(v) for k, v in body.items()} == {k: json_type(v) for k, v in documented.items()}
    assert body["code"] == documented["code"]


def test_401_is_the_documented_body(sandbox: PixVerseSandbox) -> None:
    audio_id = sandbox.add_clip()["audio_id"]
    answer = get(sandbox, audio_id, token="not-the-token")
    assert answer.status_code == 401
    assert answer.json() == load("retrieve-401.json")


def test_404_is_the_documented_body_without_a_code(sandbox: PixVerseSandbox) -> None:
    documented = load("retrieve-404.json")
    audio_id = sandbox.add_clip()["audio_id"]
    sandbox.delete_clip(audio_id)
    answer = get(sandbox, audio_id)
    assert answer.status_code == 404
    body = answer.json()
    assert set(body) == set(documented) == {"error"}
    assert placeholder_pattern(documented["error"]).fullmatch(body["error"])
    assert body["error"] == f"Speech {audio_id} not found"
