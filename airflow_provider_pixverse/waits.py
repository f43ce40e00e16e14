"""Waiting for a clip from a task: look once, then defer to the trigger or poll from the worker.

The sensor and both operators wait through :class:`ClipWaitMixin`, by the rules of
:class:`~airflow_provider_pixverse._api.waiting.ClipWaiter`, which the trigger follows too.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.waiting import ClipWaiter, Decision, FinalClip, final_clip

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

# Airflow's own limit on a deferral lies this far past the trigger's deadline, so the trigger's
# timeout event (with the clip's last status) is what the task normally sees.
DEFERRAL_GRACE_SECONDS = 60.0


class ClipWaitMixin(BaseOperator):
    """Base of the tasks that wait for a clip; they set ``pixverse_conn_id``, ``deferrable`` and ``timeout_error``."""

    pixverse_conn_id: str
    deferrable: bool
    timeout_error: type[BaseException]

    @cached_property
    def hook(self) -> PixVerseHook:
        """The hook, created on first use (never while the DAG is parsed)."""
        from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

        return PixVerseHook(self.pixverse_conn_id)

    def wait_for_clip(
        self,
        audio_id: str,
        *,
        timeout: float,
        poll_interval: float,
        method_name: str = "execute_complete",
        resume_kwargs: dict[str, Any] | None = None,
    ) -> FinalClip:
        """The clip once final. Defers (raising ``TaskDeferred``) when deferrable and it is not final yet.

        The deadline is ``timeout`` seconds from now, and every retry and backoff spends from it.
        """
        clock = self.hook.clock
        started = clock.time()
        waiter = ClipWaiter(audio_id, started + timeout, poll_interval, started=started)
        decision = self._poll_once(waiter)
        if decision.event is None and self.deferrable:
            from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

            self.defer(
                trigger=PixVerseSpeechTrigger(
                    audio_id=audio_id,
                    end_time=waiter.deadline,
                    pixverse_conn_id=self.pixverse_conn_id,
                    poll_interval=waiter.poll_interval,
                    started=started,
                ),
                method_name=method_name,
                kwargs=resume_kwargs,
                timeout=timedelta(seconds=waiter.deadline - clock.time() + DEFERRAL_GRACE_SECONDS),
            )
        while decision.event is None:
            clock.sleep(decision.wait)
            decision = self._poll_once(waiter)
        return final_clip(decision.event, timeout_error=self.timeout_error)

    def final_clip_from(self, event: dict[str, Any]) -> FinalClip:
        """What the trigger's event says: the final clip, or the error raised again."""
        return final_clip(event, timeout_error=self.timeout_error)

    def _poll_once(self, waiter: ClipWaiter) -> Decision:
        answer: SpeechClip | PixVerseError
        try:
            answer = self.hook.poll_speech(waiter.audio_id)
        except PixVerseError as error:
            answer = error
        decision = waiter.after(answer, self.hook.clock.time())
        if decision.note:
            self.log.info("%s", decision.note)
        return decision
