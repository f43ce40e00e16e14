"""Shared polling (Airflow 3.3+): the triggers of one account share one listing per interval.

Driven by Airflow's own ``SharedStreamManager``, as the triggerer drives it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import use_connection

from airflow_provider_pixverse._compat import HAS_SHARED_STREAMS
from airflow_provider_pixverse.account_poll import NEEDS
from airflow_provider_pixverse.hooks._transport import SESSIONS as _SESSIONS
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

pytestmark = pytest.mark.skipif(not HAS_SHARED_STREAMS, reason="shared streams arrived in Airflow 3.3")
VOICE = "minimax_english_radiant_girl"
INTERVAL = 0.3


def trigger_for(audio_id: str, *, seconds: float = 30.0, interval: float = INTERVAL) -> PixVerseSpeechTrigger:
    return PixVerseSpeechTrigger(audio_id=audio_id, end_time=time.time() + seconds, poll_interval=interval)


async def run_group(
    triggers: list[PixVerseSpeechTrigger],
    *,
    leave: set[int] = frozenset(),  # type: ignore[assignment]
    received: list[int] | None = None,
) -> list[Any]:
    """Run the triggers as the triggerer would: each subscribes to its group and filters the stream.

    Triggers whose index is in ``leave`` are cancelled (a task cleared) after the first round;
    ``received`` gets, for each trigger, how many snapshots the triggerer handed it.
    """
    from airflow.triggers.shared_stream import SharedStreamManager

    manager = SharedStreamManager()

    async def one(trigger_id: int, trigger: PixVerseSpeechTrigger) -> Any:
        key = trigger.shared_stream_key()
        stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        if received is not None:
            stream = counted(stream, received, trigger_id)
        try:
            async for event in trigger.filter_shared_stream(stream):
                return event.payload
        finally:
            await manager.unsubscribe(trigger_id, key)
        return None

    tasks = [asyncio.create_task(one(i, trigger)) for i, trigger in enumerate(triggers)]
    if leave:
        await asyncio.sleep(INTERVAL * 1.5)
        for index in leave:
            tasks[index].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await manager.stop_all()
    return results


async def counted(stream: Any, received: list[int], index: int) -> Any:
    async for snapshot in stream:
        received[index] += 1
        yield snapshot


def add_clips(sandbox: PixVerseSandbox, n: int, **kwargs: Any) -> list[str]:
    return [sandbox.add_clip(text=f"Clip {i}", voice_id=VOICE, **kwargs)["audio_id"] for i in range(n)]


async def test_one_listing_per_interval_serves_every_waiting_clip(pixverse_sandbox: PixVerseSandbox) -> None:
    n = 120
    pixverse_sandbox.set_clock(queued_seconds=0.5, generating_seconds=1.0)
    ids = add_clips(pixverse_sandbox, n)
    pixverse_sandbox.reset_request_counts()
    started = time.monotonic()
    events = await run_group([trigger_for(audio_id) for audio_id in ids])
    elapsed = time.monotonic() - started
    assert [e["status"] for e in events] == ["success"] * n
    assert {e["audio_id"] for e in events} == set(ids)
    counts = pixverse_sandbox.request_counts()
    assert counts["get"] == 0  # every clip was in the listing: no GET of its own
    rounds = math.ceil(elapsed / INTERVAL) + 1
    pages = math.ceil(n / 50)
    assert 1 <= counts["list"] <= rounds * pages, (counts, rounds)
    assert counts["list"] < n
    assert NEEDS.of(triggers_key(ids[0])) == (frozenset(), None)  # every subscriber left the registry


async def test_a_round_that_changes_nothing_wakes_no_waiting_trigger(pixverse_sandbox: PixVerseSandbox) -> None:
    """Every round lists the account, but a trigger is handed only the rounds in which its clip changed."""
    n = 20
    pixverse_sandbox.set_clock(queued_seconds=0.5, generating_seconds=2.5)  # about ten rounds of waiting
    ids = add_clips(pixverse_sandbox, n)
    pixverse_sandbox.reset_request_counts()
    received = [0] * n
    events = await run_group([trigger_for(audio_id) for audio_id in ids], received=received)
    assert [e["status"] for e in events] == ["success"] * n
    rounds = pixverse_sandbox.request_counts()["list"]  # 20 clips: one page a round
    assert rounds >= 8, rounds
    # The first round (GENERATING or QUEUED), the change to GENERATING, the one to COMPLETED; a round
    # more where the clips changed apart (the sandbox's clock moves between two listings of one page).
    assert max(received) <= 4 < rounds, (received, rounds)


def triggers_key(audio_id: str) -> Any:
    return trigger_for(audio_id).shared_stream_key()


async def test_a_clip_the_listing_does_not_show_is_looked_up_once_per_interval(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.3)
    listed = pixverse_sandbox.add_clip(text="Listed", voice_id=VOICE, status="COMPLETED")["audio_id"]
    hidden, gone = add_clips(pixverse_sandbox, 2)
    # The listing leaves out two clips (listed late, or older than the pages scanned)...
    page = {"data": [pixverse_sandbox.clip(listed)], "next_offset": 1, "has_more": False}
    pixverse_sandbox.add_fault("status", code=200, body=page, count=-1, path_contains="/speech/?")
    # ...and one of them was deleted meanwhile.
    pixverse_sandbox.delete_clip(gone)
    pixverse_sandbox.reset_request_counts()
    events = await run_group([trigger_for(listed), trigger_for(hidden), trigger_for(gone)])
    by_id = {e["audio_id"]: e for e in events}
    assert by_id[listed]["status"] == "success"
    assert by_id[hidden]["status"] == "success"
    assert by_id[gone]["status"] == "error" and by_id[gone]["error_type"] == "PixVerseNotFoundError"
    polls = [r for r in pixverse_sandbox.requests if r.endpoint == "get"]
    assert {hidden, gone} == {r.raw_path.rsplit("/", 1)[-1] for r in polls}
    hidden_polls = sorted(r.at for r in polls if r.raw_path.endswith(hidden))
    assert all(b - a >= INTERVAL * 0.8 for a, b in itertools.pairwise(hidden_polls))


async def test_a_401_ends_every_subscriber_at_once(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    ids = add_clips(pixverse_sandbox, 5)
    pixverse_sandbox.add_fault("status", code=401, count=-1, path_contains="/speech/?")
    pixverse_sandbox.reset_request_counts()
    started = time.monotonic()
    events = await run_group([trigger_for(audio_id) for audio_id in ids])
    assert {(e["status"], e["error_type"]) for e in events} == {("error", "PixVerseAuthError")}
    assert time.monotonic() - started < INTERVAL * 3
    assert pixverse_sandbox.request_counts()["list"] == 1


async def test_rate_limits_pause_the_whole_group(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    ids = add_clips(pixverse_sandbox, 4)
    pixverse_sandbox.add_fault("status", code=429, retry_after="1", count=1, path_contains="/speech/?")
    pixverse_sandbox.reset_request_counts()
    started = time.monotonic()
    events = await run_group([trigger_for(audio_id) for audio_id in ids])
    assert [e["status"] for e in events] == ["success"] * 4
    assert time.monotonic() - started >= INTERVAL + 1.0  # the group waited out the Retry-After together
    assert pixverse_sandbox.request_counts()["list"] == 2


async def test_each_subscriber_keeps_its_own_deadline_and_leaving_disturbs_no_one(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=1.5, generating_seconds=0.5)
    ids = add_clips(pixverse_sandbox, 4)
    triggers = [trigger_for(ids[0], seconds=0.5), trigger_for(ids[1]), trigger_for(ids[2]), trigger_for(ids[3])]
    results = await run_group(triggers, leave={2})
    assert results[0]["status"] == "timeout"
    assert isinstance(results[2], asyncio.CancelledError)
    assert [results[1]["status"], results[3]["status"]] == ["success", "success"]


async def test_groups_are_per_connection_account_and_interval(
    pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, "pixverse_other", host=pixverse_sandbox.url, password=pixverse_sandbox.token)
    mine = pixverse_sandbox.add_clip(text="a", voice_id=VOICE, email="me@example.com")["audio_id"]
    theirs = pixverse_sandbox.add_clip(text="b", voice_id=VOICE, email="them@example.com")["audio_id"]
    keys = {
        trigger_for(mine).shared_stream_key(),
        trigger_for(theirs).shared_stream_key(),
        trigger_for(mine, interval=5).shared_stream_key(),
        PixVerseSpeechTrigger(audio_id=mine, end_time=0, pixverse_conn_id="pixverse_other").shared_stream_key(),
    }
    assert len(keys) == 4
    assert trigger_for(mine).shared_stream_key() == trigger_for(mine, seconds=99).shared_stream_key()


async def test_hooks_of_one_event_loop_share_one_session(pixverse_sandbox: PixVerseSandbox) -> None:
    audio_id = pixverse_sandbox.add_clip(text="a", voice_id=VOICE)["audio_id"]
    hooks = [PixVerseHook() for _ in range(50)]
    await asyncio.gather(*(hook.apoll_speech(audio_id) for hook in hooks))
    assert len({id(hook._async_client) for hook in hooks}) == 1
    assert _SESSIONS.users() == 50
    session = hooks[0]._async_client
    for hook in hooks:
        await hook.aclose()
    assert _SESSIONS.users() == 0 and session is not None and session.closed


async def test_a_page_of_the_longest_clips_serves_every_wait(pixverse_sandbox: PixVerseSandbox) -> None:
    """40 clips of 40,000 CJK characters (about 9.2 MiB a page) ended every wait at the first round."""
    text = "语" * 40_000
    ids = [
        pixverse_sandbox.add_clip(text=text, model="eleven-turbo-v2.5", status="COMPLETED")["audio_id"]
        for _ in range(40)
    ]
    pixverse_sandbox.reset_request_counts()
    events = await run_group([trigger_for(audio_id) for audio_id in ids])
    assert [e["status"] for e in events] == ["success"] * 40
    assert pixverse_sandbox.request_counts()["get"] == 0


async def test_a_round_that_cannot_list_falls_back_to_each_clips_get(pixverse_sandbox: PixVerseSandbox) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.3, generating_seconds=0.3)
    ids = add_clips(pixverse_sandbox, 3)
    pixverse_sandbox.add_fault(
        "status", code=200, body="<html>not a listing</html>", count=-1, path_contains="/speech/?"
    )
    pixverse_sandbox.reset_request_counts()
    events = await run_group([trigger_for(audio_id) for audio_id in ids])
    assert [e["status"] for e in events] == ["success"] * 3
    counts = pixverse_sandbox.request_counts()
    assert counts["get"] >= 3 and counts["list"] >= 1


async def test_an_entry_that_is_not_a_clip_costs_only_the_clips_it_might_have_been(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    listed = pixverse_sandbox.add_clip(text="Listed", voice_id=VOICE, status="COMPLETED")["audio_id"]
    hidden = pixverse_sandbox.add_clip(text="Hidden", voice_id=VOICE, status="COMPLETED")["audio_id"]
    page = {"data": [None, 7, {"audio_id": None}, pixverse_sandbox.clip(listed)], "next_offset": 4, "has_more": False}
    pixverse_sandbox.add_fault("status", code=200, body=page, count=-1, path_contains="/speech/?")
    pixverse_sandbox.reset_request_counts()
    events = await run_group([trigger_for(listed), trigger_for(hidden)])
    assert [e["status"] for e in events] == ["success", "success"]
    polls = [r.raw_path.rsplit("/", 1)[-1] for r in pixverse_sandbox.requests if r.endpoint == "get"]
    assert polls == [hidden]  # the listed clip came from the page; only the one it might have held was looked up
