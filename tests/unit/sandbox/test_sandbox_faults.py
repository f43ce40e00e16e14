"""Every fault kind, its count, target and path filter."""

from __future__ import annotations

import http.client
import time
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

MODELS = "/speech/models"


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (400, {"error": "Bad request", "code": 400}),
        (401, {"error": "Unauthorized", "code": 401}),
        (402, {"error": "Account has no subscription or subscription expired"}),
        (404, {"error": "Not found"}),
        (500, {"error": "Internal server error", "code": 500}),
        (502, {"error": "Bad gateway", "code": 502}),
        (503, {"error": "Service unavailable", "code": 503}),
        (596, {"error": "The PixVerse account is in an error state", "code": 596}),
    ],
)
def test_status_fault_answers_the_documented_body(
    sandbox: PixVerseSandbox, api: Api, code: int, body: dict[str, object]
) -> None:
    sandbox.add_fault("status", code=code)
    answer = api.get(MODELS)
    assert answer.status_code == code
    assert answer.json() == body
    assert api.get(MODELS).status_code == 200


def test_412_and_422_carry_their_messages(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("status", code=412)
    sandbox.add_fault("status", code=422)
    credits = api.create().json()
    assert credits["code"] == 412 and credits["error"].startswith("Not enough credits")
    moderation = api.create().json()
    assert moderation["code"] == 422 and "moderation" in moderation["error"]


@pytest.mark.parametrize("retry_after", ["2", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_429_carries_retry_after(sandbox: PixVerseSandbox, api: Api, retry_after: str) -> None:
    sandbox.add_fault("status", code=429, retry_after=retry_after)
    answer = api.get(MODELS)
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == retry_after


def test_status_fault_with_a_custom_body(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("status", code=500, body={"error": "custom", "code": 500})
    assert api.get(MODELS).json() == {"error": "custom", "code": 500}


def test_html_fault(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("html", code=502)
    answer = api.get(MODELS)
    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<html>" in answer.text


def test_garbage_fault(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("garbage")
    answer = api.get(MODELS)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()


def test_drop_fault_closes_without_an_answer(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("drop")
    with pytest.raises(requests.ConnectionError):
        api.get(MODELS)
    assert api.get(MODELS).status_code == 200


def test_delay_fault(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("delay", seconds=0.3)
    start = time.monotonic()
    assert api.get(MODELS).status_code == 200
    assert time.monotonic() - start >= 0.3
    with pytest.raises(requests.Timeout):
        sandbox.add_fault("delay", seconds=0.5)
        api.session.get(sandbox.api_url + MODELS, timeout=0.1)


def test_redirect_to_another_host_reaches_it_without_the_token(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("redirect")
    answer = api.get(MODELS)
    assert answer.history and answer.history[0].status_code == 302
    last = sandbox.requests[-1]
    assert last.host_header == f"localhost:{sandbox.port}"
    assert "Authorization" not in last.headers  # requests drops it across hosts
    assert answer.status_code == 401


def test_redirect_to_a_given_location(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("redirect", location="http://127.0.0.1:1/elsewhere")
    answer = api.get(MODELS, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "http://127.0.0.1:1/elsewhere"


def _raw_get(sandbox: PixVerseSandbox, path: str) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    connection.request("GET", path)
    return connection.getresponse(), connection


def test_truncate_fault_sends_full_length_then_closes(sandbox: PixVerseSandbox) -> None:
    clip = sandbox.add_clip(status="COMPLETED", duration=5)
    sandbox.add_fault("truncate", after_bytes=1000)
    answer, connection = _raw_get(sandbox, f"/media/pixverse/audio/speech/{clip['asset_id']}.mp3")
    assert int(answer.headers["Content-Length"]) == clip["file_size"]
    with pytest.raises(http.client.IncompleteRead) as caught:
        answer.read()
    assert len(caught.value.partial) == 1000
    connection.close()


def test_wrong_length_fault_announces_more_or_less(sandbox: PixVerseSandbox) -> None:
    clip = sandbox.add_clip(status="COMPLETED")
    path = f"/media/pixverse/audio/speech/{clip['asset_id']}.mp3"
    sandbox.add_fault("wrong_length", delta=500)
    answer, connection = _raw_get(sandbox, path)
    assert int(answer.headers["Content-Length"]) == clip["file_size"] + 500
    with pytest.raises(http.client.IncompleteRead):
        answer.read()
    connection.close()
    sandbox.add_fault("wrong_length", delta=-500)
    answer, connection = _raw_get(sandbox, path)
    assert len(answer.read()) == clip["file_size"] - 500
    connection.close()


@pytest.mark.parametrize(("kind", "content_type"), [("media_html", "text/html"), ("media_json", "application/json")])
def test_media_body_faults(sandbox: PixVerseSandbox, kind: str, content_type: str) -> None:
    clip = sandbox.add_clip(status="COMPLETED")
    sandbox.add_fault(kind)
    answer = requests.get(clip["url"], timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith(content_type)
    assert not answer.content.startswith((b"ID3", b"\xff"))


def test_media_faults_leave_the_api_alone(sandbox: PixVerseSandbox, api: Api) -> None:
    clip = sandbox.add_clip(status="COMPLETED")
    sandbox.add_fault("media_html")
    assert api.get(f"/speech/{clip['audio_id']}").json()["audio_id"] == clip["audio_id"]
    assert requests.get(clip["url"], timeout=10).headers["Content-Type"].startswith("text/html")


def test_target_media_status_fault(sandbox: PixVerseSandbox, api: Api) -> None:
    clip = sandbox.add_clip(status="COMPLETED")
    sandbox.add_fault("status", code=503, target="media")
    assert api.get(MODELS).status_code == 200
    assert requests.get(clip["url"], timeout=10).status_code == 503


def test_target_any_and_count(sandbox: PixVerseSandbox, api: Api) -> None:
    clip = sandbox.add_clip(status="COMPLETED")
    sandbox.add_fault("status", code=500, target="any", count=2)
    assert api.get(MODELS).status_code == 500
    assert requests.get(clip["url"], timeout=10).status_code == 500
    assert api.get(MODELS).status_code == 200


def test_forever_until_cleared(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("status", code=503, count=-1)
    assert [api.get(MODELS).status_code for _ in range(3)] == [503, 503, 503]
    sandbox.clear_faults()
    assert api.get(MODELS).status_code == 200


def test_path_contains_filters(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.add_fault("status", code=429, path_contains="/speech/create")
    assert api.get(MODELS).status_code == 200
    assert api.create().status_code == 429
    assert api.create().status_code == 200


def test_delete_after_polls(sandbox: PixVerseSandbox, api: Api) -> None:
    audio_id = sandbox.add_clip()["audio_id"]
    sandbox.add_fault("delete_after_polls", audio_id=audio_id, polls=2)
    assert [api.get(f"/speech/{audio_id}").status_code for _ in range(4)] == [200, 200, 404, 404]


def test_unknown_fault_kind_is_refused(sandbox: PixVerseSandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sandbox.add_fault("explode")
