"""The /_sandbox control surface, as a sandbox in another process is driven."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox


def _control(sandbox: PixVerseSandbox, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{sandbox.url}/_sandbox{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def test_faults_over_http(sandbox: PixVerseSandbox, api: Api) -> None:
    answer = _control(sandbox, "POST", "/faults", json={"kind": "status", "code": 503, "count": -1})
    assert answer.status_code == 200
    assert answer.json()["faults"][0]["code"] == 503
    assert api.get("/speech/models").status_code == 503
    assert _control(sandbox, "DELETE", "/faults").status_code == 200
    assert api.get("/speech/models").status_code == 200


def test_bad_fault_is_a_400(sandbox: PixVerseSandbox) -> None:
    assert _control(sandbox, "POST", "/faults", json={"kind": "explode"}).status_code == 400


def test_clips_over_http(sandbox: PixVerseSandbox, api: Api) -> None:
    clip = _control(sandbox, "POST", "/clips", json={"status": "COMPLETED", "text": "Hi", "duration": 2}).json()
    assert clip["audio_status"] == 1 and clip["duration"] == 2
    assert api.get(f"/speech/{clip['audio_id']}").status_code == 200
    assert _control(sandbox, "GET", f"/clips/{clip['audio_id']}").json()["asset_id"] == clip["asset_id"]
    assert _control(sandbox, "DELETE", f"/clips/{clip['audio_id']}").status_code == 200
    assert api.get(f"/speech/{clip['audio_id']}").status_code == 404
    assert _control(sandbox, "DELETE", f"/clips/{clip['audio_id']}").status_code == 404


def test_clock_and_fail_next_over_http(sandbox: PixVerseSandbox, api: Api) -> None:
    clock = _control(sandbox, "POST", "/clock", json={"queued_seconds": 0, "generating_seconds": 0}).json()
    assert clock == {"queued_seconds": 0, "generating_seconds": 0}
    _control(sandbox, "POST", "/fail_next", json={"n": 1, "fail_code": "F1", "fail_reason": "nope"})
    time.sleep(0.01)
    failed = api.create().json()
    assert (failed["audio_status"], failed["fail_code"]) == (8, "F1")
    assert api.create().json()["audio_status"] == 1


def test_requests_and_stats_over_http(sandbox: PixVerseSandbox, api: Api) -> None:
    api.get("/speech/voices?model=eleven-v3")
    listed = _control(sandbox, "GET", "/requests").json()
    api_requests = [r for r in listed if r["kind"] == "api"]
    assert api_requests[0]["raw_path"] == "/v2/pixverse/speech/voices?model=eleven-v3"
    assert api_requests[0]["headers"]["authorization"] == f"Bearer {sandbox.token}"
    assert api_requests[0]["status"] == 200
    stats = _control(sandbox, "GET", "/stats").json()
    assert stats["api"] == 1 and stats["control"] == 2
    assert _control(sandbox, "DELETE", "/requests").status_code == 200
    assert sandbox.requests == []  # the DELETE itself was recorded before the clearing
    api.get("/speech/models")
    sandbox.clear_requests()
    assert sandbox.requests == []
    assert sandbox.stats()["api"] == 2  # counts survive clearing


def test_control_needs_no_token_and_is_not_faulted(sandbox: PixVerseSandbox) -> None:
    sandbox.add_fault("status", code=500, target="any", count=-1)
    assert _control(sandbox, "GET", "/stats").status_code == 200
    assert _control(sandbox, "GET", "/nothing").status_code == 404
