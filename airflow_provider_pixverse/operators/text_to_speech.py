"""Text in, MP3 out, paid once: the one-task operator (also importable from :mod:`.pixverse`).

The steps are those of its docstring; each decision lives in a module of its own: the request
and lost answers in :mod:`.creating`, the plan (parts and cost) in :mod:`.speech_plan`, what the
destination holds and the metadata in :mod:`.speech_destination`, waiting in :mod:`.base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Asset, AssetAlias

from airflow_provider_pixverse._api.cost import check_max_credits, plain_credits
from airflow_provider_pixverse._api.errors import (
    PixVerseInvalidInputError,
    PixVerseResponseError,
)
from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
from airflow_provider_pixverse._api.waiting import events_of
from airflow_provider_pixverse.operators.base import (
    AUDIO_URL_XCOM_KEY,
    DEFAULT_MAX_BYTES,
    SPEECH_XCOM_KEY,
    PixVerseAudioLink,
)
from airflow_provider_pixverse.operators.speech_claiming import SpeechClaims, task_label
from airflow_provider_pixverse.operators.speech_destination import (
    SPLIT_MODES,
    MetadataStage,
    SpeechDestination,
    join_parts,
    speech_metadata,
)
from airflow_provider_pixverse.operators.speech_parts import PixVerseBasePartsOperator
from airflow_provider_pixverse.operators.speech_plan import describe_estimate, plan_job, read_text, replan_job
from airflow_provider_pixverse.storage import object_uri, step

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse._api.speech_request import SpeechRequest

__all__ = ["PixVerseTextToSpeechOperator"]

JOB_STATE_KEY = "pixverse_speech_job"
ESTIMATE_XCOM_KEY = "pixverse_credits_estimate"
# Parts of one text created at once. An account runs 1 to 8 jobs at once (its maxJobs); two keeps a
# long text from taking every slot of a small account, and a 429 (account busy) is waited out.
DEFAULT_PART_CONCURRENCY = 2


class PixVerseTextToSpeechOperator(PixVerseBasePartsOperator):
    """
    Text in, MP3 out, paid once: create the speech, wait for it, and land the MP3 in object storage, in one task.

    The steps, each skipped when an earlier run or try already did it:

    1. **Pay once.** The request is normalised and hashed into a content key (see
       :mod:`airflow_provider_pixverse._api.content`). When the destination already holds an
       object stored with that key and its bytes are intact, nothing is sent: 0 credits.
    2. **Know the cost.** The models list (``GET speech/models``, fetched once per connection per
       process) gives the model's ``max_characters`` and ``credit_formula``; the estimate is
       logged and pushed to XCom (``pixverse_credits_estimate``) before anything is sent, and
       ``max_credits`` refuses the task before any create when the estimate is over it. A 412
       (not enough credits) fails at once, naming the account.
    3. **Long texts.** A text longer than ``max_characters`` is split at paragraph, then
       sentence, then word boundaries (see :mod:`airflow_provider_pixverse._api.split`); the
       parts are created ``part_concurrency`` at a time and waited for together (one deferral).
       A part that ends FAILED is created again, alone, up to ``resubmit_on_failure`` times.
    4. **One MP3.** The parts are joined frame by frame into one MP3 (see
       :mod:`airflow_provider_pixverse.mp3join`), or, with ``split="parts"``, kept as numbered
       objects (``<name>-001.mp3``, ...). Objects are written as the download operator writes
       them: checked, published only when whole.
    5. **Metadata** (content key, audio_ids, the text's SHA-256 and length, voice, model,
       settings, credits estimated and charged, duration, bytes and SHA-256 of the MP3, when it
       was made) is stored with each object (see :mod:`airflow_provider_pixverse.speech_metadata`),
       pushed to XCom under ``pixverse_speech``, and is the extra of the asset event.

    A task retry never pays twice (Airflow 3.3+): the parts, their intents and their clips are
    kept in the task state store as they are made. Returns the object's URI (a list of URIs with
    ``split="parts"``).

    :param text: The text to speak (templated), or an ``ObjectStoragePath`` of a UTF-8 text object to
        read it from when the task runs: a text that comes through XCom is rendered as a template,
        a text read from a path is not. Normalised (NFC, line ends, surrounding space) before it
        is keyed and sent.
    :param voice_id: A voice from ``list_voices()`` (templated).
    :param destination: An object URI or ``ObjectStoragePath`` (templated): a file, or a folder
        (ends with ``/`` or has no suffix) that gets ``pixverse-<first 16 hex of the content key>.mp3``.
    :param max_credits: Fail before sending anything when the estimate is over this many credits.
    :param storage_conn_id: The Airflow connection of the object store, if it needs one (templated).
    :param overwrite: Replace an existing object that holds other content (by default the task
        fails before paying for anything); an object of the same request is always replaced when damaged.
    :param split: ``"join"`` (the default) for one MP3, ``"parts"`` for one numbered object per part.
    :param part_concurrency: How many parts are created at once (default 2, and never more than
        ``max_jobs`` when that is given); an account runs 1 to 8 jobs at once.
    :param capacity_timeout: How long parts refused because the account runs as many jobs as it may
        wait for a free slot (deferred, in the account's queue); default: ``wait_timeout``.
    :param resubmit_on_failure: Create a part again, alone, up to this many times when it ends FAILED.
    :param max_bytes: Refuse a part larger than this (default 1 GiB; ``None`` for no cap).
    :param asset_alias: Name of an asset alias the written object is emitted through (not on a
        re-run that found it already there).

    ``model``, ``account_email`` and the other create settings are those of
    :class:`PixVerseCreateSpeechOperator`, as are ``deferrable``, ``poll_interval`` and ``wait_timeout``.
    """

    template_fields: Sequence[str] = (
        "text",
        "voice_id",
        "model",
        "account_email",
        "language_code",
        "destination",
        "storage_conn_id",
        "pixverse_conn_id",
    )
    operator_extra_links = (PixVerseAudioLink(),)
    ui_color = "#fde2c8"
    _claim: SpeechClaims  # set when the task runs: its claim on the destination

    def __init__(
        self,
        *,
        text: str | ObjectStoragePath,
        voice_id: str,
        destination: str | ObjectStoragePath,
        max_credits: float | None = None,
        storage_conn_id: str | None = None,
        overwrite: bool = False,
        split: str = "join",
        part_concurrency: int = DEFAULT_PART_CONCURRENCY,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        asset_alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        if split not in SPLIT_MODES:
            raise PixVerseInvalidInputError(f"split={split!r} must be one of {', '.join(map(repr, SPLIT_MODES))}")
        if isinstance(part_concurrency, bool) or not isinstance(part_concurrency, int) or part_concurrency < 1:
            raise PixVerseInvalidInputError(f"part_concurrency={part_concurrency!r} must be a whole number from 1")
        if asset_alias is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(name=asset_alias)]
        super().__init__(text=text, voice_id=voice_id, **kwargs)  # type: ignore[arg-type]
        self.destination = destination
        self.max_credits = check_max_credits(max_credits)
        self.storage_conn_id = storage_conn_id
        self.overwrite = overwrite
        self.split = split
        self.part_concurrency = part_concurrency
        self.max_bytes = max_bytes
        self.asset_alias = asset_alias

    # -- the task ---------------------------------------------------------------------------

    def execute(self, context: Context) -> str | list[str]:
        """Reuse what the destination holds; else resume an earlier try, or plan and create; then wait and write."""
        self._start_link(context)
        store = self._state_store(context)
        request = self.speech_request(read_text(self.text))
        self._claim = self._claims(context, request, store)
        reused = self._reuse(context, request)
        if reused is not None:
            return reused
        job = self._saved_job(context, store, request) or self._plan(context, request, store)
        if isinstance(job, list):  # published by another run while this one waited for it
            return self._reused(context, request, job)
        return self._run_claimed(context, request, job, store)

    def execute_complete(
        self, context: Context, event: dict[str, Any], job: dict[str, Any] | None = None
    ) -> str | list[str]:
        """Resume after the trigger fired: take in the parts' ends, then carry on.

        The job's state comes back with the deferral; where it does not (``dag.test()`` runs the
        trigger in line and drops the deferral's kwargs), from the task state store, or else it is
        planned again and the event's clips taken as its parts.
        """
        request = self.speech_request(read_text(self.text))
        store = context.get("task_state_store")
        state = self._resumed_job(request, store, job, [str(one.get("audio_id")) for one in events_of(event)])
        self._claim = self._claims(context, request, store)
        self._claim.resume()
        self._apply(state, self.finals_from(event), store)
        return self._run_claimed(context, request, state, store)

    def execute_after_capacity(
        self,
        context: Context,
        event: dict[str, Any],
        queued_since: float | None = None,
        job: dict[str, Any] | None = None,
    ) -> str | list[str]:
        """Resume when the busy account may have a free job slot: create the parts not created yet, carry on."""
        self.capacity_event(event)
        queued_since = queued_since if queued_since is not None else event.get("queued_since")
        request = self.speech_request(read_text(self.text))
        store = context.get("task_state_store")
        state = self._resumed_job(request, store, job, None)
        self._claim = self._claims(context, request, store)
        self._claim.resume()
        return self._run_claimed(context, request, state, store, queued_since)

    def _resumed_job(
        self, request: SpeechRequest, store: Any, job: dict[str, Any] | None, audio_ids: list[str] | None
    ) -> SpeechJob:
        """The job a deferral came back with, else the one in the task state store, else planned again.

        Planned again, ``audio_ids`` (a wait's event's clips) are its parts; ``None``: none made yet.
        """
        state = SpeechJob.from_json(job)
        if state is None and store is not None:
            state = SpeechJob.from_json(store.get(JOB_STATE_KEY))
        if state is None and audio_ids is None:
            state, _ = plan_job(self.hook, request, email=self.account_email)
            self.log.warning("Resumed without the job's state after waiting for capacity: planned again")
        elif state is None:
            state = replan_job(self.hook, request, email=self.account_email, audio_ids=audio_ids or [])
            self.log.info("Resumed without the job's state: its %d part(s) are the event's clips", len(state.parts))
        if state.content_key != request.key:
            raise PixVerseResponseError("the deferral came back with the state of another request")
        return state

    # -- what is already there, the plan ---------------------------------------------------------

    @property
    def _destination(self) -> SpeechDestination:
        return SpeechDestination(self.destination, self.split, self.storage_conn_id, self.overwrite, self.log)

    def _claims(self, context: Context, request: SpeechRequest, store: Any) -> SpeechClaims:
        """This task's claim on the destination (see :mod:`.speech_claiming`)."""
        return SpeechClaims(
            self._destination.base(request),
            request,
            wait_timeout=self.wait_timeout,
            poll_interval=self.poll_interval,
            overwrite=self.overwrite,
            store=store,
            task=task_label(context["ti"]),
            clock=self.hook.clock,
            log=self.log,
            timeout_error=self.timeout_error,
        )

    def _reuse(self, context: Context, request: SpeechRequest) -> str | list[str] | None:
        """When the destination holds this request's speech, intact: its URI(s), having sent nothing."""
        found = self._destination.stored(request)
        if found is None:
            return None
        self._claim.release(done=True)  # a claim a killed run left behind
        return self._reused(context, request, found)

    def _reused(self, context: Context, request: SpeechRequest, found: list[dict[str, Any]]) -> str | list[str]:
        """The result of a run that found this request's speech published: sent nothing, 0 credits."""
        uris = [str(metadata["destination"]) for metadata in found]  # where found, not where first written
        self.log.info(
            "%s already holds this speech (content key %s...): no create sent, 0 credits",
            ", ".join(uris),
            request.key[:12],
        )
        context["ti"].xcom_push(key=ESTIMATE_XCOM_KEY, value={"credits": 0, "reused": True, "content_key": request.key})
        results = [{**metadata, "reused": True, "credits_estimated": 0, "credits_charged": 0} for metadata in found]
        return self._results(context, results)

    def _plan(self, context: Context, request: SpeechRequest, store: Any) -> SpeechJob | list[dict[str, Any]]:
        """Split the text, estimate the cost (refusing over ``max_credits``), check and claim the destination.

        Nothing is sent. Another run making the same speech is adopted or waited for (see
        :mod:`.speech_claiming`); when it published the speech meanwhile, its metadata is returned.
        """
        job, estimate = plan_job(self.hook, request, email=self.account_email)
        self._announce(context, job)
        estimate.refuse_over(self.max_credits, account=self._account_name())
        job.replace = self._destination.check_before_paying(request, len(job.parts))
        acquired = self._claim.acquire(job, lambda: self._destination.stored(request))
        if acquired.reused is not None:
            return acquired.reused
        if acquired.job is not None and acquired.job is not job:
            acquired.job.replace = acquired.job.replace or job.replace
            job = acquired.job
        self._save(store, job)
        return job

    def _announce(self, context: Context, job: SpeechJob) -> None:
        """Log the estimate and push it to XCom: before anything is sent."""
        self.log.info("%s", describe_estimate(job, self._account_name()))
        context["ti"].xcom_push(
            key=ESTIMATE_XCOM_KEY,
            value={**job.estimate, "reused": False, "content_key": job.content_key, "max_credits": self.max_credits},
        )

    def _saved_job(self, context: Context, store: Any, request: SpeechRequest) -> SpeechJob | None:
        """The job an earlier try of this task instance started, if it is of this request."""
        job = SpeechJob.from_json(store.get(JOB_STATE_KEY)) if store is not None else None
        if job is None:
            return None
        if job.content_key != request.key:
            self.log.info("An earlier try worked on another request (the text or settings changed): starting over")
            store.delete(JOB_STATE_KEY)
            return None
        created = sum(part.audio_id is not None for part in job.parts)
        done = len(job.parts) - len(job.pending())
        self.log.info(
            "Resuming what an earlier try started: %d part(s), %d created, %d COMPLETED", len(job.parts), created, done
        )
        self._announce(context, job)
        self._claim.resume()
        for part in job.pending():
            part.resubmits = 0
            if part.audio_id is not None and not self._earlier_clip_usable(part.audio_id):
                part.audio_id = part.intent = None
        self._save(store, job)
        return job

    # -- creating and waiting ------------------------------------------------------------------

    def _run(
        self, context: Context, request: SpeechRequest, job: SpeechJob, store: Any, queued_since: float | None = None
    ) -> str | list[str]:
        """Create the parts, wait for them (and for a busy account's capacity), re-submit FAILED ones; write."""
        self.create_and_wait(request, job, store, queued_since=queued_since)
        return self._write(context, request, job)

    def _run_claimed(
        self, context: Context, request: SpeechRequest, job: SpeechJob, store: Any, queued_since: float | None = None
    ) -> str | list[str]:
        """:meth:`_run`; a failure before every part is COMPLETED gives up the claim (there is nothing to adopt)."""
        try:
            return self._run(context, request, job, store, queued_since)
        except Exception:
            if job.pending():
                self._claim.release()
            raise

    def _save(self, store: Any, job: SpeechJob) -> None:
        if store is not None:
            store.set(JOB_STATE_KEY, job.to_json())
        claim = getattr(self, "_claim", None)
        if claim is not None:
            claim.update(job)  # other runs adopt the clips from it

    # -- writing -----------------------------------------------------------------------------

    def _write(self, context: Context, request: SpeechRequest, job: SpeechJob) -> str | list[str]:
        """Land the MP3 (joined, or one object per part), store its metadata, push it to XCom and the asset event."""
        from airflow_provider_pixverse._api.clip import SpeechClip

        clips = [SpeechClip.from_json(part.clip) for part in job.parts]
        urls = [self._url_of(clip) for clip in clips]
        context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value=urls[0])
        targets = self._destination.targets(request, len(job.parts))
        overwrite = self.overwrite or job.replace

        def fetch(
            clip: SpeechClip, target: ObjectStoragePath, *, replace: bool = True, stage: MetadataStage | None = None
        ) -> Any:
            return self._fetch(
                clip, self._url_of(clip), target, max_bytes=self.max_bytes, overwrite=replace, before_publish=stage
            )

        def stage_of(parts: list[PartState], of: list[SpeechClip], number: int | None = None) -> MetadataStage:
            return MetadataStage(
                lambda written, duration: speech_metadata(
                    request, job, parts, of, written, duration, part_number=number
                ),
                of[0].duration if len(of) == 1 else None,
            )

        # The metadata is staged with each object and published with it (see MetadataStage).
        stored: list[tuple[dict[str, Any], str]] = []
        if self.split == "parts":
            for part, clip, target in zip(job.parts, clips, targets, strict=True):
                stage = stage_of([part], [clip], part.index)
                stored.append(stage.finish(fetch(clip, target, replace=overwrite, stage=stage)))
        elif len(clips) == 1:
            stage = stage_of(job.parts, clips)
            stored.append(stage.finish(fetch(clips[0], targets[0], replace=overwrite, stage=stage)))
        else:
            stage = stage_of(job.parts, clips)
            written, _ = join_parts(fetch, clips, targets[0], overwrite=overwrite, log=self.log, stage=stage)
            stored.append(stage.finish(written))
        results = [metadata for metadata, _ in stored]
        for (metadata, where), target in zip(stored, targets, strict=True):
            self.log.info("Stored the speech's metadata (content key %s...) in %s", request.key[:12], where)
            if self.asset_alias is not None:
                context["outlet_events"][AssetAlias(name=self.asset_alias)].add(
                    Asset(object_uri(target)), extra=metadata
                )
        self._claim.release(done=True)
        step("released")
        charged = plain_credits(sum(metadata["credits_charged"] or 0 for metadata in results))
        self.log.info("Charged %s credits (estimated %s)", charged, job.estimate.get("credits"))
        return self._results(context, results)

    def _results(self, context: Context, results: list[dict[str, Any]]) -> str | list[str]:
        """Push the metadata to XCom; the URI(s) the task returns."""
        context["ti"].xcom_push(key=SPEECH_XCOM_KEY, value=results if self.split == "parts" else results[0])
        uris = [str(metadata["destination"]) for metadata in results]
        return uris if self.split == "parts" else uris[0]

    def _url_of(self, clip: SpeechClip) -> str:
        url = self._checked_url(clip)
        if url is None:
            raise PixVerseResponseError("the clip is COMPLETED but has no media URL", audio_id=clip.audio_id)
        return url
