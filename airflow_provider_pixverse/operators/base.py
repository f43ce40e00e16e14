"""What the operators and the sensor share: the extra link, the XCom keys, the bases, and waiting for clips.

Waiting from a task is :meth:`ClipWaitMixin.wait_for_clips`: look once at each clip, then defer
to :class:`~airflow_provider_pixverse.triggers.pixverse.PixVerseSpeechTrigger` (the one place a
task defers to wait for clips) or, when not deferrable, poll from the worker. Both follow
:class:`~airflow_provider_pixverse._api.waiting.ClipsWaiter`, as the trigger does.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowTaskTimeout, BaseOperator, BaseOperatorLink, XCom

from airflow_provider_pixverse._api import capacity
from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.media import check_media_url, without_userinfo
from airflow_provider_pixverse._api.waiting import (
    ClipsWaiter,
    FinalClip,
    check_poll_interval,
    events_of,
    final_clip,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath, TaskInstanceKey

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
    from airflow_provider_pixverse.storage import BeforePublish, WrittenObject

AUDIO_URL_XCOM_KEY = "pixverse_audio_url"
SPEECH_XCOM_KEY = "pixverse_speech"
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_WAIT_TIMEOUT = 60 * 60.0
DEFAULT_MAX_BYTES = 1024**3
# Airflow's own limit on a deferral lies this far past the trigger's deadline, so the trigger's
# timeout event (with the clip's last status) is what the task normally sees.
DEFERRAL_GRACE_SECONDS = 60.0


class PixVerseAudioLink(BaseOperatorLink):
    """Extra link "PixVerse audio": the media URL of the clip the task produced."""

    name = "PixVerse audio"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The clip's media URL, or an empty string before the task has one."""
        url = XCom.get_value(key=AUDIO_URL_XCOM_KEY, ti_key=ti_key)
        return url if isinstance(url, str) else ""


class ClipWaitMixin(BaseOperator):
    """Base of the tasks that wait for clips; they set ``pixverse_conn_id``, ``deferrable`` and ``timeout_error``."""

    pixverse_conn_id: str
    deferrable: bool
    timeout_error: type[BaseException]

    @cached_property
    def hook(self) -> PixVerseHook:
        """The hook, created on first use (never while the DAG is parsed)."""
        from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

        return PixVerseHook(self.pixverse_conn_id)

    def wait_for_clips(
        self,
        audio_ids: list[str],
        *,
        timeout: float,
        poll_interval: float,
        method_name: str = "execute_complete",
        resume_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, FinalClip]:
        """The clips that are final, by ``audio_id``: some (as soon as one is), or all.

        Looks once at each clip; those already final are returned at once. Otherwise it defers
        (raising ``TaskDeferred``) when deferrable, or polls from the worker until every clip is
        final. The deadline is ``timeout`` seconds from now, and every retry and backoff spends from it.
        """
        clock = self.hook.clock
        started = clock.time()
        waiting = ClipsWaiter(
            audio_ids, started + timeout, poll_interval, started=started, policy=self.hook.retry_policy
        )
        for audio_id in list(waiting.pending):
            self._look(waiting, audio_id)
        if not waiting.events:
            if self.deferrable:
                self._defer_to_trigger(waiting, started, method_name, resume_kwargs)
            while not waiting.done:  # the worker-side wait: until every clip is final
                clock.sleep(waiting.next_poll_in(clock.time()))
                for audio_id in waiting.due(clock.time()):
                    if not waiting.done:
                        self._look(waiting, audio_id)
        return {audio_id: self.final_clip_from(event) for audio_id, event in waiting.events.items()}

    def wait_for_clip(self, audio_id: str, **kwargs: Any) -> FinalClip:
        """The one clip once final (see :meth:`wait_for_clips`)."""
        return self.wait_for_clips([audio_id], **kwargs)[audio_id]

    def final_clip_from(self, event: dict[str, Any]) -> FinalClip:
        """What one clip's event says: the final clip, or the error raised again."""
        return final_clip(event, timeout_error=self.timeout_error)

    def finals_from(self, event: dict[str, Any]) -> dict[str, FinalClip]:
        """The final clips a trigger's event carries, one clip's or several (an error or timeout raised again)."""
        return {str(one.get("audio_id")): self.final_clip_from(one) for one in events_of(event)}

    def _defer_to_trigger(
        self, waiting: ClipsWaiter, started: float, method_name: str, resume_kwargs: dict[str, Any] | None
    ) -> None:
        from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechClipsTrigger, PixVerseSpeechTrigger

        common: dict[str, Any] = {
            "end_time": waiting.deadline,
            "pixverse_conn_id": self.pixverse_conn_id,
            "poll_interval": waiting.poll_interval,
            "started": started,
            "not_before": self.hook.clock.time() + capacity.SETTLE_SECONDS,  # see capacity.SETTLE_SECONDS
        }
        if len(waiting.pending) == 1:
            trigger: PixVerseSpeechTrigger = PixVerseSpeechTrigger(audio_id=waiting.pending[0], **common)
        else:
            trigger = PixVerseSpeechClipsTrigger(audio_ids=list(waiting.pending), **common)
        self.defer(
            trigger=trigger,
            method_name=method_name,
            kwargs=resume_kwargs,
            timeout=timedelta(seconds=waiting.deadline - self.hook.clock.time() + DEFERRAL_GRACE_SECONDS),
        )

    def _look(self, waiting: ClipsWaiter, audio_id: str) -> None:
        answer: SpeechClip | PixVerseError
        try:
            answer = self.hook.poll_speech(audio_id)
        except PixVerseError as error:
            answer = error
        decision = waiting.after(audio_id, answer, self.hook.clock.time())
        if decision.note:
            self.log.info("%s", decision.note)


class PixVerseBaseClipOperator(ClipWaitMixin):
    """Base of the operators: the hook, waiting for a clip, the link, and streaming a clip into storage."""

    timeout_error = AirflowTaskTimeout

    def __init__(
        self,
        *,
        pixverse_conn_id: str = "pixverse_default",
        deferrable: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pixverse_conn_id = pixverse_conn_id
        self.deferrable = deferrable
        self.poll_interval = check_poll_interval(poll_interval)
        self.wait_timeout = wait_timeout

    def _wait(self, audio_id: str, resume_kwargs: dict[str, Any] | None = None) -> FinalClip:
        return self.wait_for_clip(
            audio_id, timeout=self.wait_timeout, poll_interval=self.poll_interval, resume_kwargs=resume_kwargs
        )

    def _wait_all(self, audio_ids: list[str], resume_kwargs: dict[str, Any] | None = None) -> dict[str, FinalClip]:
        return self.wait_for_clips(
            audio_ids, timeout=self.wait_timeout, poll_interval=self.poll_interval, resume_kwargs=resume_kwargs
        )

    def _start_link(self, context: Context) -> None:
        """An empty "PixVerse audio" link until there is a checked URL: the link never looks up a missing XCom."""
        context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value="")

    def _checked_url(self, clip: SpeechClip) -> str | None:
        """The clip's media URL once it passed the media checks (and without credentials), or ``None``."""
        if not clip.url:
            return None
        return check_media_url(without_userinfo(clip.url), api_scheme=self.hook.settings.origin[0])

    def _media_url(self, context: Context, clip: SpeechClip) -> str | None:
        """The clip's checked media URL, pushed as the link."""
        url = self._checked_url(clip)
        if url is not None:
            context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value=url)
        return url

    def _fetch(
        self,
        clip: SpeechClip,
        url: str,
        target: ObjectStoragePath,
        *,
        max_bytes: int | None,
        overwrite: bool,
        before_publish: BeforePublish | None = None,
    ) -> WrittenObject:
        """Stream the clip's MP3 from its (checked) media URL into ``target`` (see :func:`write_download`)."""
        from airflow_provider_pixverse.storage import object_uri, write_download

        uri = object_uri(target)
        self.log.info("Downloading %s (%s bytes announced) to %s", clip.audio_id, clip.file_size or "no size", uri)
        started = time.monotonic()
        with self.hook.open_media(url, expected_bytes=clip.file_size or max_bytes) as media:
            written = write_download(
                media,
                target,
                file_size=clip.file_size,
                max_bytes=max_bytes,
                overwrite=overwrite,
                before_publish=before_publish,
            )
        seconds = max(time.monotonic() - started, 1e-6)
        if written.written:
            self.log.info(
                "Wrote %d bytes of %s to %s in %.2f s (%.0f KiB/s)",
                written.size,
                clip.audio_id,
                uri,
                seconds,
                written.size / 1024 / seconds,
            )
        else:
            self.log.info("%s already holds these %d bytes (same SHA-256); kept it", uri, written.size)
        return written
