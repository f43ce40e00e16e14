"""The trigger of a corpus task: it creates the corpus's parts as job slots free, and waits for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError
from airflow_provider_pixverse._compat import BaseTrigger, TriggerEvent
from airflow_provider_pixverse.batch_driver import CorpusDriver
from airflow_provider_pixverse.batch_records import FlyingPart, QueuedPart
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
from airflow_provider_pixverse.operators.batch_accounts import AccountWindows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["PixVerseBatchTrigger"]


class PixVerseBatchTrigger(BaseTrigger):
    """
    Create a corpus's queued parts over its accounts within their windows, and wait, in the triggerer.

    One run of :class:`~airflow_provider_pixverse.batch_driver.CorpusDriver` (see there for every
    rule): each account pulls the next part from the queue as a slot frees, one listing per
    account per interval takes the finals in. It fires one event
    (:meth:`~airflow_provider_pixverse.batch_driver.CorpusRun.to_event`: the parts created, the
    finals, what is still in flight) once the queue is empty, or, with nothing queued, once every
    part in flight is final; never before ``not_before`` (the task sets it ``SETTLE_SECONDS`` after
    it deferred: Airflow 3.2-3.3 may fail a task whose trigger fires seconds after it deferred).

    A triggerer killed mid-run loses nothing: the trigger runs again from its kwargs on another
    triggerer, and looks through each account's newest clips for the jobs its queue's intents made
    (the task saved each intent before it deferred), so nothing is created twice.

    :param queue: The parts to create (:meth:`QueuedPart.to_json`: each part's text and settings; no secret).
    :param in_flight: The parts running (:meth:`FlyingPart.to_json`).
    :param windows: The accounts' windows (:meth:`AccountWindows.to_json`).
    :param pixverse_conn_id: The ``pixverse`` connection (the trigger never holds the token).
    :param poll_interval: Seconds between two listings of an account.
    :param wait_timeout: Each clip's wait ends this long after its create.
    :param capacity_timeout: With parts queued, give up after this long with every account busy.
    :param end_time: The run's own bound (UNIX time).
    :param deferred_at: When the task deferred (UNIX time).
    :param not_before: The earliest time to fire (UNIX time).
    :param on_lost_answer: ``"fail"`` or ``"create"`` (see the operators).
    """

    def __init__(
        self,
        *,
        queue: list[dict[str, Any]],
        in_flight: list[list[Any]],
        windows: dict[str, Any],
        end_time: float,
        deferred_at: float,
        not_before: float,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 10.0,
        wait_timeout: float = 3600.0,
        capacity_timeout: float = 3600.0,
        on_lost_answer: str = "fail",
    ) -> None:
        super().__init__()
        self.queue = queue
        self.in_flight = in_flight
        self.windows = windows
        self.end_time = end_time
        self.deferred_at = deferred_at
        self.not_before = not_before
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.capacity_timeout = capacity_timeout
        self.on_lost_answer = on_lost_answer

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "queue": self.queue,
                "in_flight": self.in_flight,
                "windows": self.windows,
                "end_time": self.end_time,
                "deferred_at": self.deferred_at,
                "not_before": self.not_before,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
                "wait_timeout": self.wait_timeout,
                "capacity_timeout": self.capacity_timeout,
                "on_lost_answer": self.on_lost_answer,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """One run of the corpus's engine; its event."""
        hook = PixVerseHook(self.pixverse_conn_id)
        try:
            yield TriggerEvent(await drive_corpus(hook, log=self.log, **self.serialize()[1]))
        finally:
            await hook.aclose()


async def drive_corpus(
    hook: PixVerseHook,
    *,
    queue: list[dict[str, Any]],
    in_flight: list[list[Any]],
    windows: dict[str, Any],
    end_time: float,
    deferred_at: float,
    not_before: float,
    poll_interval: float,
    wait_timeout: float,
    capacity_timeout: float,
    on_lost_answer: str,
    log: Any,
    pixverse_conn_id: str = "",
) -> dict[str, Any]:
    """One run of the corpus's engine from a trigger's kwargs, its event not before ``not_before``.

    The trigger's run and a corpus task that does not defer both come here.
    """
    accounts = AccountWindows.from_json(windows)
    if accounts is None:
        raise PixVerseInvalidInputError(f"windows={windows!r} are not a corpus's windows")
    driver = CorpusDriver(
        hook,
        accounts,
        [QueuedPart.from_json(part) for part in queue],
        [FlyingPart.from_json(part) for part in in_flight],
        poll_interval=poll_interval,
        wait_timeout=wait_timeout,
        capacity_timeout=capacity_timeout,
        end_time=end_time,
        started=deferred_at,
        until_final=not queue,
        on_lost_answer=on_lost_answer,
        log=log,
    )
    result = await driver.run()
    log.info(
        "Corpus run: %d part(s) created, %d final, %d create(s) refused busy, %d still in flight%s",
        len(result.created),
        len(result.events),
        result.busy,
        len(result.in_flight),
        f"; ended by {result.fatal}" if result.fatal is not None else "",
    )
    await hook.clock.asleep(max(not_before - hook.clock.time(), 0.0))
    return result.to_event()
