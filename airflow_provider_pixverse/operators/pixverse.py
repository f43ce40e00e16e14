"""Operators that create speech and land the MP3 in object storage (and the one-task operator, by name)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Asset, AssetAlias

from airflow_provider_pixverse._api.errors import (
    PixVerseAccountBusyError,
    PixVerseInvalidInputError,
    PixVerseResponseError,
)
from airflow_provider_pixverse._api.intent import CreateIntent
from airflow_provider_pixverse._api.speech_request import Match
from airflow_provider_pixverse.operators.base import (
    AUDIO_URL_XCOM_KEY,
    DEFAULT_MAX_BYTES,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_WAIT_TIMEOUT,
    SPEECH_XCOM_KEY,
    PixVerseAudioLink,
    PixVerseBaseClipOperator,
)
from airflow_provider_pixverse.operators.creating import PixVerseBaseCreatingOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from airflow_provider_pixverse._api.speech_request import SpeechRequest
    from airflow_provider_pixverse._api.waiting import FinalClip

__all__ = [
    "AUDIO_ID_STATE_KEY",
    "AUDIO_URL_XCOM_KEY",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_WAIT_TIMEOUT",
    "INTENT_STATE_KEY",
    "SPEECH_XCOM_KEY",
    "PixVerseAudioLink",
    "PixVerseCreateSpeechOperator",
    "PixVerseDownloadSpeechOperator",
    "PixVerseTextToSpeechOperator",  # noqa: F822 -- lazily, by __getattr__
]

AUDIO_ID_STATE_KEY = "pixverse_audio_id"
INTENT_STATE_KEY = "pixverse_create_intent"


class PixVerseDownloadSpeechOperator(PixVerseBaseClipOperator):
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


class PixVerseCreateSpeechOperator(PixVerseBaseCreatingOperator):
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
        model (and ``language_code`` when given), and take it instead: no create, no credits. A clip
        does not show the other settings (``speed``, ``emotion``, ...): a request that sets one of
        them is never matched (it is created), and one that sets none matches clips made at any of
        them, so opt in where they do not vary.
    :param on_lost_answer: What a retry does when the answer of an earlier try's create was lost and
        the account shows a clip that only may be its job, or cannot be listed: ``"fail"`` (default)
        or ``"create"``.
    :param capacity_timeout: How long a create refused because the account runs as many jobs as it
        may waits for a free slot (deferred, in the account's queue); default: ``wait_timeout``.
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
        request = self.speech_request(self.text)
        audio_id = self._resume(store, request) or self._reuse_recent(store, request) or self._create(store, request)
        if not self.wait_for_completion:
            return audio_id
        return self._finish(context, self._wait(audio_id, {"resubmits": 0}), resubmits=0)

    def execute_complete(self, context: Context, event: dict[str, Any], resubmits: int = 0) -> dict[str, Any]:
        """Resume after the trigger fired."""
        return self._finish(context, self.final_clip_from(event), resubmits=resubmits)

    def _resume(self, store: Any, request: SpeechRequest) -> str | None:
        """The ``audio_id`` an earlier try of this task instance created (or sent with no answer back), if usable."""
        if store is None:
            return None
        audio_id = store.get(AUDIO_ID_STATE_KEY)
        if isinstance(audio_id, str):
            return audio_id if self._earlier_clip_usable(audio_id) else None
        intent = CreateIntent.from_json(store.get(INTENT_STATE_KEY))
        if intent is None:
            return None
        (found,) = self.recover_lost_jobs([(intent, request)])
        if found is not None:
            store.set(AUDIO_ID_STATE_KEY, found)
        return found

    def _reuse_recent(self, store: Any, request: SpeechRequest) -> str | None:
        """With ``reuse_from``: a COMPLETED clip of the account that is this request (by its rule), if any."""
        if not self.reuse_from or self.reuse_from < 1:
            return None
        for clip in self.hook.list_speech(email=self.account_email, max_items=self.reuse_from):  # newest first
            if not (clip.audio_id and clip.is_completed):
                continue
            match = request.matches(clip)
            if match is Match.UNSURE:
                self.log.info(
                    "Not reusing clip %s: a clip does not show %s, so it may differ",
                    clip.audio_id,
                    ", ".join(request.hidden_settings),
                )
                break
            if match is not Match.SAME:
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

    def _create(
        self, store: Any, request: SpeechRequest, *, queued_since: float | None = None, resubmits: int = 0
    ) -> str:
        """Send the create (its intent recorded first); a busy account is waited for, then it is sent again."""
        while True:
            if store is not None:
                store.set(INTENT_STATE_KEY, self._intent(request).to_json())
                store.delete(AUDIO_ID_STATE_KEY)
            try:
                audio_id = self._send_create(request)
            except PixVerseAccountBusyError as busy:
                if store is not None:
                    store.delete(INTENT_STATE_KEY)  # refused: it made no job, there is nothing to look for
                queued_since = self.wait_for_capacity(
                    busy, queued_since=queued_since, resume_kwargs={"resubmits": resubmits}
                )
                continue
            self.log.info("Created clip %s", audio_id)
            if store is not None:
                store.set(AUDIO_ID_STATE_KEY, audio_id)
            return audio_id

    def execute_after_capacity(
        self, context: Context, event: dict[str, Any], queued_since: float | None = None, resubmits: int = 0
    ) -> Any:
        """Resume when the busy account may have a free job slot: create, then wait unless told not to."""
        self.capacity_event(event)
        queued_since = queued_since if queued_since is not None else event.get("queued_since")
        store = self._state_store(context)
        audio_id = self._create(store, self.speech_request(self.text), queued_since=queued_since, resubmits=resubmits)
        if not self.wait_for_completion:
            return audio_id
        return self._finish(context, self._wait(audio_id, {"resubmits": resubmits}), resubmits=resubmits)

    def _finish(self, context: Context, final: FinalClip, *, resubmits: int) -> dict[str, Any]:
        while not final.completed:
            resubmits = self._resubmit_or_raise(final, resubmits)
            request = self.speech_request(self.text)
            audio_id = self._create(self._state_store(context), request, resubmits=resubmits)
            final = self._wait(audio_id, {"resubmits": resubmits})
        clip = final.raise_if_failed()
        self._media_url(context, clip)
        return clip.to_json()


def __getattr__(name: str) -> Any:
    """``PixVerseTextToSpeechOperator`` lives in :mod:`.text_to_speech`; it is imported from here too."""
    if name == "PixVerseTextToSpeechOperator":
        from airflow_provider_pixverse.operators.text_to_speech import PixVerseTextToSpeechOperator

        return PixVerseTextToSpeechOperator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
