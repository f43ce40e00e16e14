"""Listings over the wire: pages of the longest clips fit, larger pages shrink, list_speech is bounded."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from hostile_server import SeenRequest, hostile_server, http_answer
from pixverse_testing import use_connection

from airflow_provider_pixverse._api.request import MAX_ANSWER_BYTES
from airflow_provider_pixverse.exceptions import PixVerseResponseError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.sandbox.state import DEFAULT_EMAIL

if TYPE_CHECKING:
    import socket

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

# The longest documented text (eleven-turbo-v2.5), in CJK: 6 bytes a character once JSON-escaped.
LONGEST = "语" * 40_000


def add_longest(sandbox: PixVerseSandbox, n: int) -> list[str]:
    return [sandbox.add_clip(text=LONGEST, model="eleven-turbo-v2.5", status="COMPLETED")["audio_id"] for _ in range(n)]


def list_limits(sandbox: PixVerseSandbox) -> list[int]:
    return [int(r.raw_path.split("limit=")[1].split("&")[0]) for r in sandbox.requests if r.endpoint == "list"]


async def test_the_longest_clips_fit_the_answer_cap_alone_and_in_a_default_page(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    """40 clips of 40,000 CJK characters made a page over 8 MiB: every wait of the account failed."""
    ids = add_longest(pixverse_sandbox, 40)
    one = json.dumps(pixverse_sandbox.clip(ids[0])).encode()
    assert 240_000 < len(one) < MAX_ANSWER_BYTES // 50  # a default page of 50 such clips fits too
    hook = PixVerseHook()
    try:
        clips = await hook.alist_speech_for(DEFAULT_EMAIL, frozenset(ids))
        assert {c.audio_id for c in clips} == set(ids)
        assert (await hook.apoll_speech(ids[0])).prompt == LONGEST
    finally:
        await hook.aclose()
    assert list_limits(pixverse_sandbox) == [100]  # 40 of them fill one page of 100, under the cap


def test_a_page_over_the_cap_is_asked_for_again_smaller(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection's larger page of the longest clips (70 x 241 KB, about 16.1 MiB) shrinks to fit."""
    extra = {"list_page_size": 100}
    use_connection(
        monkeypatch, "pixverse_pages", host=pixverse_sandbox.url, password=pixverse_sandbox.token, extra=extra
    )
    small = [pixverse_sandbox.add_clip(text=f"Short {i}")["audio_id"] for i in range(40)]
    big = add_longest(pixverse_sandbox, 70)
    pixverse_sandbox.clear_requests()
    clips = PixVerseHook("pixverse_pages").list_speech()
    assert [c.audio_id for c in clips] == [*reversed(big), *reversed(small)]  # newest first, none lost or twice
    limits = list_limits(pixverse_sandbox)
    assert limits[:2] == [100, 50]  # over the cap: halved, the same offset asked again
    assert max(limits[2:]) == 100  # short clips: back to the configured size


def test_a_page_of_one_still_over_the_cap_fails_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(request: SeenRequest, sock: socket.socket) -> None:
        headers = {"Content-Length": str(MAX_ANSWER_BYTES + 1), "Content-Type": "application/json"}
        sock.sendall(http_answer(200, b"", headers))

    with hostile_server(answer) as server:
        use_connection(monkeypatch, "pixverse_hostile", host=server.url, password="t0ken-for-tests", extra={})
        with pytest.raises(PixVerseResponseError, match="byte limit"):
            PixVerseHook("pixverse_hostile").list_speech()
    limits = [int(r.path.split("limit=")[1].split("&")[0]) for r in server.requests]
    assert limits == [100, 50, 25, 12, 6, 3, 1]


def test_list_speech_stops_at_its_default_cap_and_says_more_exist(
    pixverse_sandbox: PixVerseSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without max_items a listing whose has_more stays true went on for ever."""
    for _ in range(21):
        pixverse_sandbox.add_clip(text="x")
    pixverse_sandbox.add_fault(
        "status", code=200, body=endless_page(pixverse_sandbox), count=-1, path_contains="/speech/?"
    )
    clips = PixVerseHook().list_speech()
    assert len(clips) == 1000
    assert "Listed the first 1000 clips of the account; it holds more" in capsys.readouterr().out
    assert len(PixVerseHook().list_speech(max_items=60)) == 60


def endless_page(sandbox: PixVerseSandbox) -> dict[str, Any]:
    """A page that always says more follow (the same 21 clips, has_more true for ever)."""
    listing = sandbox.state.listing(DEFAULT_EMAIL, 50, 0)
    return {"data": listing["data"], "next_offset": 50, "has_more": True}


def stingy_api(total: int, *, most: int, refuse_over: int) -> Any:
    """A listing of ``total`` clips: at most ``most`` a page, and a 400 to a limit over ``refuse_over``."""
    ids = [f"user:1-pixverse:{DEFAULT_EMAIL}-speech:{5000 - n}" for n in range(total)]

    def answer(request: SeenRequest, sock: socket.socket) -> None:
        query = dict(part.split("=", 1) for part in request.path.split("?", 1)[1].split("&"))
        limit, offset = int(query["limit"]), int(query["offset"])
        if limit > refuse_over:
            body = json.dumps({"error": f"limit {limit} is over {refuse_over}", "code": 400}).encode()
            sock.sendall(http_answer(400, body, {"Content-Type": "application/json"}))
            return
        page = ids[offset : offset + min(limit, most)]
        end = offset + len(page)
        data = [{"audio_id": audio_id, "audio_status": 1} for audio_id in page]
        body = json.dumps({"data": data, "next_offset": end, "has_more": end < total}).encode()
        sock.sendall(http_answer(200, body, {"Content-Type": "application/json"}))

    answer.ids = ids  # type: ignore[attr-defined]
    return answer


async def test_pages_follow_what_the_api_sends_and_fall_back_when_it_refuses_a_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 a page is asked for; a 400 falls back to 50; a page cut to 30 while more follow sets 30, in waves too."""
    api = stingy_api(200, most=30, refuse_over=50)
    with hostile_server(api) as server:
        use_connection(monkeypatch, "pixverse_stingy", host=server.url, password="t0ken-for-tests", extra={})
        hook = PixVerseHook("pixverse_stingy")
        try:
            listing = await hook.alist_account(DEFAULT_EMAIL, frozenset(api.ids))
            again = await hook.alist_account(DEFAULT_EMAIL, frozenset(api.ids))  # the sizer is the account's
        finally:
            await hook.aclose()
        asked = [(int(q["offset"]), int(q["limit"])) for q in map(query_of, server.requests)]
        sync = PixVerseHook("pixverse_stingy").list_speech()
        sync_asked = [int(query_of(r)["limit"]) for r in server.requests[len(asked) :]]
    for got in (listing.result(), again.result(), sync):
        assert [c.audio_id for c in got] == api.ids  # in order, none lost, none twice
    assert asked[:2] == [(0, 100), (0, 50)]  # refused: the documented page; cut to 30: the API's most
    assert all(limit == 30 for _, limit in asked[2:])
    assert {offset for offset, _ in asked[2:]} >= set(range(30, 200, 30))
    assert sync_asked[:2] == [100, 50] and set(sync_asked[2:]) == {30}


def query_of(request: SeenRequest) -> dict[str, str]:
    return dict(part.split("=", 1) for part in request.path.split("?", 1)[1].split("&"))
