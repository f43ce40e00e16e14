"""The trigger that waits, for a create refused as busy, until the account has a free job slot."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.capacity import FALLBACK_SECONDS, QUEUES
from airflow_provider_pixverse._api.waiting import check_poll_interval
from airflow_provider_pixverse._compat import BaseEventTrigger, TriggerEvent
from airflow_provider_pixverse.account_poll import NEEDS, SharedAccountPoll
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["PixVerseAccountCapacityTrigger"]

CAPACITY = "capacity"


class PixVerseAccountCapacityTrigger(SharedAccountPoll, BaseEventTrigger):
    """
    Wait until an account may start another job, for a task whose create was refused as busy (429).

    Fires ``{"status": "capacity", ...}`` when the task may send its create again, or
    ``{"status": "timeout", ...}`` at ``end_time``. Never before ``not_before`` (the refusal's
    ``Retry-After``, floored and capped by the retry policy).

    On Airflow 3.3+ it joins the account's shared poll (the same group as the triggers waiting
    for the account's clips) and the account's queue in this triggerer
    (:class:`~airflow_provider_pixverse._api.capacity.AccountCapacity`): each round's listing
    shows the jobs in flight, and as many waiters as there are free slots go, first come first
    served (``queued_since``). Before 3.3 it fires at ``not_before``.

    :param waiter: A name for this wait, unique to the task (its place in the queue).
    :param queued_since: When the task's create was first refused (UNIX time): its place in the queue.
    :param not_before: The earliest time to fire (UNIX time).
    :param end_time: Give up at this time (UNIX time): the task's ``capacity_timeout``.
    :param account: The account's email ("" for the connection's only account).
    :param max_jobs: The account's job limit, when the task knows it (its ``max_jobs``).
    :param pixverse_conn_id: The ``pixverse`` connection (the trigger never holds the token).
    :param poll_interval: Seconds between looks at the account's jobs.
    """

    def __init__(
        self,
        *,
        waiter: str,
        queued_since: float,
        not_before: float,
        end_time: float,
        account: str = "",
        max_jobs: int | None = None,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.waiter = waiter
        self.queued_since = queued_since
        self.not_before = not_before
        self.end_time = end_time
        self.account_email = account
        self.max_jobs = max_jobs
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = check_poll_interval(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "waiter": self.waiter,
                "queued_since": self.queued_since,
                "not_before": self.not_before,
                "end_time": self.end_time,
                "account": self.account_email,
                "max_jobs": self.max_jobs,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    def account(self) -> str:
        """The account whose job slots this trigger waits for."""
        return self.account_email

    def _make_hook(self) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Airflow 3.3+: wait in the account's queue, one round of its shared listing at a time."""
        hook = self._make_hook()
        clock = hook.clock
        group = self.shared_stream_key()
        queue = QUEUES.of(group, self.poll_interval)
        queue.join(self.waiter, queued_since=self.queued_since, not_before=self.not_before, max_jobs=self.max_jobs)
        NEEDS.watch(group, id(self), sys.maxsize)  # the newest page: where the jobs in flight are
        try:
            while True:
                now = clock.time()
                if now >= self.end_time:
                    yield TriggerEvent(self._event("timeout", now))
                    return
                if queue.my_turn(self.waiter, now):
                    yield TriggerEvent(self._event(CAPACITY, now))
                    return
                until = min(self.end_time, max(self.not_before + FALLBACK_SECONDS, now))
                try:
                    snapshot = await asyncio.wait_for(anext(shared_stream), timeout=max(until - now, 0.0))
                except TimeoutError:
                    # Cancelling the wait closed this subscriber's stream: decide now, never read it again.
                    # The event loop's timer says ``until`` came, whatever the hook's clock says.
                    now = max(clock.time(), until)
                    if now >= self.end_time:
                        yield TriggerEvent(self._event("timeout", now))
                    else:
                        queue.my_turn(self.waiter, now)  # the fallback: it leaves the queue holding a slot
                        yield TriggerEvent(self._event(CAPACITY, now))
                    return
                if snapshot.error is not None:  # the create would meet it too: let the task see it
                    yield TriggerEvent(self._event(CAPACITY, clock.time()))
                    return
                if snapshot.failed is None:
                    queue.observe(snapshot, snapshot.clips.values(), clock.time())
        finally:
            queue.leave(self.waiter)
            NEEDS.unwatch(group, id(self))
            await hook.aclose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Before Airflow 3.3: fire at ``not_before`` (or the deadline, whichever is first)."""
        hook = self._make_hook()
        clock = hook.clock
        try:
            await clock.asleep(max(min(self.not_before, self.end_time) - clock.time(), 0.0))
            now = clock.time()
            yield TriggerEvent(self._event("timeout" if now >= self.end_time else CAPACITY, now))
        finally:
            await hook.aclose()

    def _event(self, status: str, now: float) -> dict[str, Any]:
        account = self.account_email or "the connection's account"
        waited = max(now - self.queued_since, 0.0)
        if status == CAPACITY:
            message = f"{account} may have a free job slot after {waited:.0f} s in the queue"
        else:
            message = f"{account} stayed busy for {waited:.0f} s (until the task's capacity_timeout)"
        self.log.info("%s", message)
        return {
            "status": status,
            "account": self.account_email,
            "queued_since": self.queued_since,
            "waited": waited,
            "message": message,
        }
