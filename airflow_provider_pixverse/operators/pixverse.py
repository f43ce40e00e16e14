"""Operators that create speech and land the MP3 in object storage, and their extra link."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowTaskTimeout,
    Asset,
    AssetAlias,
    BaseOperator,
    BaseOperatorLink,
    XCom,
)

from airflow_provider_pixverse._api.content import normalise_text
from airflow_provider_pixverse._api.create import DEFAULT_MODEL
from airflow_provider_pixverse._api.errors import (
    PixVerseBadRequestError,
    PixVerseInvalidInputError,
    PixVerseNotFoundError,
    PixVerseResponseError,
)
from airflow_provider_pixverse._api.intent import SEARCH_DEPTH, CreateIntent, find_intended, text_digest
from airflow_provider_pixverse._api.media import check_media_url, without_userinfo
from airflow_provider_pixverse._api.waiting import FinalClip, check_poll_interval, final_from_clip
from airflow_provider_pixverse.waits import ClipWaitMixin

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath, TaskInstanceKey

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
    from airflow_provider_pixverse.storage import WrittenObject

AUDIO_URL_XCOM_KEY = "pixverse_audio_url"
SPEECH_XCOM_KEY = "pixverse_speech"
AUDIO_ID_STATE_KEY = "pixverse_audio_id"
INTENT_STATE_KEY = "pixverse_create_intent"
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


class _PixVerseClipOperator(ClipWaitMixin):
    """Base of the operators: the hook, and waiting for a clip (see :class:`ClipWaitMixin`)."""

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

    def _start_link(self, context: Context) -> None:
        """An empty "PixVerse audio" link until there is a checked URL: the link never looks up a missing XCom."""
        context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value="")

    def _media_url(self, context: Context, clip: SpeechClip) -> str | None:
        """The clip's media URL once it passed the media checks (and without credentials); it becomes the link."""
        if not clip.url:
            return None
        url = check_media_url(without_userinfo(clip.url), api_scheme=self.hook.settings.origin[0])
        context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value=url)
        return url

    def _fetch(
        self, clip: SpeechClip, url: str, target: ObjectStoragePath, *, max_bytes: int | None, overwrite: bool
    ) -> WrittenObject:
        """Stream the clip's MP3 from its (checked) media URL into ``target`` (see :func:`write_download`)."""
        from airflow_provider_pixverse.storage import object_uri, write_download

        uri = object_uri(target)
        self.log.info("Downloading %s (%s bytes announced) to %s", clip.audio_id, clip.file_size or "no size", uri)
        started = time.monotonic()
        with self.hook.open_media(url, expected_bytes=clip.file_size or max_bytes) as media:
            written = write_download(media, target, file_size=clip.file_size, max_bytes=max_bytes, overwrite=overwrite)
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

    template_fields: Sequence[str] = ("audio_id", "destination", "storage_conn_id", "pixverse_conn_id")
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
        self._start_link(context)
        return self._download(context, self._wait(self.audio_id))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after the trigger fired, then download."""
        return self._download(context, self.final_clip_from(event))

    def _download(self, context: Context, final: FinalClip) -> str:
        from airflow_provider_pixverse.storage import object_uri, resolve_destination

        clip = final.raise_if_failed()
        url = self._media_url(context, clip)
        if url is None:
            raise PixVerseResponseError("the clip is COMPLETED but has no media URL", audio_id=self.audio_id)
        target = resolve_destination(self.destination, clip, conn_id=self.storage_conn_id)
        uri = object_uri(target)
        written = self._fetch(clip, url, target, max_bytes=self.max_bytes, overwrite=self.overwrite)
        self._lineage = (target, url)
        metadata: dict[str, Any] = {
            "audio_id": self.audio_id,
            "url": url,
            "duration": clip.duration,
            "bytes": written.size,
            "sha256": written.sha256,
            "destination": uri,
        }
        if self.asset_alias is not None:
            context["outlet_events"][AssetAlias(name=self.asset_alias)].add(Asset(uri), extra=metadata)
        context["ti"].xcom_push(key=SPEECH_XCOM_KEY, value=metadata)
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


class _PixVerseCreatingOperator(_PixVerseClipOperator):
    """Base of the operators that create clips: the create settings, the account, the create intent.

    The settings are sent as given and checked against the model first (by the hook, before
    anything is sent); :meth:`_intent` is what is recorded in the task state store before a create.
    """

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
        self.resubmit_on_failure = resubmit_on_failure

    def _state_store(self, context: Context) -> Any:
        store = context.get("task_state_store")
        if store is None:
            self.log.warning("No task state store (it needs Airflow 3.3+): a retry of this task will create a new clip")
        return store

    def _intent(self, text: str) -> CreateIntent:
        """The intent to create ``text`` with this task's voice, model and account, as of now."""
        return CreateIntent(
            text_sha256=text_digest(text),
            voice_id=self.voice_id,
            model=self.model or DEFAULT_MODEL,
            email=self.account_email or self.hook.settings.email,
            recorded_at=self.hook.clock.time(),
        )

    def _send_create(self, text: str, hook: PixVerseHook | None = None) -> str:
        """Send one create of ``text`` with this task's settings; the new ``audio_id``."""
        return (hook or self.hook).create_speech(
            text,
            self.voice_id,
            model=self.model,
            email=self.account_email,
            language_code=self.language_code,
            **self.settings,
        )

    def _earlier_clip_usable(self, audio_id: str) -> bool:
        """Whether a clip an earlier try created is worth resuming: not gone, and not final other than COMPLETED."""
        try:
            clip = self.hook.get_speech(audio_id)
        except PixVerseNotFoundError:
            self.log.warning("Clip %s from an earlier try is gone; creating a new one", audio_id)
            return False
        final = final_from_clip(clip)
        if final is not None and not final.completed:
            self.log.warning("Clip %s from an earlier try ended %s; creating a new one", audio_id, clip.status_label)
            return False
        self.log.info("Resuming clip %s created by an earlier try (%s)", audio_id, clip.status_label)
        return True

    def _account_name(self) -> str:
        """The PixVerse account creates go to, for messages."""
        account = self.account_email or self.hook.settings.email
        return repr(account) if account else f"the default account of connection {self.pixverse_conn_id!r}"


class PixVerseCreateSpeechOperator(_PixVerseCreatingOperator):
    """
    Create a speech clip and (by default) wait until it is final; returns the clip as a JSON dict.

    A task retry never pays twice (Airflow 3.3+, through the task state store): the intent to
    create is recorded before the request is sent and the new ``audio_id`` right after. A later
    try of the same task instance resumes that clip, creating anew only if it ended other than
    COMPLETED or is gone; when the answer of the create was lost, it finds the job the intent
    made in the account's listing (see :mod:`airflow_provider_pixverse._api.intent`).

    :param text: The text to speak (templated).
    :param voice_id: A voice from ``list_voices()`` (templated).
    :param model: ``speech-2.8-hd`` (the API's default), ``speech-2.8-turbo``,
        ``eleven-multilingual-v2``, ``eleven-v3`` or ``eleven-turbo-v2.5``.
    :param account_email: The PixVerse account to use (default: the connection's ``email`` extra).
        Not ``email``: that is the alert address Airflow gives every operator.
    :param wait_for_completion: Wait for the clip and return it; when False, return the ``audio_id``.
    :param resubmit_on_failure: Create the clip again up to this many times when it ends FAILED.
    :param reuse_from: Opt-in: before creating, look among the account's ``reuse_from`` newest clips
        for a COMPLETED one with the same text (``prompt``, compared normalised), ``voice_id`` and
        model (and ``language_code`` when given), and take it instead: no create, no credits. The
        listing does not show the other settings (speed, emotion, ...): opt in where they do not vary.
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
        wait_for_completion: bool = True,
        reuse_from: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if reuse_from is not None and (isinstance(reuse_from, bool) or not isinstance(reuse_from, int)):
            raise PixVerseInvalidInputError(f"reuse_from={reuse_from!r} must be a number of clips")
        self.wait_for_completion = wait_for_completion
        self.reuse_from = reuse_from

    def execute(self, context: Context) -> Any:
        """Create (or resume the clip an earlier try created, or reuse a recent one), then wait unless told not to."""
        self._start_link(context)
        store = self._state_store(context)
        audio_id = self._resume(store) or self._reuse_recent(store) or self._create(store)
        if not self.wait_for_completion:
            return audio_id
        return self._finish(context, self._wait(audio_id, {"resubmits": 0}), resubmits=0)

    def execute_complete(self, context: Context, event: dict[str, Any], resubmits: int = 0) -> dict[str, Any]:
        """Resume after the trigger fired."""
        return self._finish(context, self.final_clip_from(event), resubmits=resubmits)

    def _resume(self, store: Any) -> str | None:
        """The ``audio_id`` an earlier try of this task instance created, if it is worth resuming."""
        if store is None:
            return None
        audio_id = store.get(AUDIO_ID_STATE_KEY)
        if not isinstance(audio_id, str):
            return self._find_intended(store)
        return audio_id if self._earlier_clip_usable(audio_id) else None

    def _reuse_recent(self, store: Any) -> str | None:
        """With ``reuse_from``: a COMPLETED clip of the account with this text, voice and model, if any."""
        if not self.reuse_from or self.reuse_from < 1:
            return None
        text = normalise_text(self.text)
        model = self.model or DEFAULT_MODEL
        for clip in self.hook.list_speech(email=self.account_email, max_items=self.reuse_from):  # newest first
            if not (clip.audio_id and clip.is_completed and clip.prompt is not None):
                continue
            if clip.voice_id != self.voice_id or clip.model != model or normalise_text(clip.prompt) != text:
                continue
            if self.language_code is not None and clip.language_code != self.language_code:
                continue
            self.log.info(
                "Reusing clip %s: the account's %d newest clips hold this text, voice and model; no create, 0 credits",
                clip.audio_id,
                self.reuse_from,
            )
            if store is not None:
                store.set(AUDIO_ID_STATE_KEY, clip.audio_id)
            return clip.audio_id
        self.log.info("None of the account's %d newest clips is this speech: creating it", self.reuse_from)
        return None

    def _find_intended(self, store: Any) -> str | None:
        """The job of a create whose answer an earlier try never got (see :mod:`.._api.intent`)."""
        intent = CreateIntent.from_json(store.get(INTENT_STATE_KEY))
        if intent is None:
            return None
        try:
            clips = self.hook.list_speech(email=intent.email, max_items=SEARCH_DEPTH)
        except PixVerseBadRequestError as error:
            # The listing was refused (no account named where several are configured, say): the
            # create it meant would have been refused alike, so there is no job to find.
            self.log.warning("Could not look for the job an earlier try meant to create (%s): creating", error)
            return None
        found = find_intended(intent, clips)
        if found is None or found.audio_id is None:
            self.log.info("An earlier try meant to create a clip, and the account shows none like it: creating")
            return None
        self.log.warning("An earlier try created %s but never got the answer; resuming it", found.audio_id)
        store.set(AUDIO_ID_STATE_KEY, found.audio_id)
        return found.audio_id

    def _create(self, store: Any) -> str:
        if store is not None:
            store.set(INTENT_STATE_KEY, self._intent(self.text).to_json())
            store.delete(AUDIO_ID_STATE_KEY)
        audio_id = self._send_create(self.text)
        self.log.info("Created clip %s", audio_id)
        if store is not None:
            store.set(AUDIO_ID_STATE_KEY, audio_id)
        return audio_id

    def _finish(self, context: Context, final: FinalClip, *, resubmits: int) -> dict[str, Any]:
        while not final.completed and resubmits < self.resubmit_on_failure:
            resubmits += 1
            self.log.warning("%s; re-submitting (%d of %d)", final.failure, resubmits, self.resubmit_on_failure)
            final = self._wait(self._create(self._state_store(context)), {"resubmits": resubmits})
        clip = final.raise_if_failed()
        self._media_url(context, clip)
        return clip.to_json()


def __getattr__(name: str) -> Any:
    """``PixVerseTextToSpeechOperator`` lives in :mod:`.text_to_speech`; it is imported from here too."""
    if name == "PixVerseTextToSpeechOperator":
        from airflow_provider_pixverse.operators.text_to_speech import PixVerseTextToSpeechOperator

        return PixVerseTextToSpeechOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
