"""The sensor that waits for a speech clip to be final."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, BaseSensorOperator, PokeReturnValue

from airflow_provider_pixverse._api.errors import PixVerseError, PixVerseJobFailedError
from airflow_provider_pixverse._api.retry import is_transient
from airflow_provider_pixverse.triggers.events import clip_from_event

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

DEFAULT_POKE_INTERVAL = 10.0
DEFAULT_TIMEOUT = 60 * 60.0


class PixVerseSpeechSensor(BaseSensorOperator):
    """
    Wait until a speech clip's status is final and return the clip (a JSON dict) as XCom.

    By default it defers to :class:`PixVerseSpeechTrigger`, so no worker slot is held while it
    waits; ``deferrable=False`` with ``mode="poke"`` or ``mode="reschedule"`` polls from a worker.

    :param audio_id: The clip to wait for (templated).
    :param pixverse_conn_id: The ``pixverse`` connection.
    :param deferrable: Wait in the triggerer (the default).
    :param fail_on_failed_status: Fail the task when the clip ends FAILED (the default); when
        False, return the FAILED clip so the DAG can branch on it.
    """

    template_fields: Sequence[str] = ("audio_id",)
    ui_color = "#e9d7fe"

    def __init__(
        self,
        *,
        audio_id: str,
        pixverse_conn_id: str = "pixverse_default",
        deferrable: bool = True,
        fail_on_failed_status: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", DEFAULT_POKE_INTERVAL)
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        super().__init__(**kwargs)
        self.audio_id = audio_id
        self.pixverse_conn_id = pixverse_conn_id
        self.deferrable = deferrable
        self.fail_on_failed_status = fail_on_failed_status

    @cached_property
    def hook(self) -> PixVerseHook:
        """The hook, created on first use (never while the DAG is parsed)."""
        from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

        return PixVerseHook(self.pixverse_conn_id)

    def execute(self, context: Context) -> Any:
        """Check once; if the clip is not final yet, defer (or poke, when not deferrable)."""
        if not self.deferrable:
            return super().execute(context)
        checked = self.poke(context)
        if checked:
            return checked.xcom_value
        from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

        self.defer(
            trigger=PixVerseSpeechTrigger(
                audio_id=self.audio_id,
                end_time=time.time() + self.timeout,
                pixverse_conn_id=self.pixverse_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the clip: done when final; transient API errors mean "not yet"."""
        try:
            clip = self.hook.get_speech(self.audio_id)
        except PixVerseError as error:
            if is_transient(error):
                self.log.warning("Could not check %s this time: %s", self.audio_id, error)
                return PokeReturnValue(is_done=False)
            raise
        if not clip.is_final:
            if clip.audio_status_enum is None:
                self.log.warning("Clip %s has unknown status %s; not final", self.audio_id, clip.status_label)
            else:
                self.log.info("Clip %s is %s", self.audio_id, clip.status_label)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._final_result(clip))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the clip or raise what the event reports."""
        return self._final_result(clip_from_event(event, timeout_error=AirflowSensorTimeout))

    def _final_result(self, clip: SpeechClip) -> dict[str, Any]:
        if clip.is_failed and self.fail_on_failed_status:
            raise PixVerseJobFailedError(audio_id=self.audio_id, fail_code=clip.fail_code, fail_reason=clip.fail_reason)
        self.log.info("Clip %s is final: %s", self.audio_id, clip.status_label)
        return clip.to_json()
