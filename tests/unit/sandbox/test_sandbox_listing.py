"""GET speech/?email=&limit=&offset=: every clip of one account, in flight too, newest first, in pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_pixverse.sandbox.api import LIST_MAX_LIMIT

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

EMAIL = "sandbox@example.com"


def page(api: Api, **params: Any) -> dict[str, Any]:
    answer = api.get("/speech/", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"data", "next_offset", "has_more"}
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [clip["audio_id"] for clip in body["data"]]


def test_pages_newest_first_with_next_offset_and_has_more(sandbox: PixVerseSandbox, api: Api) -> None:
    made = [sandbox.add_clip(text=f"clip {i}")["audio_id"] for i in range(5)]
    first = page(api, limit=2, email=EMAIL)
    assert ids(first) == made[::-1][:2]
    assert (first["next_offset"], first["has_more"]) == (2, True)
    middle = page(api, limit=2, offset=first["next_offset"], email=EMAIL)
    assert ids(middle) == made[::-1][2:4]
    last = page(api, limit=2, offset=4, email=EMAIL)
    assert ids(last) == [made[0]]
    # As documented: next_offset is offset + limit, even on the last, short page.
    assert (last["next_offset"], last["has_more"]) == (6, False)
    assert page(api, offset=99, email=EMAIL) == {"data": [], "next_offset": 149, "has_more": False}


def test_clips_in_flight_are_listed_with_their_status(sandbox: PixVerseSandbox, api: Api) -> None:
    done = sandbox.add_clip(status="COMPLETED")["audio_id"]
    failed = sandbox.add_clip(status="FAILED")["audio_id"]
    generating = sandbox.add_clip(status="GENERATING")["audio_id"]
    queued = sandbox.add_clip(status="QUEUED")["audio_id"]
    listed = {c["audio_id"]: c for c in page(api)["data"]}
    assert list(listed) == [queued, generating, failed, done]
    states = {a: (c["audio_status"], c["audio_status_name"], c["audio_status_final"]) for a, c in listed.items()}
    assert states == {
        queued: (5, "QUEUED", False),
        generating: (10, "GENERATING", False),
        failed: (8, "FAILED", True),
        done: (1, "COMPLETED", True),
    }
    # Each item is the clip as GET speech/{audio_id} answers it.
    assert listed[done] == api.get(f"/speech/{done}").json()


def test_limit_defaults_to_50(sandbox: PixVerseSandbox, api: Api) -> None:
    for i in range(53):
        sandbox.add_clip(text=f"clip {i}")
    first = page(api)
    assert len(first["data"]) == 50
    assert (first["next_offset"], first["has_more"]) == (50, True)
    assert len(page(api, offset=50)["data"]) == 3


def test_a_huge_limit_is_cut_down(sandbox: PixVerseSandbox, api: Api) -> None:
    for i in range(LIST_MAX_LIMIT + 5):
        sandbox.add_clip(text=f"clip {i}")
    body = page(api, limit=10**9)
    assert len(body["data"]) == LIST_MAX_LIMIT
    assert (body["next_offset"], body["has_more"]) == (LIST_MAX_LIMIT, True)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "x"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"offset": "ten"}, "offset"),
        ({"offset": "-1"}, "offset"),
    ],
)
def test_bad_paging_values_are_a_400_naming_them(api: Api, params: dict[str, str], named: str) -> None:
    answer = api.get("/speech/", params=params)
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == 400 and named in body["error"] and params[named] in body["error"]


def test_the_list_is_per_account(sandbox: PixVerseSandbox, api: Api) -> None:
    mine = sandbox.add_clip(email=EMAIL)["audio_id"]
    assert ids(page(api)) == [mine]  # one account: email may be left out
    theirs = sandbox.add_clip(email="other@example.com")["audio_id"]
    assert ids(page(api, email=EMAIL)) == [mine]
    assert ids(page(api, email="other@example.com")) == [theirs]
    assert ids(page(api, email="nobody@example.com")) == []
    answer = api.get("/speech/")
    assert answer.status_code == 400  # two accounts: which one?
    assert "email" in answer.json()["error"]


def test_list_calls_and_gets_by_id_are_counted_apart(sandbox: PixVerseSandbox, api: Api) -> None:
    audio_id = sandbox.add_clip()["audio_id"]
    assert sandbox.request_counts() == dict.fromkeys(
        ("create", "get", "list", "voices", "models", "media", "control", "other"), 0
    )
    page(api)
    page(api, offset=50)
    for _ in range(3):
        api.get(f"/speech/{audio_id}")
    api.get("/speech/user:1234-pixverse:a@b.c-speech:1")  # a 404 is a GET by id all the same
    api.create()
    api.get("/speech/voices")
    api.get("/speech/models")
    sandbox.add_fault("status", code=503)
    api.get("/speech/")  # answered by a fault: still a list call
    counts = sandbox.request_counts()
    assert (counts["list"], counts["get"], counts["create"], counts["voices"], counts["models"]) == (3, 4, 1, 1, 1)
    sandbox.clear_requests()
    assert sandbox.request_counts()["get"] == 4  # the counts outlive the request log
    sandbox.reset_request_counts()
    assert sum(sandbox.request_counts().values()) == 0
