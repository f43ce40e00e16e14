"""The trigger that waits for speech clips in the triggerer: one clip, or several (the parts of one text)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseError, PixVerseInvalidInputError
from airflow_provider_pixverse._api.ids import account_of
from airflow_provider_pixverse._api.waiting import ClipsWaiter
from airflow_provider_pixverse._compat import BaseEventTrigger, TriggerEvent
from airflow_provider_pixverse.account_poll import NEEDS, SharedAccountPoll

# Imported with the trigger module, so the triggerer pays for the HTTP stack once, when it loads
# this class, and never inside a trigger's run().
from airflow_provider_pixverse.hooks._transport import shared_ssl_context
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

# Loading the CA store takes tens of milliseconds: do it now, not in the first trigger's run().
shared_ssl_context()

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_pixverse._api.clip import SpeechClip

__all__ = ["PixVerseSpeechClipsTrigger", "PixVerseSpeechTrigger"]


class PixVerseSpeechTrigger(SharedAccountPoll, BaseEventTrigger):
    """
    Poll speech clips until each one's status is final, then fire one event.

    Give ``audio_id`` for one clip or ``audio_ids`` for several (of one account, as the parts of
    one text are). For one clip the event is that clip's (see
    :func:`airflow_provider_pixverse._api.waiting.event_payload`): ``status`` (``success``,
    ``failed``, ``error`` or ``timeout``), ``audio_id``, ``clip`` (the last clip seen, or ``None``),
    ``message``, ``error_type`` and ``error`` (the error's class and fields, so the task raises it
    again). For several it is ``{"status": "clips", "events": [...], "message": ...}``, the
    one-clip events in the order of ``audio_ids``; it fires once every clip is final, or at once
    when one wait ends with an error no wait will cure. The rules of each wait are those of
    :class:`~airflow_provider_pixverse._api.waiting.ClipWaiter`, the same as a worker-side wait.

    On Airflow 3.3+ the triggers of one connection, account and poll interval share one poll:
    one listing of the account per interval (see :mod:`airflow_provider_pixverse.account_poll`);
    a clip the listing does not show is looked up with its own GET, at most once per interval.
    Before 3.3 each trigger polls its clips itself, over the event loop's one shared HTTP session.

    :param audio_id: The clip to wait for (or ``audio_ids``).
    :param audio_ids: The clips to wait for (or ``audio_id``).
    :param end_time: The deadline as a UNIX timestamp, for every clip; absolute, so a trigger
        re-created on another triggerer keeps it.
    :param pixverse_conn_id: The ``pixverse`` connection (the trigger never holds the token).
    :param poll_interval: Seconds between polls while a clip is not final.
    :param started: When the task started waiting (UNIX time), for the log lines.
    :param not_before: Never fire before this (UNIX time): the task sets it ``SETTLE_SECONDS`` after it
        deferred (Airflow 3.2-3.3 may fail a task whose trigger fires seconds after it deferred).
    """

    def __init__(
        self,
        *,
        end_time: float,
        audio_id: str | None = None,
        audio_ids: list[str] | None = None,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 10.0,
        started: float | None = None,
        not_before: float | None = None,
    ) -> None:
        super().__init__()
        if (audio_id is None) == (audio_ids is None):
            raise PixVerseInvalidInputError("give audio_id (one clip) or audio_ids (several), not both or neither")
        if audio_ids is not None and not audio_ids:
            raise PixVerseInvalidInputError("audio_ids is empty: there is nothing to wait for")
        self.audio_id = audio_id
        self.audio_ids = [audio_id] if audio_id is not None else list(audio_ids or ())
        self.end_time = end_time
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = poll_interval
        self.started = started
        self.not_before = not_before

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        clips: dict[str, Any] = {"audio_id": self.audio_id} if self.audio_id is not None else {}
        if self.audio_id is None:
            clips["audio_ids"] = self.audio_ids
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **clips,
                "end_time": self.end_time,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
                "started": self.started,
                # Only when set: a trigger of an earlier release serializes (and reads) no such key.
                **({"not_before": self.not_before} if self.not_before is not None else {}),
            },
        )

    def _make_hook(self) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id)

    def account(self) -> str:
        """The account of the (first) clip, encoded in its id: the group this trigger polls with."""
        return account_of(self.audio_ids[0])

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """The clips out of each snapshot of the account's shared poll; their own GETs for those it does not show."""
        hook = self._make_hook()
        clock = hook.clock
        group = self.shared_stream_key()
        waiting = self._waiting(hook)
        for audio_id in waiting.pending:
            NEEDS.want(group, audio_id)
        try:
            while not waiting.done:
                remaining = max(self.end_time - clock.time(), 0.0)
                try:
                    async with asyncio.timeout(remaining):  # no task per snapshot, as wait_for makes
                        snapshot = await anext(shared_stream)
                except TimeoutError:  # the deadline passed with no round of the group
                    # Cancelling the wait closed the stream: the deadline is taken as come, whatever the
                    # hook's clock says, so the stream is never read again.
                    waiting.deadline_passed(max(clock.time(), self.end_time))
                    continue
                # Snapshots come once per interval, so a clip the listing does not show is looked
                # up with its own GET at most once per interval.
                for audio_id in list(waiting.pending):
                    answer = snapshot.error or snapshot.clips.get(audio_id) or await _poll(hook, audio_id)
                    self._log_note(waiting.after(audio_id, answer, clock.time()).note)
                    if audio_id not in waiting.pending:
                        NEEDS.unwant(group, audio_id)
                    if waiting.done:
                        break
            await self._settle(clock)
            yield TriggerEvent(self._event(waiting))
        finally:
            for audio_id in waiting.pending:
                NEEDS.unwant(group, audio_id)
            await hook.aclose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll each clip, every interval, until all are final, an error no wait will cure, or the deadline."""
        hook = self._make_hook()
        clock = hook.clock
        try:
            waiting = self._waiting(hook)
            while not waiting.done:
                await clock.asleep(waiting.next_poll_in(clock.time()))
                for audio_id in waiting.due(clock.time()):
                    self._log_note(waiting.after(audio_id, await _poll(hook, audio_id), clock.time()).note)
                    if waiting.done:
                        break
            await self._settle(clock)
            yield TriggerEvent(self._event(waiting))
        finally:
            await hook.aclose()

    async def _settle(self, clock: Any) -> None:
        """Hold the event until ``not_before`` (see the class)."""
        if self.not_before is not None:
            await clock.asleep(max(self.not_before - clock.time(), 0.0))

    def _waiting(self, hook: PixVerseHook) -> ClipsWaiter:
        now = hook.clock.time()
        return ClipsWaiter(
            self.audio_ids,
            self.end_time,
            self.poll_interval,
            started=self.started or now,
            policy=hook.retry_policy,
            now=now,
        )

    def _event(self, waiting: ClipsWaiter) -> dict[str, Any]:
        """The one-clip event for ``audio_id``, the set's event for ``audio_ids``; each clip's end logged."""
        for event in waiting.events.values():
            self.log.info("%s", event["message"])
        if self.audio_id is not None:
            return waiting.events[self.audio_id]
        return waiting.group_event()

    def _log_note(self, note: str | None) -> None:
        if note:
            self.log.info("%s", note)


class PixVerseSpeechClipsTrigger(PixVerseSpeechTrigger):
    """:class:`PixVerseSpeechTrigger` for several clips (``audio_ids``): the same trigger under the name that
    triggers serialized by earlier releases carry."""


async def _poll(hook: PixVerseHook, audio_id: str) -> SpeechClip | PixVerseError:
    try:
        return await hook.apoll_speech(audio_id)
    except PixVerseError as error:
        return error
