"""Operators that create speech and land the MP3 in object storage, and their extra link."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowTaskTimeout,
    Asset,
    AssetAlias,
    BaseOperator,
    BaseOperatorLink,
    XCom,
)

from airflow_provider_pixverse._api.errors import PixVerseJobFailedError, PixVerseNotFoundError, PixVerseResponseError
from airflow_provider_pixverse.triggers.events import clip_from_event

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath, TaskInstanceKey

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

AUDIO_URL_XCOM_KEY = "pixverse_audio_url"
SPEECH_XCOM_KEY = "pixverse_speech"
AUDIO_ID_STATE_KEY = "pixverse_audio_id"
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_WAIT_TIMEOUT = 60 * 60.0
DEFAULT_MAX_BYTES = 1024**3


class PixVerseAudioLink(BaseOperatorLink):
    """Extra link "PixVerse audio": the media URL of the clip the task produced."""

    name = "PixVerse audio"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The clip's media URL, or an empty string before the task has one."""
        url = XCom.get_value(key=AUDIO_URL_XCOM_KEY, ti_key=ti_key)
        return url if isinstance(url, str) else ""


class _PixVerseClipOperator(BaseOperator):
    """Base of the operators: waiting for a clip to be final, in the triggerer or from the worker."""

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
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout

    @cached_property
    def hook(self) -> PixVerseHook:
        """The hook, created on first use (never while the DAG is parsed)."""
        from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

        return PixVerseHook(self.pixverse_conn_id)

    def _wait_or_defer(self, audio_id: str, resume_kwargs: dict[str, Any] | None = None) -> SpeechClip:
        """The clip once final; defers (raising ``TaskDeferred``) when deferrable and not final yet."""
        deadline = time.time() + self.wait_timeout
        clip = self.hook.get_speech(audio_id)
        if clip.is_final:
            return clip
        if self.deferrable:
            from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

            self.defer(
                trigger=PixVerseSpeechTrigger(
                    audio_id=audio_id,
                    end_time=deadline,
                    pixverse_conn_id=self.pixverse_conn_id,
                    poll_interval=self.poll_interval,
                ),
                method_name="execute_complete",
                kwargs=resume_kwargs,
                timeout=timedelta(seconds=self.wait_timeout),
            )
        while not clip.is_final:
            if time.time() >= deadline:
                raise AirflowTaskTimeout(
                    f"audio_id {audio_id!r}: still {clip.status_label} after {self.wait_timeout} s"
                )
            self.log.info("Clip %s is %s; checking again in %s s", audio_id, clip.status_label, self.poll_interval)
            time.sleep(self.poll_interval)
            clip = self.hook.get_speech(audio_id)
        return clip


class PixVerseDownloadSpeechOperator(_PixVerseClipOperator):
    """
    Stream a finished clip's MP3 into object storage, checked and published only when whole.

    Waits (deferring, by default) while the clip is not final; fails with the reason when it
    ended FAILED. Returns the URI of the written object and pushes the clip's metadata under
    the XCom key ``pixverse_speech``.

    :param audio_id: The clip to download (templated).
    :param destination: An object URI or ``ObjectStoragePath`` (templated): a file, or a folder
        (ends with ``/``, exists as a folder, or has no suffix) that gets the clip's name.
    :param storage_conn_id: The Airflow connection of the object store, if it needs one (templated).
    :param overwrite: Replace an existing, different object (an identical one is always kept).
    :param max_bytes: Refuse a download larger than this (default 1 GiB; ``None`` for no cap).
    :param deferrable: Wait for an unfinished clip in the triggerer (the default).
    :param poll_interval: Seconds between checks while waiting.
    :param wait_timeout: Give up waiting after this many seconds.
    :param asset_alias: Name of an asset alias this task emits the written object through, so
        downstream DAGs can be scheduled on new speech (``schedule=[AssetAlias(name)]``).
    """

    template_fields: Sequence[str] = ("audio_id", "destination", "storage_conn_id")
    operator_extra_links = (PixVerseAudioLink(),)
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        audio_id: str,
        destination: str | ObjectStoragePath,
        storage_conn_id: str | None = None,
        overwrite: bool = False,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        asset_alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        if asset_alias is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(name=asset_alias)]
        super().__init__(**kwargs)
        self.asset_alias = asset_alias
        self._lineage: tuple[ObjectStoragePath, str] | None = None
        self.audio_id = audio_id
        self.destination = destination
        self.storage_conn_id = storage_conn_id
        self.overwrite = overwrite
        self.max_bytes = max_bytes

    def execute(self, context: Context) -> str:
        """Wait for the clip if needed, then download it."""
        return self._download(context, self._wait_or_defer(self.audio_id))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired, then download."""
        return self._download(context, clip_from_event(event, timeout_error=AirflowTaskTimeout))

    def _download(self, context: Context, clip: SpeechClip) -> str:
        from airflow_provider_pixverse.storage import existing_size, object_uri, resolve_destination, write_download

        if clip.is_failed:
            raise PixVerseJobFailedError(audio_id=self.audio_id, fail_code=clip.fail_code, fail_reason=clip.fail_reason)
        if not clip.is_completed or not clip.url:
            raise PixVerseResponseError(
                f"status {clip.status_label}: the clip is final but has no media URL", audio_id=self.audio_id
            )
        context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value=clip.url)
        target = resolve_destination(self.destination, clip, conn_id=self.storage_conn_id)
        size = existing_size(target)
        if size is not None and size == clip.file_size and not self.overwrite:
            self.log.info("%s already holds this clip (%d bytes); keeping it", target, size)
        else:
            with self.hook.open_media(clip.url) as media:
                written = write_download(
                    media, target, file_size=clip.file_size, max_bytes=self.max_bytes, overwrite=self.overwrite
                )
            size = written.size
            self.log.info("Wrote %d bytes of %s to %s", size, self.audio_id, target)
        uri = object_uri(target)
        self._lineage = (target, clip.url)
        if self.asset_alias is not None:
            context["outlet_events"][AssetAlias(name=self.asset_alias)].add(
                Asset(uri), extra={"audio_id": self.audio_id, "bytes": size, "duration": clip.duration}
            )
        context["ti"].xcom_push(
            key=SPEECH_XCOM_KEY,
            value={
                "audio_id": self.audio_id,
                "url": clip.url,
                "duration": clip.duration,
                "bytes": size,
                "destination": uri,
            },
        )
        return uri

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the clip's media file in, the written object out (needs the openlineage extra)."""
        from urllib.parse import urlsplit

        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        if self._lineage is None:
            return OperatorLineage()
        target, media_url = self._lineage
        media = urlsplit(media_url)
        return OperatorLineage(
            inputs=[Dataset(namespace=f"{media.scheme}://{media.netloc}", name=media.path.lstrip("/"))],
            outputs=[Dataset(namespace=target.namespace, name=target.key)],
        )


class PixVerseCreateSpeechOperator(_PixVerseClipOperator):
    """
    Create a speech clip and (by default) wait until it is final; returns the clip as a JSON dict.

    A task retry never pays twice: the new ``audio_id`` is saved in the task state store
    (Airflow 3.3+) before any wait, and a later try of the same task instance resumes that
    clip, creating anew only if it FAILED or is gone.

    :param text: The text to speak (templated).
    :param voice_id: A voice from ``list_voices()`` (templated).
    :param model: ``speech-2.8-hd`` (the API's default), ``speech-2.8-turbo``,
        ``eleven-multilingual-v2``, ``eleven-v3`` or ``eleven-turbo-v2.5``.
    :param account_email: The PixVerse account to use (default: the connection's ``email`` extra).
        Not ``email``: that is the alert address Airflow gives every operator.
    :param wait_for_completion: Wait for the clip and return it; when False, return the ``audio_id``.
    :param resubmit_on_failure: Create the clip again up to this many times when it ends FAILED.
    :param deferrable: Wait in the triggerer (the default).
    :param poll_interval: Seconds between checks while waiting.
    :param wait_timeout: Give up waiting after this many seconds.

    The other create settings (``language_code``, ``speed``, ``volume``, ``pitch``, ``emotion``,
    ``stability``, ``similarity_boost``, ``style``, ``use_speaker_boost``, ``reply_url``,
    ``reply_ref``, ``max_jobs``) are sent as given and checked against the model first.
    """

    template_fields: Sequence[str] = ("text", "voice_id", "model", "account_email", "language_code", "pixverse_conn_id")
    operator_extra_links = (PixVerseAudioLink(),)
    ui_color = "#e9d7fe"

    def __init__(
        self,
        *,
        text: str,
        voice_id: str,
        model: str | None = None,
        account_email: str | None = None,
        language_code: str | None = None,
        speed: float | None = None,
        volume: float | None = None,
        pitch: int | None = None,
        emotion: str | None = None,
        stability: float | None = None,
        similarity_boost: float | None = None,
        style: float | None = None,
        use_speaker_boost: bool | None = None,
        reply_url: str | None = None,
        reply_ref: str | None = None,
        max_jobs: int | None = None,
        wait_for_completion: bool = True,
        resubmit_on_failure: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.voice_id = voice_id
        self.model = model
        self.account_email = account_email
        self.language_code = language_code
        self.settings = {
            "speed": speed,
            "volume": volume,
            "pitch": pitch,
            "emotion": emotion,
            "stability": stability,
            "similarity_boost": similarity_boost,
            "style": style,
            "use_speaker_boost": use_speaker_boost,
            "reply_url": reply_url,
            "reply_ref": reply_ref,
            "max_jobs": max_jobs,
        }
        self.wait_for_completion = wait_for_completion
        self.resubmit_on_failure = resubmit_on_failure

    def execute(self, context: Context) -> Any:
        """Create (or resume the clip an earlier try created), then wait unless told not to."""
        audio_id = self._resume(context) or self._create(context)
        if not self.wait_for_completion:
            return audio_id
        return self._finish(context, self._wait_or_defer(audio_id, {"resubmits": 0}), resubmits=0)

    def execute_complete(self, context: Context, event: dict[str, Any], resubmits: int = 0) -> dict[str, Any]:
        """Resume after the trigger fired."""
        return self._finish(context, clip_from_event(event, timeout_error=AirflowTaskTimeout), resubmits=resubmits)

    def _resume(self, context: Context) -> str | None:
        """The ``audio_id`` an earlier try of this task instance created, if it is worth resuming."""
        store = context.get("task_state_store")
        if store is None:
            self.log.warning("No task state store (it needs Airflow 3.3+): a retry of this task will create a new clip")
            return None
        audio_id = store.get(AUDIO_ID_STATE_KEY)
        if not isinstance(audio_id, str):
            return None
        try:
            clip = self.hook.get_speech(audio_id)
        except PixVerseNotFoundError:
            self.log.warning("Clip %s from an earlier try is gone; creating a new one", audio_id)
            return None
        if clip.is_failed:
            self.log.warning("Clip %s from an earlier try FAILED (%s); creating a new one", audio_id, clip.fail_reason)
            return None
        self.log.info("Resuming clip %s created by an earlier try (%s)", audio_id, clip.status_label)
        return audio_id

    def _create(self, context: Context) -> str:
        audio_id = self.hook.create_speech(
            self.text,
            self.voice_id,
            model=self.model,
            email=self.account_email,
            language_code=self.language_code,
            **self.settings,
        )
        self.log.info("Created clip %s", audio_id)
        store = context.get("task_state_store")
        if store is not None:
            store.set(AUDIO_ID_STATE_KEY, audio_id)
        return audio_id

    def _finish(self, context: Context, clip: SpeechClip, *, resubmits: int) -> dict[str, Any]:
        while clip.is_failed and resubmits < self.resubmit_on_failure:
            resubmits += 1
            self.log.warning(
                "Clip %s FAILED (fail_code=%s, fail_reason=%s); re-submitting (%d of %d)",
                clip.audio_id,
                clip.fail_code,
                clip.fail_reason,
                resubmits,
                self.resubmit_on_failure,
            )
            clip = self._wait_or_defer(self._create(context), {"resubmits": resubmits})
        if clip.is_failed:
            raise PixVerseJobFailedError(audio_id=clip.audio_id, fail_code=clip.fail_code, fail_reason=clip.fail_reason)
        if clip.url:
            context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value=clip.url)
        return clip.to_json()
