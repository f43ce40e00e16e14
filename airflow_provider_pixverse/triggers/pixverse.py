"""The triggers that wait for speech clips in the triggerer: one clip, or the parts of one text together."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.ids import account_of
from airflow_provider_pixverse._api.waiting import ERROR, ClipWaiter, Decision
from airflow_provider_pixverse._compat import BaseEventTrigger, TriggerEvent

# Imported with the trigger module, so the triggerer pays for the HTTP stack once, when it loads
# this class, and never inside a trigger's run().
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook, shared_ssl_context
from airflow_provider_pixverse.triggers.account_stream import NEEDS, SharedAccountPoll

# Loading the CA store takes tens of milliseconds: do it now, not in the first trigger's run().
shared_ssl_context()

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_pixverse._api.clip import SpeechClip


class PixVerseSpeechTrigger(SharedAccountPoll, BaseEventTrigger):
    """
    Poll a speech clip until its status is final, then fire one event.

    The event is a dict (see :func:`airflow_provider_pixverse._api.waiting.event_payload`):
    ``status`` (``success``, ``failed``, ``error`` or ``timeout``), ``audio_id``, ``clip`` (the
    last clip seen, or ``None``), ``message``, ``error_type`` and ``error`` (the error's class and
    fields, so the task raises it again). The rules of the wait are those of
    :class:`~airflow_provider_pixverse._api.waiting.ClipWaiter`, the same as a worker-side wait.

    On Airflow 3.3+ the triggers of one connection, account and poll interval share one poll:
    one listing of the account per interval (see :mod:`.account_stream`); a trigger whose clip
    the listing does not show looks it up with its own GET, at most once per interval. Before
    3.3 each trigger polls its clip itself, over the event loop's one shared HTTP session.

    :param audio_id: The clip to wait for.
    :param end_time: The deadline as a UNIX timestamp; absolute, so a trigger re-created on
        another triggerer keeps it.
    :param pixverse_conn_id: The ``pixverse`` connection (the trigger never holds the token).
    :param poll_interval: Seconds between polls while the clip is not final.
    :param started: When the task started waiting (UNIX time), for the log lines.
    """

    def __init__(
        self,
        *,
        audio_id: str,
        end_time: float,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 10.0,
        started: float | None = None,
    ) -> None:
        super().__init__()
        self.audio_id = audio_id
        self.end_time = end_time
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = poll_interval
        self.started = started

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "audio_id": self.audio_id,
                "end_time": self.end_time,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
                "started": self.started,
            },
        )

    def _make_hook(self) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id)

    def account(self) -> str:
        """The account of the clip (encoded in its id): the group this trigger polls with."""
        return account_of(self.audio_id)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This trigger's clip out of each snapshot; its own GET when the listing does not show it."""
        hook = self._make_hook()
        clock = hook.clock
        group = self.shared_stream_key()
        NEEDS.want(group, self.audio_id)
        try:
            now = clock.time()
            waiter = self._waiter(now)
            decision = waiter.first_wait(now)
            while decision.event is None:
                remaining = max(self.end_time - clock.time(), 0.0)
                try:
                    snapshot = await asyncio.wait_for(anext(shared_stream), timeout=remaining)
                except TimeoutError:  # the deadline passed with no round of the group
                    decision = waiter.first_wait(clock.time())
                    continue
                # Snapshots come once per interval, so a clip the listing does not show is looked
                # up with its own GET at most once per interval.
                answer = snapshot.error or snapshot.clips.get(self.audio_id) or await self._poll_once(hook)
                decision = waiter.after(answer, clock.time())
                self._log_note(decision)
            self.log.info("%s", decision.event["message"])
            yield TriggerEvent(decision.event)
        finally:
            NEEDS.unwant(group, self.audio_id)
            await hook.aclose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until final, an error no wait will cure, or the deadline."""
        hook = self._make_hook()
        clock = hook.clock
        try:
            now = clock.time()
            waiter = self._waiter(now)
            decision = waiter.first_wait(now)
            while decision.event is None:
                await clock.asleep(decision.wait)
                decision = waiter.after(await self._poll_once(hook), clock.time())
                self._log_note(decision)
            self.log.info("%s", decision.event["message"])
            yield TriggerEvent(decision.event)
        finally:
            await hook.aclose()

    def _waiter(self, now: float) -> ClipWaiter:
        return ClipWaiter(self.audio_id, self.end_time, self.poll_interval, started=self.started or now)

    async def _poll_once(self, hook: PixVerseHook) -> SpeechClip | PixVerseError:
        try:
            return await hook.apoll_speech(self.audio_id)
        except PixVerseError as error:
            return error

    def _log_note(self, decision: Decision) -> None:
        if decision.note:
            self.log.info("%s", decision.note)


class PixVerseSpeechClipsTrigger(SharedAccountPoll, BaseEventTrigger):
    """
    Wait for several clips at once (the parts of one long text), then fire one event for all of them.

    Each clip is waited for by the rules of
    :class:`~airflow_provider_pixverse._api.waiting.ClipWaiter`, as
    :class:`PixVerseSpeechTrigger` waits for one. The event is ``{"status": "clips", "events": [...],
    "message": ...}``: ``events`` holds, in the order of ``audio_ids``, the one-clip event
    (:func:`~airflow_provider_pixverse._api.waiting.event_payload`) each clip's wait ended with.
    It fires once every clip is final, or at once when a wait ends with an error no wait will
    cure (then ``events`` holds that error's event and the events of the clips already final).

    On Airflow 3.3+ it joins the poll its account shares with the other triggers (one listing per
    interval; a clip the listing does not show is looked up with its own GET, at most once per
    interval). Before 3.3 it polls each clip itself, every ``poll_interval``.

    :param audio_ids: The clips to wait for (of one account, as the parts of one request are).
    :param end_time: The deadline as a UNIX timestamp, for every clip.
    :param pixverse_conn_id: The ``pixverse`` connection (the trigger never holds the token).
    :param poll_interval: Seconds between polls while a clip is not final.
    :param started: When the task started waiting (UNIX time), for the log lines.
    """

    def __init__(
        self,
        *,
        audio_ids: list[str],
        end_time: float,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 10.0,
        started: float | None = None,
    ) -> None:
        super().__init__()
        if not audio_ids:
            raise ValueError("audio_ids is empty: there is nothing to wait for")
        self.audio_ids = list(audio_ids)
        self.end_time = end_time
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = poll_interval
        self.started = started

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "audio_ids": self.audio_ids,
                "end_time": self.end_time,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
                "started": self.started,
            },
        )

    def _make_hook(self) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id)

    def account(self) -> str:
        """The account of the first clip: the group this trigger polls with."""
        return account_of(self.audio_ids[0])

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """The clips out of each snapshot; their own GETs for those the listing does not show."""
        hook = self._make_hook()
        clock = hook.clock
        group = self.shared_stream_key()
        waiting = _ClipsWait(self, clock.time())
        for audio_id in waiting.pending:
            NEEDS.want(group, audio_id)
        try:
            while not waiting.done:
                remaining = max(self.end_time - clock.time(), 0.0)
                try:
                    snapshot = await asyncio.wait_for(anext(shared_stream), timeout=remaining)
                except TimeoutError:  # the deadline passed with no round of the group
                    waiting.deadline_passed(clock.time())
                    continue
                for audio_id in list(waiting.pending):
                    answer = snapshot.error or snapshot.clips.get(audio_id) or await _poll(hook, audio_id)
                    self._log_note(waiting.after(audio_id, answer, clock.time()))
                    if audio_id not in waiting.pending:
                        NEEDS.unwant(group, audio_id)
                    if waiting.done:
                        break
            yield TriggerEvent(waiting.event(self.log))
        finally:
            for audio_id in waiting.pending:
                NEEDS.unwant(group, audio_id)
            await hook.aclose()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll each clip until all are final, an error no wait will cure, or the deadline."""
        hook = self._make_hook()
        clock = hook.clock
        try:
            waiting = _ClipsWait(self, clock.time())
            due = dict.fromkeys(waiting.pending, clock.time() + self.poll_interval)
            while not waiting.done:
                await clock.asleep(max(min(due[audio_id] for audio_id in waiting.pending) - clock.time(), 0.0))
                now = clock.time()
                for audio_id in [a for a in waiting.pending if due[a] <= now]:
                    decision = waiting.after(audio_id, await _poll(hook, audio_id), clock.time())
                    self._log_note(decision)
                    due[audio_id] = clock.time() + decision.wait
                    if waiting.done:
                        break
            yield TriggerEvent(waiting.event(self.log))
        finally:
            await hook.aclose()

    def _log_note(self, decision: Decision) -> None:
        if decision.note:
            self.log.info("%s", decision.note)


class _ClipsWait:
    """The waits of a :class:`PixVerseSpeechClipsTrigger`: one :class:`ClipWaiter` per clip, and the events so far."""

    def __init__(self, trigger: PixVerseSpeechClipsTrigger, now: float) -> None:
        self.order = list(dict.fromkeys(trigger.audio_ids))
        self.waiters = {
            audio_id: ClipWaiter(audio_id, trigger.end_time, trigger.poll_interval, started=trigger.started or now)
            for audio_id in self.order
        }
        self.pending = list(self.order)
        self.events: dict[str, dict[str, Any]] = {}
        self.stopped = False

    @property
    def done(self) -> bool:
        """Every clip has its event, or one ended with an error that ends them all."""
        return self.stopped or not self.pending

    def after(self, audio_id: str, answer: SpeechClip | PixVerseError, now: float) -> Decision:
        """Feed one poll's answer to the clip's waiter."""
        decision = self.waiters[audio_id].after(answer, now)
        if decision.event is not None:
            self._ended(audio_id, decision.event)
        return decision

    def deadline_passed(self, now: float) -> None:
        """No round came before the deadline: every clip still pending ends with a timeout."""
        for audio_id in list(self.pending):
            decision = self.waiters[audio_id].first_wait(now)
            if decision.event is not None:
                self._ended(audio_id, decision.event)

    def event(self, log: Any) -> dict[str, Any]:
        """The one event of the trigger."""
        events = [self.events[audio_id] for audio_id in self.order if audio_id in self.events]
        for event in events:
            log.info("%s", event["message"])
        statuses = collections.Counter(event["status"] for event in events)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        return {"status": "clips", "events": events, "message": f"{len(self.order)} clips: {summary}"}

    def _ended(self, audio_id: str, event: dict[str, Any]) -> None:
        self.events[audio_id] = event
        self.pending.remove(audio_id)
        if event["status"] == ERROR:
            self.stopped = True


async def _poll(hook: PixVerseHook, audio_id: str) -> SpeechClip | PixVerseError:
    try:
        return await hook.apoll_speech(audio_id)
    except PixVerseError as error:
        return error
