"""An account's queue of creates refused as busy: who goes, how many, and when (no I/O)."""

from __future__ import annotations

import math

import pytest

from airflow_provider_pixverse._api.capacity import (
    FALLBACK_SECONDS,
    HOLD_INTERVALS,
    AccountCapacity,
    CapacityQueues,
    check_capacity_timeout,
    not_before,
)
from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import PixVerseAccountBusyError, PixVerseInvalidInputError
from airflow_provider_pixverse._api.retry import RetryPolicy
from airflow_provider_pixverse.account_poll import AccountSnapshot

INTERVAL = 10.0
T0 = 1_000_000.0


def job(n: int, *, final: bool = False) -> SpeechClip:
    """Clip number ``n`` of the account: in flight, or ended."""
    return SpeechClip(audio_id=f"user:1-pixverse:a@b.c-speech:{n}", audio_status_final=final)


def running(*numbers: int) -> list[SpeechClip]:
    return [job(n) for n in numbers]


class Rounds:
    """Rounds of the listing as the shared poll makes them: a new object each round."""

    def __init__(self, queue: AccountCapacity) -> None:
        self.queue = queue

    def see(self, clips: list[SpeechClip], now: float) -> AccountSnapshot:
        snapshot = AccountSnapshot({clip.audio_id or "": clip for clip in clips})
        self.queue.observe(snapshot, clips, now)
        return snapshot


def turns(queue: AccountCapacity, keys: list[str], now: float) -> list[str]:
    """The waiters among ``keys`` whose turn it is (each asks, as its trigger would)."""
    return [key for key in keys if queue.my_turn(key, now)]


def test_first_come_first_served_by_queued_since_not_by_name_or_joining_order() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    for key, since in (("a-late", T0 + 30), ("b-first", T0 + 10), ("c-second", T0 + 20)):
        queue.join(key, queued_since=since, not_before=T0)
    Rounds(queue).see([], T0 + 40)
    assert turns(queue, ["a-late", "c-second", "b-first"], T0 + 40) == ["b-first"]


def test_as_many_go_as_there_are_free_slots() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=3)
    keys = [f"w{n}" for n in range(5)]
    for n, key in enumerate(keys):
        queue.join(key, queued_since=T0 + n, not_before=T0)
    Rounds(queue).see(running(1), T0 + 10)  # one job in flight: two slots free
    assert turns(queue, keys, T0 + 10) == ["w0", "w1"]
    assert sorted(queue.waiters) == ["w2", "w3", "w4"]


def test_the_limit_is_max_jobs_when_given() -> None:
    queue = AccountCapacity(INTERVAL)
    queue.join("w0", queued_since=T0, not_before=T0, max_jobs=4)
    queue.join("w1", queued_since=T0 + 1, not_before=T0, max_jobs=2)  # the smallest any task gave
    queue.join("w2", queued_since=T0 + 2, not_before=T0)
    assert queue.limit == 2
    rounds = Rounds(queue)
    rounds.see(running(1, 2, 3), T0 + 5)  # more in flight than the limit: seen, not believed
    assert queue.limit == 2
    rounds.see(running(1), T0 + 6)
    assert turns(queue, ["w0", "w1", "w2"], T0 + 6) == ["w0"]


def test_without_max_jobs_the_limit_is_the_most_jobs_seen_in_flight() -> None:
    queue = AccountCapacity(INTERVAL)
    assert queue.limit == 1  # nothing seen yet: one at a time
    keys = [f"w{n}" for n in range(4)]
    for n, key in enumerate(keys):
        queue.join(key, queued_since=T0 + n, not_before=T0 + 100)  # not yet: only learning here
    rounds = Rounds(queue)
    rounds.see(running(1, 2, 3), T0 + 10)
    assert queue.limit == 3
    rounds.see(running(3), T0 + 100)  # two of the three ended
    assert turns(queue, keys, T0 + 100) == ["w0", "w1"]


def test_a_waiter_let_go_holds_its_slot_until_its_job_shows_up() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    queue.join("first", queued_since=T0, not_before=T0)
    queue.join("second", queued_since=T0 + 1, not_before=T0)
    rounds = Rounds(queue)
    rounds.see([], T0 + 10)
    assert turns(queue, ["first", "second"], T0 + 10) == ["first"]
    rounds.see([], T0 + 15)  # first's create is on its way: its slot is taken
    assert turns(queue, ["second"], T0 + 15) == []
    rounds.see(running(7), T0 + 20)  # first's job shows up, in flight
    assert turns(queue, ["second"], T0 + 20) == []
    rounds.see([job(7, final=True)], T0 + 25)  # and ends, well within the hold: the slot is free
    assert HOLD_INTERVALS * INTERVAL > 25 - 10
    assert turns(queue, ["second"], T0 + 25) == ["second"]


def test_a_waiter_let_go_whose_job_never_shows_holds_its_slot_for_hold_intervals() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    queue.join("first", queued_since=T0, not_before=T0)
    queue.join("second", queued_since=T0 + 1, not_before=T0)
    rounds = Rounds(queue)
    rounds.see([], T0)
    assert turns(queue, ["first"], T0) == ["first"]
    hold = HOLD_INTERVALS * INTERVAL
    rounds.see([], T0 + hold - 0.5)
    assert turns(queue, ["second"], T0 + hold - 0.5) == []
    rounds.see([], T0 + hold)
    assert turns(queue, ["second"], T0 + hold) == ["second"]


def test_a_waiter_refused_again_keeps_its_place() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    queue.join("old", queued_since=T0, not_before=T0)
    rounds = Rounds(queue)
    rounds.see([], T0 + 1)
    assert turns(queue, ["old"], T0 + 1) == ["old"]
    # Its create met a job made elsewhere meanwhile; it queues again, behind nobody newer.
    queue.join("new", queued_since=T0 + 50, not_before=T0 + 50)
    queue.join("old-again", queued_since=T0, not_before=T0 + 60)
    rounds.see(running(9), T0 + 60)
    rounds.see([job(9, final=True)], T0 + 70)
    assert turns(queue, ["new", "old-again"], T0 + 70) == ["old-again"]


def test_never_before_not_before_even_with_slots_free() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=2)
    queue.join("early", queued_since=T0, not_before=T0 + 30)
    queue.join("later", queued_since=T0 + 1, not_before=T0 + 5)
    rounds = Rounds(queue)
    rounds.see([], T0 + 10)
    assert turns(queue, ["early", "later"], T0 + 10) == ["later"]
    rounds.see([], T0 + 29.9)
    assert turns(queue, ["early"], T0 + 29.9) == []
    rounds.see([], T0 + 30)
    assert turns(queue, ["early"], T0 + 30) == ["early"]


def test_two_rounds_that_list_the_same_are_still_two_rounds() -> None:
    """Nothing changed on the account between rounds, but time did: the waiter's not_before passed."""
    queue = AccountCapacity(INTERVAL, max_jobs=2)
    queue.join("w", queued_since=T0, not_before=T0 + 15)
    rounds = Rounds(queue)
    first = rounds.see(running(1), T0 + 10)
    assert turns(queue, ["w"], T0 + 10) == []
    second = rounds.see(running(1), T0 + 20)
    assert first == second and first is not second  # what the listing showed is equal
    assert turns(queue, ["w"], T0 + 20) == ["w"]


def test_always_by_not_before_plus_fallback_whatever_the_listing_says() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    queue.join("w", queued_since=T0, not_before=T0 + 5)
    rounds = Rounds(queue)
    rounds.see(running(1), T0 + 10)  # full
    assert not queue.my_turn("w", T0 + 5 + FALLBACK_SECONDS - 0.01)
    assert queue.my_turn("w", T0 + 5 + FALLBACK_SECONDS)  # no round needed
    assert "w" not in queue.waiters


def test_one_round_is_observed_once_however_many_waiters_see_it() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    keys = ["w0", "w1", "w2"]
    for n, key in enumerate(keys):
        queue.join(key, queued_since=T0 + n, not_before=T0)
    snapshot = AccountSnapshot({})
    for key in keys:  # each waiter's trigger hands the queue the same round
        queue.observe(snapshot, [], T0 + 10)
        queue.my_turn(key, T0 + 10)
    # w0 went; had each look counted as a round, w0's let-go and the free slot would be recounted.
    assert sorted(queue.waiters) == ["w1", "w2"]
    queue.observe(snapshot, running(1, 2, 3), T0 + 11)  # the same round again, whatever it holds
    assert queue.most_seen == 0


def test_a_waiter_that_leaves_gives_its_turn_up_and_unknown_waiters_have_none() -> None:
    queue = AccountCapacity(INTERVAL, max_jobs=1)
    queue.join("w0", queued_since=T0, not_before=T0)
    Rounds(queue).see([], T0 + 1)
    queue.leave("w0")
    assert not queue.my_turn("w0", T0 + 1)
    assert not queue.my_turn("nobody", T0 + 10_000)


def test_one_queue_per_group() -> None:
    queues = CapacityQueues()
    assert queues.of(("g", 1), INTERVAL) is queues.of(("g", 1), INTERVAL)
    assert queues.of(("g", 1), INTERVAL) is not queues.of(("g", 2), INTERVAL)


def test_not_before_is_retry_after_floored_and_capped_by_the_policy() -> None:
    policy = RetryPolicy(base_delay=2.0, max_retry_after=50.0)
    assert not_before(PixVerseAccountBusyError("busy", retry_after=10.0), policy, T0) == T0 + 10.0
    assert not_before(PixVerseAccountBusyError("busy", retry_after=0.0), policy, T0) == T0 + 2.0
    assert not_before(PixVerseAccountBusyError("busy", retry_after=9999.0), policy, T0) == T0 + 50.0
    no_header = not_before(PixVerseAccountBusyError("busy"), policy, T0)
    assert T0 + policy.min_delay <= no_header <= T0 + policy.max_delay


@pytest.mark.parametrize("value", [0, 5, 2.5, None])
def test_capacity_timeout_accepts_seconds_from_zero(value: float | None) -> None:
    assert check_capacity_timeout(value) == (None if value is None else float(value))


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, "5", True])
def test_capacity_timeout_refuses_anything_else_naming_it(value: object) -> None:
    with pytest.raises(PixVerseInvalidInputError, match=f"capacity_timeout={value!r}"):
        check_capacity_timeout(value)


def test_a_limit_given_by_a_waiter_goes_with_it() -> None:
    """A task that said max_jobs=1 left long ago: it no longer throttles the account's other tasks."""
    queue = AccountCapacity(INTERVAL)
    queue.join("strict", queued_since=T0, not_before=T0, max_jobs=1)
    assert queue.limit == 1
    rounds = Rounds(queue)
    rounds.see(running(1, 2, 3), T0 + 10)  # the account runs three (other tasks' jobs)
    queue.leave("strict")  # its deadline passed
    queue.join("w", queued_since=T0 + 20, not_before=T0)
    rounds.see(running(3), T0 + 30)
    assert queue.limit == 3
    assert turns(queue, ["w"], T0 + 30) == ["w"]
