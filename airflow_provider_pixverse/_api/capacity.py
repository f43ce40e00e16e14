"""Waiting for an account's job capacity: who of the creates refused as busy may try again, and when.

An account runs at most ``maxJobs`` jobs at once (1 to 8); a create beyond that is refused with
429 and made no job, so it is safe to send again once a job of the account ends. The tasks
refused wait in the triggerer, in one queue per account (:class:`AccountCapacity`), first come
first served. Every round of the account's shared listing says how many of its jobs are in
flight (QUEUED or GENERATING); the queue lets go as many waiters as there are free slots:

    free = limit - jobs in flight - waiters let go whose job the listing does not show yet

``limit`` is the smallest ``max_jobs`` the waiters give (each for as long as it waits), else the
most jobs ever seen in flight at once (the account was full when it refused: that many is what
it runs). A waiter let go whose create
is refused again just queues again, keeping its place (``queued_since``). Whatever the listing
says, a waiter never tries before its ``Retry-After`` (floored and capped by the retry policy),
and always tries again :data:`FALLBACK_SECONDS` after that: a queue that misjudges the limit costs
a 429, never a task stuck for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse._api.errors import PixVerseRateLimitError
    from airflow_provider_pixverse._api.retry import RetryPolicy

# A waiter tries again this long after its Retry-After at the latest, whatever the listing shows.
FALLBACK_SECONDS = 60.0
# A deferred task's capacity trigger fires no sooner than this after the deferral. Airflow 3.2-3.3 may
# fail a task whose trigger fires within seconds of its deferral: the executor's late "success" of the
# try that deferred is taken for the resumed try (apache/airflow#66374, #67287, #71580).
SETTLE_SECONDS = 10.0
# A waiter let go holds its slot this long (in poll intervals) unless its job shows up sooner.
HOLD_INTERVALS = 3


def not_before(error: PixVerseRateLimitError, policy: RetryPolicy, now: float) -> float:
    """The earliest time a create refused with ``error`` may be sent again: ``Retry-After``, floored and capped."""
    return now + policy.delay(1, error)


def check_capacity_timeout(value: object) -> float | None:
    """``capacity_timeout`` as seconds (``None``: the task's ``wait_timeout``); refused naming the bad value."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PixVerseInvalidInputError(f"capacity_timeout={value!r} must be a number of seconds from 0, or None")
    return float(value)


@dataclass
class AccountCapacity:
    """One account's queue of creates waiting for a free job slot, as one triggerer sees it.

    :param poll_interval: Seconds between rounds of the account's listing.
    :param max_jobs: The account's job limit where it is known for good (else the waiters' or learned).
    """

    poll_interval: float
    max_jobs: int | None = None
    most_seen: int = 0
    waiters: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (queued_since, not_before)
    _asked: dict[str, int] = field(default_factory=dict)  # key -> the max_jobs that waiter gave
    _let_go: list[float] = field(default_factory=list)
    _in_flight: frozenset[str] = frozenset()
    _turns: set[str] = field(default_factory=set)
    _last_round: object = None

    def join(self, key: str, *, queued_since: float, not_before: float, max_jobs: int | None = None) -> None:
        """A create refused as busy starts waiting (``queued_since`` keeps its place across refusals)."""
        self.waiters[key] = (queued_since, not_before)
        if max_jobs is not None:
            self._asked[key] = max_jobs

    def leave(self, key: str) -> None:
        """A waiter goes (its turn came, its deadline passed, or it was cancelled)."""
        self.waiters.pop(key, None)
        self._asked.pop(key, None)
        self._turns.discard(key)

    @property
    def limit(self) -> int:
        """The account's job limit as far as this queue knows it (a waiter's ``max_jobs`` goes with it)."""
        given = [*self._asked.values(), *([self.max_jobs] if self.max_jobs is not None else [])]
        return min(given) if given else max(self.most_seen, 1)

    def observe(self, round_: object, clips: Iterable[SpeechClip], now: float) -> None:
        """Take in one round of the account's listing (each round once, whichever waiter sees it first).

        :param round_: The round's own object (its snapshot), told apart by identity: two rounds
            that list the same clips are still two rounds (time moved on between them).
        """
        if round_ is self._last_round:
            return
        self._last_round = round_
        in_flight = frozenset(clip.audio_id for clip in clips if clip.audio_id and not clip.is_final)
        shown = len(in_flight - self._in_flight)  # jobs new since the last round: some are those let go
        self._in_flight = in_flight
        hold = HOLD_INTERVALS * self.poll_interval
        self._let_go = [at for at in self._let_go[shown:] if now - at < hold]
        self.most_seen = max(self.most_seen, len(in_flight))
        free = self.limit - len(in_flight) - len(self._let_go)
        ready = sorted((since, key) for key, (since, after) in self.waiters.items() if after <= now)
        self._turns = {key for _, key in ready[: max(free, 0)]}

    def my_turn(self, key: str, now: float) -> bool:
        """Whether waiter ``key`` may send its create now; if so it leaves the queue holding a slot."""
        entry = self.waiters.get(key)
        if entry is None:
            return False
        turn = key in self._turns or now >= entry[1] + FALLBACK_SECONDS
        if turn:
            self.leave(key)
            self._let_go.append(now)
        return turn


class CapacityQueues:
    """Every account's queue in this process, by the account's shared-poll group."""

    def __init__(self) -> None:
        self._queues: dict[object, AccountCapacity] = {}

    def of(self, group: object, poll_interval: float) -> AccountCapacity:
        """The queue of ``group``'s account (made on first use)."""
        queue = self._queues.get(group)
        if queue is None:
            queue = self._queues[group] = AccountCapacity(poll_interval)
        return queue


QUEUES = CapacityQueues()
