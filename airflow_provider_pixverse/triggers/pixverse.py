"""The trigger that waits for a speech clip in the triggerer."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.retry import is_transient
from airflow_provider_pixverse._compat import BaseTrigger, TriggerEvent

# Imported with the trigger module, so the triggerer pays for the HTTP stack once, when it loads
# this class, and never inside a trigger's run().
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook, shared_ssl_context
from airflow_provider_pixverse.triggers.events import ERROR, FAILED, SUCCESS, TIMEOUT, event_payload

# Loading the CA store takes tens of milliseconds: do it now, not in the first trigger's run().
shared_ssl_context()

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_pixverse._api.clip import SpeechClip


def speech_event(
    status: str,
    audio_id: str,
    message: str,
    *,
    clip: dict[str, Any] | None = None,
    error_type: str | None = None,
) -> TriggerEvent:
    """The one event a :class:`PixVerseSpeechTrigger` yields (see :mod:`.events` for its keys)."""
    return TriggerEvent(event_payload(status, audio_id, message, clip=clip, error_type=error_type))


class PixVerseSpeechTrigger(BaseTrigger):
    """
    Poll a speech clip until its status is final, then fire one event.

    The event is a dict: ``status`` (``success``, ``failed``, ``error`` or ``timeout``),
    ``audio_id``, ``clip`` (the last clip seen, as JSON, or ``None``), ``message`` and
    ``error_type`` (the PixVerse error class name for ``error``). Transient errors (connection
    errors, timeouts, 429, 5xx) are retried with the hook's backoff until ``end_time``.

    :param audio_id: The clip to wait for.
    :param pixverse_conn_id: The ``pixverse`` connection (the trigger never holds the token).
    :param poll_interval: Seconds between polls while the clip is not final.
    :param end_time: The deadline as a UNIX timestamp; absolute, so a trigger re-created on
        another triggerer keeps it.
    """

    def __init__(
        self,
        *,
        audio_id: str,
        end_time: float,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 10.0,
    ) -> None:
        super().__init__()
        self.audio_id = audio_id
        self.end_time = end_time
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "audio_id": self.audio_id,
                "end_time": self.end_time,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    def _make_hook(self) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until final, an error no wait will cure, or the deadline."""
        hook = self._make_hook()
        try:
            yield await self._poll(hook)
        finally:
            await hook.aclose()

    async def _poll(self, hook: PixVerseHook) -> TriggerEvent:
        # The task that deferred has just looked at the clip, so the first poll waits one interval.
        wait = self.poll_interval
        transient_failures = 0
        last_clip: SpeechClip | None = None
        while True:
            remaining = self.end_time - time.time()
            if remaining <= 0:
                status = last_clip.status_label if last_clip else "unknown"
                return speech_event(
                    TIMEOUT,
                    self.audio_id,
                    f"audio_id {self.audio_id!r}: still {status} at the deadline",
                    clip=_json(last_clip),
                )
            await hook.async_sleep(min(wait, remaining))
            try:
                clip = await hook.aget_speech_once(self.audio_id)
            except PixVerseError as error:
                if not is_transient(error):
                    return speech_event(
                        ERROR, self.audio_id, str(error), clip=_json(last_clip), error_type=type(error).__name__
                    )
                transient_failures += 1
                wait = hook.retry_policy.delay(transient_failures, error)
                self.log.warning("Polling %s failed (%s); polling again in %.1f s", self.audio_id, error, wait)
            else:
                transient_failures = 0
                last_clip = clip
                if clip.is_final:
                    return self._final_event(clip)
                if clip.audio_status_enum is None:
                    self.log.warning(
                        "Clip %s has status %s, unknown to this provider; treating it as not final",
                        self.audio_id,
                        clip.status_label,
                    )
                # Up to 10 % earlier, so triggers deferred together do not poll in lockstep.
                wait = self.poll_interval * (1 - 0.1 * random.random())

    def _final_event(self, clip: SpeechClip) -> TriggerEvent:
        if clip.is_failed:
            message = (
                f"audio_id {self.audio_id!r}: status FAILED (fail_code={clip.fail_code!r}, "
                f"fail_reason={clip.fail_reason!r})"
            )
            return speech_event(FAILED, self.audio_id, message, clip=clip.to_json())
        if not clip.is_completed:
            message = f"audio_id {self.audio_id!r}: final with status {clip.status_label}, not COMPLETED"
            return speech_event(FAILED, self.audio_id, message, clip=clip.to_json())
        return speech_event(
            SUCCESS, self.audio_id, f"audio_id {self.audio_id!r}: status COMPLETED", clip=clip.to_json()
        )


def _json(clip: SpeechClip | None) -> dict[str, Any] | None:
    return clip.to_json() if clip is not None else None
