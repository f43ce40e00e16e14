"""The trigger that waits for a speech clip in the triggerer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.waiting import ClipWaiter
from airflow_provider_pixverse._compat import BaseTrigger, TriggerEvent

# Imported with the trigger module, so the triggerer pays for the HTTP stack once, when it loads
# this class, and never inside a trigger's run().
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook, shared_ssl_context

# Loading the CA store takes tens of milliseconds: do it now, not in the first trigger's run().
shared_ssl_context()

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_pixverse._api.clip import SpeechClip


class PixVerseSpeechTrigger(BaseTrigger):
    """
    Poll a speech clip until its status is final, then fire one event.

    The event is a dict (see :func:`airflow_provider_pixverse._api.waiting.event_payload`):
    ``status`` (``success``, ``failed``, ``error`` or ``timeout``), ``audio_id``, ``clip`` (the
    last clip seen, or ``None``), ``message``, ``error_type`` and ``error`` (the error's class and
    fields, so the task raises it again). The rules of the wait are those of
    :class:`~airflow_provider_pixverse._api.waiting.ClipWaiter`, the same as a worker-side wait.

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until final, an error no wait will cure, or the deadline."""
        hook = self._make_hook()
        clock = hook.clock
        try:
            now = clock.time()
            waiter = ClipWaiter(
                self.audio_id, self.end_time, self.poll_interval, started=self.started if self.started else now
            )
            decision = waiter.first_wait(now)
            while decision.event is None:
                await clock.asleep(decision.wait)
                answer: SpeechClip | PixVerseError
                try:
                    answer = await hook.apoll_speech(self.audio_id)
                except PixVerseError as error:
                    answer = error
                decision = waiter.after(answer, clock.time())
                if decision.note:
                    self.log.info("%s", decision.note)
            self.log.info("%s", decision.event["message"])
            yield TriggerEvent(decision.event)
        finally:
            await hook.aclose()
