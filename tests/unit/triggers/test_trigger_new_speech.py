"""Scheduling on new speech: the watcher announces each clip of the account that ends, once."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import FakeClock, use_connection

from airflow_provider_pixverse._api.watermark import SpeechWatermark
from airflow_provider_pixverse._compat import HAS_SHARED_STREAMS
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.models import SpeechClip
from airflow_provider_pixverse.triggers.new_speech import WATERMARK_KEY, PixVerseNewSpeechTrigger
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
ACCOUNT = "watched@example.com"


def clip(number: int, status: int, final: bool) -> SpeechClip:
    audio_id = f"user:1-pixverse:{ACCOUNT}-speech:{number}"
    return SpeechClip(audio_id=audio_id, audio_status=status, audio_status_final=final)


DONE, FAILED, BUSY = (1, True), (8, True), (10, False)


def test_the_watermark_announces_each_clip_once_whatever_the_order_they_end_in() -> None:
    mark = SpeechWatermark.start([clip(5, *DONE), clip(6, *BUSY), clip(7, *DONE)], include_existing=False)
    assert mark.take([clip(5, *DONE), clip(6, *BUSY), clip(7, *DONE)], include_failed=False) == []
    ended = mark.take([clip(6, *DONE), clip(7, *DONE), clip(8, *BUSY), clip(9, *DONE)], include_failed=False)
    assert [c.audio_id for c in ended] == [clip(6, *DONE).audio_id, clip(9, *DONE).audio_id]
    assert (mark.settled, mark.seen) == (7, {9})  # 8 still runs; 9 ended before it
    assert mark.take([clip(8, *FAILED), clip(9, *DONE)], include_failed=False) == []
    assert (mark.settled, mark.seen) == (9, set())
    again = SpeechWatermark.from_json(mark.to_json())
    assert again == mark and again is not None and again.take([clip(9, *DONE)], include_failed=True) == []


def test_failed_clips_and_existing_ones_only_when_asked() -> None:
    existing = [clip(1, *DONE), clip(2, *FAILED)]
    assert SpeechWatermark.start(existing, include_existing=False).take(existing, include_failed=True) == []
    everything = SpeechWatermark.start(existing, include_existing=True).take(existing, include_failed=True)
    assert len(everything) == 2
    mark = SpeechWatermark.start([clip(3, *BUSY)], include_existing=False)
    assert mark.take([clip(3, *FAILED)], include_failed=False) == [] and mark.settled == 3


class MemoryAssetStore:
    """The asset state store's async get/set, kept across watcher instances (a triggerer restart)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = value


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    for trigger_class in (PixVerseNewSpeechTrigger, PixVerseSpeechTrigger):
        monkeypatch.setattr(trigger_class, "_make_hook", lambda self: PixVerseHook(self.pixverse_conn_id, clock=fake))
    return fake


class Driven:
    """A watcher's event stream, driven in the background as the triggerer drives it."""

    def __init__(self, events: AsyncIterator[Any]) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task = asyncio.create_task(self._drive(events))

    async def _drive(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            await self.queue.put(event.payload)

    async def next(self, timeout: float = 1.0) -> Any:
        """The next event, or ``None`` when none comes within ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout=timeout)
        except TimeoutError:
            return None

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_a_watcher_announces_clips_that_end_after_it_started(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    pixverse_sandbox.set_clock(queued_seconds=3600, generating_seconds=3600)
    before = pixverse_sandbox.add_clip(text="Done before", voice_id=VOICE, email=ACCOUNT, status="COMPLETED")
    running = pixverse_sandbox.add_clip(text="Running", voice_id=VOICE, email=ACCOUNT)
    store = MemoryAssetStore()
    watcher = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=10)
    watcher.asset_state_store = store  # type: ignore[assignment]
    events = Driven(watcher.run())
    assert await events.next() is None  # nothing ended since it started
    pixverse_sandbox.finish_clip(running["audio_id"])
    new = pixverse_sandbox.add_clip(text="Made later", voice_id=VOICE, email=ACCOUNT, status="COMPLETED")
    pixverse_sandbox.add_clip(text="Another account", voice_id=VOICE, email="other@example.com", status="COMPLETED")
    first, second = await events.next(), await events.next()
    assert [first["audio_id"], second["audio_id"]] == [running["audio_id"], new["audio_id"]]
    assert first["audio_status_name"] == "COMPLETED" and first["prompt"] == "Running"
    assert await events.next() is None
    await events.stop()
    assert before["audio_id"] not in {first["audio_id"], second["audio_id"]}

    # A clip ends while no triggerer runs the watcher; a restart (a new instance, the same asset
    # state store) announces it, and nothing it announced before.
    while_down = pixverse_sandbox.add_clip(text="While down", voice_id=VOICE, email=ACCOUNT, status="COMPLETED")
    restarted = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=10)
    restarted.asset_state_store = store  # type: ignore[assignment]
    events = Driven(restarted.run())
    assert (await events.next())["audio_id"] == while_down["audio_id"]
    assert await events.next() is None
    last = pixverse_sandbox.add_clip(text="After the restart", voice_id=VOICE, email=ACCOUNT, status="COMPLETED")
    assert (await events.next())["audio_id"] == last["audio_id"]
    await events.stop()
    assert store.values[WATERMARK_KEY]["settled"] >= int(last["audio_id"].rsplit(":", 1)[1])


@pytest.mark.skipif(not HAS_SHARED_STREAMS, reason="shared streams arrived in Airflow 3.3")
async def test_watchers_and_waiting_triggers_of_an_account_share_one_poll(pixverse_sandbox: PixVerseSandbox) -> None:
    """On the real clock: the waits' deadlines and the group's rounds must keep the same time."""
    from airflow.triggers.shared_stream import SharedStreamManager

    pixverse_sandbox.set_clock(queued_seconds=3600, generating_seconds=3600)
    waiting = [pixverse_sandbox.add_clip(text=f"w{i}", voice_id=VOICE, email=ACCOUNT)["audio_id"] for i in range(3)]
    watcher = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=0.3)
    waits = [PixVerseSpeechTrigger(audio_id=a, end_time=time.time() + 60, poll_interval=0.3) for a in waiting]
    assert {t.shared_stream_key() for t in (watcher, *waits)} == {watcher.shared_stream_key()}

    manager = SharedStreamManager()
    key = watcher.shared_stream_key()
    announced: list[str] = []

    async def watch() -> None:
        async for event in watcher.filter_shared_stream(manager.subscribe(trigger_id=0, trigger=watcher, key=key)):
            announced.append(event.payload["audio_id"])

    async def wait(i: int, trigger: PixVerseSpeechTrigger) -> Any:
        async for event in trigger.filter_shared_stream(manager.subscribe(trigger_id=i, trigger=trigger, key=key)):
            return event.payload
        return None

    watching = asyncio.create_task(watch())
    waiters = [asyncio.create_task(wait(i + 1, t)) for i, t in enumerate(waits)]
    await asyncio.sleep(1.0)  # a few rounds with nothing ended
    pixverse_sandbox.reset_request_counts()
    for audio_id in waiting:
        pixverse_sandbox.finish_clip(audio_id)
    events = await asyncio.wait_for(asyncio.gather(*waiters), timeout=10)
    for _ in range(100):
        if len(announced) == 3:
            break
        await asyncio.sleep(0.05)
    watching.cancel()
    await manager.stop_all()
    assert [e["status"] for e in events] == ["success"] * 3
    assert sorted(announced) == sorted(waiting)
    counts = pixverse_sandbox.request_counts()
    assert counts["get"] == 0 and counts["list"] >= 1


async def drain(events: Driven, timeout: float = 1.0) -> list[str]:
    """Every event that comes until none does for ``timeout`` seconds: the announced ids."""
    announced = []
    while (event := await events.next(timeout)) is not None:
        announced.append(event["audio_id"])
    return announced


async def started_watcher(sandbox: PixVerseSandbox, store: MemoryAssetStore) -> None:
    """A watcher that starts (its watermark stored) and stops, with one clip done before."""
    sandbox.add_clip(text="Done before", voice_id=VOICE, email=ACCOUNT, status="COMPLETED")
    first = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=10)
    first.asset_state_store = store  # type: ignore[assignment]
    events = Driven(first.run())
    for _ in range(200):  # its first round stores the watermark
        if WATERMARK_KEY in store.values:
            break
        await asyncio.sleep(0.05)
    assert await events.next(timeout=0.2) is None
    await events.stop()
    assert WATERMARK_KEY in store.values


def ended(sandbox: PixVerseSandbox, n: int) -> list[str]:
    return [
        sandbox.add_clip(text=f"c{i}", voice_id=VOICE, email=ACCOUNT, status="COMPLETED")["audio_id"] for i in range(n)
    ]


async def test_a_restarted_watcher_pages_down_to_its_watermark_across_rounds(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,500 clips ended while no triggerer ran: a round lists 600 (12 pages of 50), and it announced only those."""
    store = MemoryAssetStore()
    await started_watcher(pixverse_sandbox, store)
    while_down = ended(pixverse_sandbox, 1500)
    restarted = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=10)
    restarted.asset_state_store = store  # type: ignore[assignment]
    events = Driven(restarted.run())
    announced = await drain(events, timeout=5.0)
    assert sorted(announced) == sorted(while_down) and len(set(announced)) == 1500
    assert "short of the watermark" in capsys.readouterr().out
    top = int(while_down[-1].rsplit(":", 1)[1])
    assert store.values[WATERMARK_KEY] == {"settled": top, "seen": []}
    later = ended(pixverse_sandbox, 1)
    assert await drain(events, timeout=3.0) == later  # caught up: the next clip comes in the next round
    await events.stop()


async def test_clips_of_another_account_are_not_new_speech_of_the_watched_one(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock
) -> None:
    store = MemoryAssetStore()
    await started_watcher(pixverse_sandbox, store)
    watcher = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=10)
    watcher.asset_state_store = store  # type: ignore[assignment]
    other = pixverse_sandbox.add_clip(text="Theirs", voice_id=VOICE, email="other@example.com", status="COMPLETED")
    other["audio_id"] = "user:1-pixverse:other@example.com-speech:1000000000"
    page = {"data": [other], "next_offset": 1, "has_more": False}
    pixverse_sandbox.add_fault("status", code=200, body=page, count=1, path_contains="/speech/?")
    events = Driven(watcher.run())
    assert await drain(events) == []
    mine = ended(pixverse_sandbox, 5)
    assert await drain(events, timeout=3.0) == mine
    await events.stop()
    assert store.values[WATERMARK_KEY]["settled"] == int(mine[-1].rsplit(":", 1)[1])


async def test_a_listing_sent_oldest_first_still_announces_every_clip(
    pixverse_sandbox: PixVerseSandbox, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order is unconfirmed: oldest first, the first page reached the watermark and 40 of 120 were announced."""
    extra = {"list_page_size": 40}
    use_connection(
        monkeypatch, "pixverse_default", host=pixverse_sandbox.url, password=pixverse_sandbox.token, extra=extra
    )
    pixverse_sandbox.state.listing_order = "oldest"
    store = MemoryAssetStore()
    await started_watcher(pixverse_sandbox, store)
    watcher = PixVerseNewSpeechTrigger(account_email=ACCOUNT, poll_interval=10)
    watcher.asset_state_store = store  # type: ignore[assignment]
    later = ended(pixverse_sandbox, 120)
    events = Driven(watcher.run())
    announced = await drain(events, timeout=3.0)
    assert sorted(announced) == sorted(later)
    await events.stop()
