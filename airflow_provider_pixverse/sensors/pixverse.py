"""The sensor that waits for a speech clip to be final."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, BaseSensorOperator, PokeReturnValue

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.retry import is_transient
from airflow_provider_pixverse._api.waiting import FinalClip, check_poll_interval, final_from_clip
from airflow_provider_pixverse.operators.base import ClipWaitMixin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context


__all__ = ["PixVerseSpeechSensor"]

DEFAULT_POKE_INTERVAL = 10.0
DEFAULT_TIMEOUT = 60 * 60.0


class PixVerseSpeechSensor(ClipWaitMixin, BaseSensorOperator):
    """
    Wait until a speech clip's status is final and return the clip (a JSON dict) as XCom.

    By default it defers to :class:`PixVerseSpeechTrigger`, so no worker slot is held while it
    waits; ``deferrable=False`` with ``mode="poke"`` or ``mode="reschedule"`` polls from a worker.
    Final and not COMPLETED (FAILED, or a final status this provider does not know) is never success.

    :param audio_id: The clip to wait for (templated).
    :param pixverse_conn_id: The ``pixverse`` connection (templated).
    :param deferrable: Wait in the triggerer (the default).
    :param fail_on_failed_status: Fail the task when the clip ends other than COMPLETED (the
        default); when False, return that clip so the DAG can branch on it.
    """

    template_fields: Sequence[str] = ("audio_id", "pixverse_conn_id")
    ui_color = "#e9d7fe"
    timeout_error = AirflowSensorTimeout

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
        check_poll_interval(self.poke_interval)
        self.audio_id = audio_id
        self.pixverse_conn_id = pixverse_conn_id
        self.deferrable = deferrable
        self.fail_on_failed_status = fail_on_failed_status

    def execute(self, context: Context) -> Any:
        """Look once; if the clip is not final yet, defer (or poke, when not deferrable)."""
        if not self.deferrable:
            return super().execute(context)
        final = self.wait_for_clip(self.audio_id, timeout=self.timeout, poll_interval=self.poke_interval)
        return self._result(final)

    def poke(self, context: Context) -> PokeReturnValue:
        """One look at the clip (no retries: the next poke is the retry); transient errors mean "not yet"."""
        try:
            clip = self.hook.poll_speech(self.audio_id)
        except PixVerseError as error:
            if not is_transient(error):
                raise
            self.log.warning("Could not check %s this time: %s", self.audio_id, error)
            return PokeReturnValue(is_done=False)
        final = final_from_clip(clip)
        if final is None:
            self.log.info("Clip %s is %s", self.audio_id, clip.status_label)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._result(final))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: return the clip or raise what the event reports."""
        return self._result(self.final_clip_from(event))

    def _result(self, final: FinalClip) -> dict[str, Any]:
        if not final.completed and self.fail_on_failed_status:
            raise final.failure
        self.log.info("Clip %s is final: %s", self.audio_id, final.clip.status_label)
        return final.clip.to_json()
