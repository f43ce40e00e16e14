"""The trigger a create refused as busy waits in: the account's queue, in its shared poll (3.3+) or alone.

Under Airflow's own ``SharedStreamManager``, as the triggerer drives it, against the sandbox holding
the account full (jobs made through the API, which count; seeded clips are history and do not).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from pixverse_testing import FakeClock

from airflow_provider_pixverse._api.capacity import FALLBACK_SECONDS, QUEUES
from airflow_provider_pixverse._compat import HAS_SHARED_STREAMS
from airflow_provider_pixverse.account_poll import NEEDS
from airflow_provider_pixverse.exceptions import PixVerseAccountBusyError
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.triggers.capacity import PixVerseAccountCapacityTrigger
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
INTERVAL = 0.3
shared_only = pytest.mark.skipif(not HAS_SHARED_STREAMS, reason="shared streams arrived in Airflow 3.3")


def fresh_account() -> str:
    """An account of its own for each test: the queues of one triggerer process outlive a test."""
    return f"busy-{uuid.uuid4().hex[:10]}@example.com"


def capacity_trigger(
    account: str,
    *,
    since: float,
    not_before: float | None = None,
    seconds: float = 30.0,
    interval: float = INTERVAL,
    max_jobs: int | None = None,
) -> PixVerseAccountCapacityTrigger:
    return PixVerseAccountCapacityTrigger(
        waiter=uuid.uuid4().hex,
        queued_since=since,
        not_before=time.time() if not_before is None else not_before,
        end_time=time.time() + seconds,
        account=account,
        max_jobs=max_jobs,
        poll_interval=interval,
    )


def fill(sandbox: PixVerseSandbox, account: str, max_jobs: int) -> list[str]:
    """Make the account run as many jobs as it may (for an hour each); the next create is refused busy."""
    sandbox.set_clock(queued_seconds=0, generating_seconds=3600)
    sandbox.set_max_jobs(max_jobs, email=account)
    hook = PixVerseHook()
    jobs = [hook.create_speech(f"Job {n}.", VOICE, email=account) for n in range(max_jobs)]
    with pytest.raises(PixVerseAccountBusyError):
        hook.create_speech("One too many.", VOICE, email=account, retry_busy=False)
    return jobs


class Group:
    """Triggers run as the triggerer runs them: each subscribes to its group's stream and filters it."""

    def __init__(self) -> None:
        from airflow.triggers.shared_stream import SharedStreamManager

        self.manager = SharedStreamManager()
        self.fired: list[tuple[str, dict[str, Any]]] = []
        self.tasks: list[asyncio.Task[None]] = []

    def add(self, name: str, trigger: Any) -> None:
        self.tasks.append(asyncio.create_task(self._one(len(self.tasks), name, trigger)))

    async def _one(self, trigger_id: int, name: str, trigger: Any) -> None:
        key = trigger.shared_stream_key()
        stream = self.manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        try:
            async for event in trigger.filter_shared_stream(stream):
                self.fired.append((name, event.payload))
                return
        finally:
            await self.manager.unsubscribe(trigger_id, key)

    def names(self) -> list[str]:
        return [name for name, _ in self.fired]

    async def until(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` triggers fired (a test failure past ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.fired) < count:
            assert time.monotonic() < deadline, f"only {self.names()} fired in {timeout} s"
            await asyncio.sleep(0.02)
        for task in self.tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.manager.stop_all()
        errors = [r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
        assert not errors, errors


# -- serialization -------------------------------------------------------------------------------


def test_serializes_without_a_secret_and_round_trips(pixverse_sandbox: PixVerseSandbox) -> None:
    trigger = PixVerseAccountCapacityTrigger(
        waiter="w-1",
        queued_since=100.0,
        not_before=130.0,
        end_time=700.0,
        account="a@example.com",
        max_jobs=2,
        pixverse_conn_id="pixverse_default",
        poll_interval=5.0,
    )
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert type(again) is PixVerseAccountCapacityTrigger
    assert again.serialize() == (path, kwargs)
    assert kwargs == {
        "waiter": "w-1",
        "queued_since": 100.0,
        "not_before": 130.0,
        "end_time": 700.0,
        "account": "a@example.com",
        "max_jobs": 2,
        "pixverse_conn_id": "pixverse_default",
        "poll_interval": 5.0,
    }
    assert pixverse_sandbox.token not in json.dumps(kwargs)


@shared_only
def test_shares_the_group_of_the_accounts_speech_triggers(pixverse_sandbox: PixVerseSandbox) -> None:
    account = fresh_account()
    (job,) = fill(pixverse_sandbox, account, 1)
    speech = PixVerseSpeechTrigger(audio_id=job, end_time=time.time() + 30, poll_interval=INTERVAL)
    assert capacity_trigger(account, since=0).shared_stream_key() == speech.shared_stream_key()
    assert capacity_trigger(account, since=0, interval=5).shared_stream_key() != speech.shared_stream_key()
    assert capacity_trigger(fresh_account(), since=0).shared_stream_key() != speech.shared_stream_key()


# -- in the shared poll (Airflow 3.3+) -------------------------------------------------------------


@shared_only
async def test_the_queue_goes_in_queued_since_order_as_jobs_end_no_more_than_slots_freed(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    account = fresh_account()
    jobs = fill(pixverse_sandbox, account, 2)  # max_jobs not told: the queue learns it from the listing
    hook = PixVerseHook()
    now = time.time()
    group = Group()
    for name in ("w2", "w0", "w3", "w1"):  # they join in this order; their places are by queued_since
        group.add(name, capacity_trigger(account, since=now - 100 + int(name[1])))
    speech = PixVerseSpeechTrigger(audio_id=jobs[0], end_time=now + 30, poll_interval=INTERVAL)
    group.add("speech", speech)  # the task waiting for the first job: the same group, the same listing
    pixverse_sandbox.reset_request_counts()
    started = time.monotonic()
    await asyncio.sleep(INTERVAL * 4)
    assert group.fired == []  # full: nobody goes

    pixverse_sandbox.finish_clip(jobs[0])
    await group.until(2)
    assert sorted(group.names()) == ["speech", "w0"]
    assert dict(group.fired)["w0"]["status"] == "capacity"
    assert dict(group.fired)["speech"]["status"] == "success"
    jobs.append(hook.create_speech("w0's create.", VOICE, email=account))  # w0's task sends its create
    await asyncio.sleep(INTERVAL * 5)  # past the hold: w0's job holds the slot now
    assert sorted(group.names()) == ["speech", "w0"]

    pixverse_sandbox.finish_clip(jobs[1])
    pixverse_sandbox.finish_clip(jobs[2])  # two slots free at once
    await group.until(4)
    assert sorted(group.names()[2:]) == ["w1", "w2"]  # in one round: as many as slots freed, in order
    for name in group.names()[2:]:
        jobs.append(hook.create_speech(f"{name}'s create.", VOICE, email=account))
    await asyncio.sleep(INTERVAL * 5)
    assert len(group.fired) == 4  # w3 still waits: the account is full again
    await group.close()
    assert pixverse_sandbox.jobs_high_water(account) == 2

    counts = pixverse_sandbox.request_counts()
    rounds = (time.monotonic() - started) / INTERVAL + 1
    assert counts["list"] <= rounds  # one listing a round for the whole group
    assert counts["get"] == 0  # the speech trigger's clip was on the listed page
    assert QUEUES.of(speech.shared_stream_key(), INTERVAL).waiters == {}  # w3 left the queue when cancelled
    assert NEEDS.of(speech.shared_stream_key()) == (frozenset(), None)


@shared_only
async def test_a_trigger_whose_account_stays_full_times_out_at_its_end_time(pixverse_sandbox: PixVerseSandbox) -> None:
    account = fresh_account()
    fill(pixverse_sandbox, account, 1)
    trigger = capacity_trigger(account, since=time.time() - 50, seconds=1.0)
    group = Group()
    group.add("w", trigger)
    await group.until(1)
    fired_at = time.time()
    await group.close()
    ((_, event),) = group.fired
    assert event["status"] == "timeout" and event["account"] == account
    assert fired_at >= trigger.end_time
    assert fired_at - trigger.end_time < INTERVAL * 3
    assert "stayed busy" in event["message"] and event["waited"] >= 50


@shared_only
async def test_a_round_that_shows_the_same_jobs_still_lets_a_waiter_go_whose_not_before_passed(
    pixverse_sandbox: PixVerseSandbox,
) -> None:
    """Nothing changes on the account after the first rounds; only the waiter's Retry-After runs out."""
    account = fresh_account()
    fill(pixverse_sandbox, account, 2)
    pixverse_sandbox.set_max_jobs(3, email=account)  # one slot free
    trigger = capacity_trigger(account, since=time.time(), not_before=time.time() + INTERVAL * 3, max_jobs=3)
    group = Group()
    group.add("w", trigger)
    await group.until(1, timeout=INTERVAL * 12)
    fired_at = time.time()
    await group.close()
    assert group.fired[0][1]["status"] == "capacity"
    assert trigger.not_before <= fired_at < trigger.not_before + INTERVAL * 4


# -- alone (before Airflow 3.3), and the trigger's own clock -----------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The hooks the trigger makes run on a fake clock: time moves only when the trigger sleeps on it."""
    fake = FakeClock()
    monkeypatch.setattr(
        PixVerseAccountCapacityTrigger, "_make_hook", lambda self: PixVerseHook(self.pixverse_conn_id, clock=fake)
    )
    return fake


async def only_event(events: AsyncIterator[Any]) -> dict[str, Any]:
    event = await events.asend(None)  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await events.asend(None)  # type: ignore[attr-defined]
    return event.payload  # type: ignore[no-any-return]


async def test_alone_it_fires_at_not_before(pixverse_sandbox: PixVerseSandbox, clock: FakeClock) -> None:
    start = clock.now
    trigger = PixVerseAccountCapacityTrigger(
        waiter="w", queued_since=start - 5, not_before=start + 12, end_time=start + 100, account="a@example.com"
    )
    event = await only_event(trigger.run())
    assert event["status"] == "capacity" and event["queued_since"] == start - 5
    assert clock.now == start + 12 and clock.waits == [12]
    assert event["waited"] == pytest.approx(17)
    assert pixverse_sandbox.requests == []  # alone, it sends nothing: the task's create asks the account


async def test_alone_it_times_out_at_end_time_when_that_comes_first(clock: FakeClock) -> None:
    start = clock.now
    trigger = PixVerseAccountCapacityTrigger(waiter="w", queued_since=start, not_before=start + 50, end_time=start + 8)
    event = await only_event(trigger.run())
    assert event["status"] == "timeout" and clock.now == start + 8


async def never(stream: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """A group's stream with no round in it (the account cannot be listed, say), as the manager hands it."""
    while True:
        yield await stream.get()


@pytest.mark.parametrize("which", ["fallback", "end_time"])
async def test_a_wait_that_runs_out_decides_at_once_whatever_its_clock_says(clock: FakeClock, which: str) -> None:
    """The wait for a round runs on the event loop's timer, the deadlines on the hook's clock.

    The timer ran out; the clock (frozen here, as a wall clock set back would be) says not yet.
    Cancelling the wait closed the stream: the trigger must decide now, not read it again.
    """
    start = clock.now
    if which == "fallback":
        trigger = PixVerseAccountCapacityTrigger(
            waiter=uuid.uuid4().hex,
            queued_since=start,
            not_before=start - FALLBACK_SECONDS + 0.2,
            end_time=start + 100,
            account=fresh_account(),
        )
    else:
        trigger = PixVerseAccountCapacityTrigger(
            waiter=uuid.uuid4().hex,
            queued_since=start,
            not_before=start + 0.1,
            end_time=start + 0.2,
            account=fresh_account(),
        )
    events = trigger.filter_shared_stream(never(asyncio.Queue()))
    event = await asyncio.wait_for(anext(events), timeout=5)
    await events.aclose()
    assert event.payload["status"] == ("capacity" if which == "fallback" else "timeout")


async def test_the_speech_triggers_wait_for_a_round_decides_at_once_too(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rule where a waiting trigger of the same group waits for its round (the twin of the above)."""
    monkeypatch.setattr(
        PixVerseSpeechTrigger, "_make_hook", lambda self: PixVerseHook(self.pixverse_conn_id, clock=clock)
    )
    trigger = PixVerseSpeechTrigger(audio_id=f"user:1-pixverse:{fresh_account()}-speech:5", end_time=clock.now + 0.2)
    events = trigger.filter_shared_stream(never(asyncio.Queue()))
    event = await asyncio.wait_for(anext(events), timeout=5)
    await events.aclose()
    assert event.payload["status"] == "timeout"
