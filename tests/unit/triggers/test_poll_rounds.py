"""The shared poll's rounds keep to the clock: the schedule, on a fake clock that time moves on only when waited on.

Every API call of the hook below takes ``LATENCY`` seconds of the fake clock (waited before the real
call to the sandbox): calls made at once overlap, calls made one after another add up.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import FakeClock, use_connection

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import PixVerseResponseError
from airflow_provider_pixverse._compat import HAS_SHARED_STREAMS
from airflow_provider_pixverse.account_poll import (
    NEEDS,
    AccountSnapshot,
    GroupNeeds,
    ListedClips,
    RoundsWorthSending,
    account_snapshots,
)
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.sandbox.state import DEFAULT_EMAIL
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.request import ApiRequest, ApiSettings
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

INTERVAL = 10.0
_GROUPS = itertools.count()


class OverlappingClock(FakeClock):
    """A fake clock on which waits begun in the same turn of the event loop overlap instead of adding up."""

    async def asleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.waits.append(seconds)
        until = self.now + seconds
        await asyncio.sleep(0)  # the other calls of the same wave begin their waits meanwhile
        self.now = max(self.now, until)


class SlowApiHook(PixVerseHook):
    """A hook whose every API call takes ``latency`` seconds of its clock; the list pages it asked for are kept."""

    def __init__(self, *args: Any, latency: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.latency = latency
        self.pages: list[tuple[float, int]] = []  # (when asked, offset)

    async def _asend(self, settings: ApiSettings, request: ApiRequest, *, sizes: list[int] | None = None) -> Any:
        if request.path == "/speech/":
            self.pages.append((self.clock.time(), int(request.params["offset"])))
        await self.clock.asleep(self.latency)
        return await super()._asend(settings, request, sizes=sizes)


def rounds_of(pages: list[tuple[float, int]]) -> list[list[tuple[float, int]]]:
    """The pages asked for, by round (each round begins at offset 0)."""
    rounds: list[list[tuple[float, int]]] = []
    for at, offset in pages:
        if offset == 0:
            rounds.append([])
        rounds[-1].append((at, offset))
    return rounds


async def run_rounds(hook: SlowApiHook, ids: list[str], rounds: int) -> list[AccountSnapshot]:
    group = ("rounds-test", next(_GROUPS))
    seen = []
    for audio_id in ids:
        NEEDS.want(group, audio_id)
    snapshots = account_snapshots(hook, group, account=DEFAULT_EMAIL, poll_interval=INTERVAL)
    try:
        for _ in range(rounds):
            snapshot = await anext(snapshots)
            assert set(ids) <= set(snapshot.clips), "every waiting clip is listed each round"
            seen.append(snapshot)
    finally:
        await snapshots.aclose()
        for audio_id in ids:
            NEEDS.unwant(group, audio_id)
    return seen


@pytest.fixture
def forty_clips(pixverse_sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """40 clips still generating, listed in pages of 10 (four pages a round)."""
    pixverse_sandbox.set_clock(queued_seconds=3600, generating_seconds=3600)
    return [pixverse_sandbox.add_clip(text=f"Clip {i}")["audio_id"] for i in range(40)]


def slow_hook(sandbox: PixVerseSandbox, monkeypatch: pytest.MonkeyPatch, latency: float, **extra: Any) -> SlowApiHook:
    use_connection(
        monkeypatch, "pixverse_rounds", host=sandbox.url, password=sandbox.token, extra={"list_page_size": 10, **extra}
    )
    return SlowApiHook("pixverse_rounds", clock=OverlappingClock(now=1000.0), latency=latency)


async def test_a_round_begins_every_interval_from_the_last_ones_start_not_its_end(
    pixverse_sandbox: PixVerseSandbox, forty_clips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds began an interval after the previous one ended: with latency, every (interval + listing)."""
    hook = slow_hook(pixverse_sandbox, monkeypatch, latency=1.0)
    await run_rounds(hook, forty_clips, rounds=3)
    starts = [round_[0][0] for round_ in rounds_of(hook.pages)]
    assert starts == pytest.approx([1010.0, 1020.0, 1030.0])


async def test_the_pages_of_a_round_are_fetched_in_waves_of_list_concurrency(
    pixverse_sandbox: PixVerseSandbox, forty_clips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page alone (it shows where the clips begin), then ``list_concurrency`` pages at once."""
    hook = slow_hook(pixverse_sandbox, monkeypatch, latency=1.0, list_concurrency=2)
    await run_rounds(hook, forty_clips, rounds=2)
    first, second = rounds_of(hook.pages)
    assert first == [(1010.0, 0), (1011.0, 10), (1011.0, 20), (1012.0, 30)]  # whole seconds: exact in floats
    assert second == [(1020.0, 0), (1021.0, 10), (1021.0, 20), (1022.0, 30)]

    default = slow_hook(pixverse_sandbox, monkeypatch, latency=1.0)  # list_concurrency 4: the rest at once
    await run_rounds(default, forty_clips, rounds=1)
    assert rounds_of(default.pages)[0] == [(1010.0, 0), (1011.0, 10), (1011.0, 20), (1011.0, 30)]


async def test_a_round_longer_than_an_interval_is_followed_at_once_and_said_never_two_at_once(
    pixverse_sandbox: PixVerseSandbox,
    forty_clips: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hook = slow_hook(pixverse_sandbox, monkeypatch, latency=3.0, list_concurrency=1)  # 4 pages: 12 s a round
    await run_rounds(hook, forty_clips, rounds=3)
    rounds = rounds_of(hook.pages)
    assert [r[0][0] for r in rounds] == pytest.approx([1010.0, 1022.0, 1034.0])
    for earlier, later in itertools.pairwise(rounds):
        assert later[0][0] >= earlier[-1][0] + hook.latency  # the last page of a round came back first
    out = capsys.readouterr().out
    assert "took 12.0 s (4 pages), longer than the 10.0 s poll interval: the next round starts at once" in out


async def test_a_round_keeps_its_clips_as_the_api_sent_them_and_builds_one_when_looked_up(
    pixverse_sandbox: PixVerseSandbox, forty_clips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round of 10,000 clips built 10,000 clip objects, which the collector walked at every full pass."""
    hook = slow_hook(pixverse_sandbox, monkeypatch, latency=0.0)
    (snapshot,) = await run_rounds(hook, forty_clips, rounds=1)
    clips = snapshot.clips
    assert isinstance(clips, ListedClips) and len(clips) == 40 and set(clips) == set(forty_clips)
    raw = clips.raw(forty_clips[0])
    assert isinstance(raw, dict) and raw["audio_id"] == forty_clips[0]
    assert clips[forty_clips[0]] == clips.get(forty_clips[0]) == SpeechClip.from_json(raw)
    assert clips.get("user:1-pixverse:x@y.z-speech:1") is None and "nope" not in clips
    gc.collect()
    assert not gc.is_tracked(raw), "a clip as sent (plain JSON values) is nothing the collector walks"


@pytest.mark.skipif(not HAS_SHARED_STREAMS, reason="the group key is that of Airflow 3.3's shared streams")
def test_a_trigger_builds_its_group_key_once() -> None:
    """The key was built again (the account parsed out of the id) at every subscription and look-up."""
    trigger = PixVerseSpeechTrigger(audio_id=f"user:1-pixverse:{DEFAULT_EMAIL}-speech:7", end_time=time.time() + 60)
    calls = []
    account = trigger.account
    trigger.account = lambda: calls.append(1) or account()  # type: ignore[method-assign]
    keys = {trigger.shared_stream_key() for _ in range(5)}
    assert len(keys) == 1 and calls == [1]


def test_only_rounds_with_news_for_the_waiting_triggers_are_sent() -> None:
    """Unchanged rounds are held back; news, a new wait, a clip not listed, a failure, a watcher, a heartbeat go."""
    needs, group, rounds = GroupNeeds(), ("news-test", 1), RoundsWorthSending(heartbeat=60.0)
    a, b = (f"user:1-pixverse:{DEFAULT_EMAIL}-speech:{n}" for n in (1, 2))

    def listing(status_a: int = 1, *, with_b: bool = True) -> AccountSnapshot:
        entries = {a: {"audio_id": a, "audio_status": status_a}}
        if with_b:
            entries[b] = {"audio_id": b, "audio_status": 1}
        return AccountSnapshot(ListedClips(entries))

    def sent(snapshot: AccountSnapshot, at: float) -> bool:
        return rounds.worth_sending(snapshot, group, at, needs)

    needs.want(group, a)
    assert sent(listing(), 0.0)  # the first round
    assert not sent(listing(), 10.0)  # nothing new for the clip waited for
    assert sent(listing(status_a=2), 20.0)  # its status changed
    assert not sent(listing(status_a=2), 30.0)
    needs.want(group, a)  # a second trigger waits for the same clip: it needs a round too
    assert sent(listing(status_a=2), 40.0)
    needs.want(group, b)
    assert sent(listing(status_a=2, with_b=False), 50.0)  # a clip not listed: its trigger looks it up itself
    assert sent(listing(status_a=2, with_b=False), 60.0)  # and again every round while it is not listed
    assert sent(listing(status_a=2), 70.0)
    assert not sent(listing(status_a=2), 129.0)
    assert sent(listing(status_a=2), 130.0)  # a round at least every heartbeat
    changed_apart = listing(status_a=2)
    changed_apart.clips.raw(a)["audio_url"] = "https://media.example/a.mp3"  # type: ignore[index]
    assert not sent(changed_apart, 135.0)  # a field no wait decides by: the round with the status change brings it
    assert sent(AccountSnapshot({}, failed=PixVerseResponseError("unreadable")), 140.0)
    assert sent(listing(status_a=2), 150.0)  # after a failed round, the next is sent whatever it shows
    needs.watch(group, 7, down_to=0)  # a watcher of new speech needs every round
    assert sent(listing(status_a=2), 160.0) and sent(listing(status_a=2), 170.0)
