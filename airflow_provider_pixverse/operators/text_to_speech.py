"""Text in, MP3 out, paid once: the one-task operator (also importable from :mod:`.pixverse`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    Asset,
    AssetAlias,
)

from airflow_provider_pixverse._api.content import audio_settings, content_key, normalise_text
from airflow_provider_pixverse._api.cost import estimate_cost, plain_credits
from airflow_provider_pixverse._api.create import DEFAULT_MODEL, MODELS, build_create_form
from airflow_provider_pixverse._api.errors import (
    PixVerseError,
    PixVerseInvalidInputError,
    PixVersePaymentError,
    PixVerseResponseError,
)
from airflow_provider_pixverse._api.intent import SEARCH_DEPTH, CreateIntent, find_intended, text_digest
from airflow_provider_pixverse._api.media import check_media_url, without_userinfo
from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
from airflow_provider_pixverse._api.split import split_text
from airflow_provider_pixverse.operators.pixverse import (
    AUDIO_URL_XCOM_KEY,
    DEFAULT_MAX_BYTES,
    SPEECH_XCOM_KEY,
    PixVerseAudioLink,
    _PixVerseCreatingOperator,
)
from airflow_provider_pixverse.waits import DEFERRAL_GRACE_SECONDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse._api.waiting import FinalClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
    from airflow_provider_pixverse.storage import WrittenObject

JOB_STATE_KEY = "pixverse_speech_job"
ESTIMATE_XCOM_KEY = "pixverse_credits_estimate"
SPLIT_MODES = ("join", "parts")
# Parts of one text created at once. An account runs 1 to 8 jobs at once (its maxJobs); two keeps a
# long text from taking every slot of a small account, and a 429 (account busy) is waited out.
DEFAULT_PART_CONCURRENCY = 2
# The most a text read from object storage may hold (about 100 parts of 10,000 characters).
MAX_TEXT_BYTES = 4 * 1024 * 1024


class PixVerseTextToSpeechOperator(_PixVerseCreatingOperator):
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
        self.max_credits = max_credits
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
        request = self._request()
        reused = self._reuse(context, request)
        if reused is not None:
            return reused
        job = self._saved_job(context, store, request) or self._plan(context, request, store)
        return self._run(context, request, job, store)

    def execute_complete(
        self, context: Context, event: dict[str, Any], job: dict[str, Any] | None = None
    ) -> str | list[str]:
        """Resume after the trigger fired: take in the parts' ends, then carry on.

        The job's state comes back with the deferral; where it does not (``dag.test()`` runs the
        trigger in line and drops the deferral's kwargs), from the task state store, or else it is
        planned again and the event's clips taken as its parts.
        """
        request = self._request()
        store = context.get("task_state_store")
        state = SpeechJob.from_json(job)
        if state is None and store is not None:
            state = SpeechJob.from_json(store.get(JOB_STATE_KEY))
        if state is None:
            state = self._replan(request, event)
        if state.content_key != request.key:
            raise PixVerseResponseError("the deferral came back with the state of another request")
        self._apply(state, self._finals_from(event), store)
        return self._run(context, request, state, store)

    # -- the request, and what is already there -----------------------------------------------

    def _request(self) -> _SpeechRequest:
        """The normalised request and its content key; the settings checked before anything is sent."""
        given = self._read_text() if not isinstance(self.text, str) else self.text
        text = normalise_text(given) if isinstance(given, str) else given
        if not isinstance(text, str) or not text:
            raise PixVerseInvalidInputError(f"text must be a non-empty string, got {given!r}")
        # The checks of every create setting (the text's length is checked part by part later).
        build_create_form(".", self.voice_id, model=self.model, language_code=self.language_code, **self.settings)
        settings = audio_settings({"language_code": self.language_code, **self.settings})
        key = content_key(text, self.voice_id, self.model, settings)
        return _SpeechRequest(text=text, key=key, model=self.model or DEFAULT_MODEL, settings=settings)

    def _read_text(self) -> object:
        """The text of ``text`` when it is an ``ObjectStoragePath``: a UTF-8 text object, read now."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        from airflow_provider_pixverse.speech_metadata import forget_cached
        from airflow_provider_pixverse.storage import object_uri, storage_failures

        if not isinstance(self.text, ObjectStoragePath):
            return self.text
        uri = object_uri(forget_cached(self.text))
        with storage_failures(f"reading the text from {uri}"), self.text.open("rb") as source:
            data = source.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            raise PixVerseInvalidInputError(f"the text at {uri} is over {MAX_TEXT_BYTES} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise PixVerseInvalidInputError(
                f"the text at {uri} is not UTF-8 ({error.reason} at byte {error.start})"
            ) from None

    def _target(self, request: _SpeechRequest) -> ObjectStoragePath:
        """The object of the whole speech: ``destination``, or a file named after the content key inside it."""
        from airflow_provider_pixverse._api.clip import SpeechClip
        from airflow_provider_pixverse.storage import resolve_destination

        named = SpeechClip(name=f"pixverse-{request.key[:16]}.mp3")
        return resolve_destination(self.destination, named, conn_id=self.storage_conn_id or None)

    def _targets(self, request: _SpeechRequest, parts: int) -> list[ObjectStoragePath]:
        """The objects written: the one object, or with ``split="parts"`` one numbered object per part."""
        base = self._target(request)
        if self.split == "join":
            return [base]
        return [base.parent / f"{base.stem}-{index:03d}{base.suffix or '.mp3'}" for index in range(1, parts + 1)]

    def _reuse(self, context: Context, request: _SpeechRequest) -> str | list[str] | None:
        """When the destination holds this request's speech, intact: its URI(s), having sent nothing."""
        from airflow_provider_pixverse.speech_metadata import forget_cached, read_metadata, stored_speech
        from airflow_provider_pixverse.storage import object_uri, storage_failures

        parts = 1
        if self.split == "parts":
            (first_part,) = self._targets(request, 1)
            with storage_failures(f"checking {object_uri(first_part)}"):
                exists = forget_cached(first_part).exists()
            first = read_metadata(first_part) if exists else None
            if first is None or first.get("content_key") != request.key or not isinstance(first.get("parts"), int):
                return None
            parts = first["parts"]
        found = []
        for target in self._targets(request, parts):
            metadata, why = stored_speech(target, request.key)
            if metadata is None:
                self.log.info("Creating the speech: %s", why)
                return None
            found.append(metadata)
        uris = [str(metadata["destination"]) for metadata in found]
        self.log.info(
            "%s already holds this speech (content key %s...): no create sent, 0 credits",
            ", ".join(uris),
            request.key[:12],
        )
        context["ti"].xcom_push(key=ESTIMATE_XCOM_KEY, value={"credits": 0, "reused": True, "content_key": request.key})
        results = [{**metadata, "reused": True, "credits_estimated": 0, "credits_charged": 0} for metadata in found]
        context["ti"].xcom_push(key=SPEECH_XCOM_KEY, value=results if self.split == "parts" else results[0])
        return uris if self.split == "parts" else uris[0]

    # -- planning: the cost, the parts, the destination ------------------------------------------

    def _plan(self, context: Context, request: _SpeechRequest, store: Any) -> SpeechJob:
        """Split the text, estimate the cost (refusing over ``max_credits``), check the destination; nothing sent."""
        from airflow_provider_pixverse.catalogue import model_catalogue

        limits = model_catalogue(self.hook, email=self.account_email).limits(request.model)
        documented = MODELS.get(request.model)
        max_characters = min(limits.max_characters, documented.max_characters if documented else limits.max_characters)
        spans = split_text(request.text, max_characters)
        estimate = estimate_cost(limits, [request.text[start:end] for start, end in spans])
        job = SpeechJob(
            content_key=request.key,
            max_characters=max_characters,
            estimate=estimate.to_json(),
            parts=[PartState(index, start, end) for index, (start, end) in enumerate(spans, 1)],
        )
        self._announce(context, job)
        estimate.refuse_over(self.max_credits, account=self._account_name())
        job.replace = self._check_destination(request, len(spans))
        self._save(store, job)
        return job

    def _replan(self, request: _SpeechRequest, event: dict[str, Any]) -> SpeechJob:
        """The job planned again after a deferral that lost its state: the event's clips are its parts, in order."""
        from airflow_provider_pixverse.catalogue import model_catalogue

        limits = model_catalogue(self.hook, email=self.account_email).limits(request.model)
        documented = MODELS.get(request.model)
        max_characters = min(limits.max_characters, documented.max_characters if documented else limits.max_characters)
        spans = split_text(request.text, max_characters)
        events = event.get("events") if event.get("status") == "clips" else [event]
        audio_ids = [str(one.get("audio_id")) for one in events] if isinstance(events, list) else []
        if len(audio_ids) != len(spans):
            raise PixVerseResponseError(
                f"the task resumed without the state of its {len(spans)} part(s), and the trigger's event names "
                f"{len(audio_ids)} clip(s): run it again (the parts already made are found at the destination "
                "only once written)"
            )
        estimate = estimate_cost(limits, [request.text[start:end] for start, end in spans])
        parts = [
            PartState(index, start, end, audio_id=audio_id)
            for index, ((start, end), audio_id) in enumerate(zip(spans, audio_ids, strict=True), 1)
        ]
        self.log.info("Resumed without the job's state: its %d part(s) are the event's clips", len(parts))
        return SpeechJob(request.key, max_characters, estimate.to_json(), parts=parts)

    def _announce(self, context: Context, job: SpeechJob) -> None:
        """Log the estimate and push it to XCom: before anything is sent."""
        estimate = job.estimate
        formula = estimate.get("credit_formula")
        rule = (
            f"{formula['unit_credits']} per {'started ' if formula['round_up'] else ''}"
            f"{formula['unit_characters']} characters"
            if formula
            else "no credit_formula in the models list"
        )
        self.log.info(
            "Estimated cost: %s credits for %d characters in %d part(s) of at most %d, model %s (%s), account %s",
            estimate["credits"],
            estimate["characters"],
            estimate["parts"],
            job.max_characters,
            estimate["model"],
            rule,
            self._account_name(),
        )
        context["ti"].xcom_push(
            key=ESTIMATE_XCOM_KEY,
            value={**estimate, "reused": False, "content_key": job.content_key, "max_credits": self.max_credits},
        )

    def _check_destination(self, request: _SpeechRequest, parts: int) -> bool:
        """Refuse, before paying, to replace another object; True when a damaged object of this request is there."""
        from airflow_provider_pixverse.speech_metadata import forget_cached, same_key_as
        from airflow_provider_pixverse.storage import DestinationExistsError, object_uri, storage_failures

        replace = False
        for target in self._targets(request, parts):
            forget_cached(target)
            with storage_failures(f"checking {object_uri(target)}"):
                exists = target.exists()
            if not exists:
                continue
            if same_key_as(target, request.key):
                self.log.warning("%s holds this speech, damaged: it will be replaced", object_uri(target))
                replace = True
            elif not self.overwrite:
                raise DestinationExistsError(
                    f"{object_uri(target)} already exists with other content; pass overwrite=True to replace it "
                    "(nothing was sent, no credits spent)"
                )
        return replace

    def _saved_job(self, context: Context, store: Any, request: _SpeechRequest) -> SpeechJob | None:
        """The job an earlier try of this task instance started, if it is of this request."""
        if store is None:
            return None
        job = SpeechJob.from_json(store.get(JOB_STATE_KEY))
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
        for part in job.pending():
            part.resubmits = 0
            if part.audio_id is not None and not self._earlier_clip_usable(part.audio_id):
                part.audio_id = part.intent = None
        self._save(store, job)
        return job

    # -- creating and waiting ------------------------------------------------------------------

    def _run(self, context: Context, request: _SpeechRequest, job: SpeechJob, store: Any) -> str | list[str]:
        """Create the parts not created yet, wait for those not COMPLETED (re-submitting FAILED ones), write."""
        self._create_parts(request, job, store)
        while pending := job.pending():
            finals = self._wait_parts(pending, job)
            self._apply(job, finals, store)
            self._create_parts(request, job, store)
        return self._write(context, request, job)

    def _create_parts(self, request: _SpeechRequest, job: SpeechJob, store: Any) -> None:
        """Create every part that has no clip yet, ``part_concurrency`` at a time; each intent recorded first."""
        todo = [part for part in job.parts if part.audio_id is None]
        if not todo:
            return
        self._find_lost(request, job, todo, store)
        todo = [part for part in job.parts if part.audio_id is None]
        if not todo:
            return
        for part in todo:
            part.intent = self._intent(part.text_of(request.text)).to_json()
        self._save(store, job)
        workers = min(self._concurrency(), len(todo))
        if workers == 1:
            for part in todo:
                try:
                    part.audio_id = self._send_create(part.text_of(request.text))
                except PixVerseError as error:
                    raise self._create_failed(job, part, error) from error
                self._created(job, part, store)
            return
        self._create_concurrently(request, job, todo, store, workers)

    def _create_concurrently(
        self, request: _SpeechRequest, job: SpeechJob, todo: list[PartState], store: Any, workers: int
    ) -> None:
        """The creates of ``todo`` from ``workers`` threads, each with its own HTTP session.

        The connection is read once, here (on Airflow 3 a task reads connections through its
        supervisor, from the task's own thread); the task state store is written from here too.
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor, as_completed

        from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

        settings = self.hook.settings
        local = threading.local()
        hooks: list[PixVerseHook] = []

        def create(text: str) -> str:
            hook = getattr(local, "hook", None)
            if hook is None:
                hook = PixVerseHook(self.pixverse_conn_id, retry_policy=self.hook.retry_policy, clock=self.hook.clock)
                vars(hook)["settings"] = settings  # the cached connection settings, read above
                local.hook = hook
                hooks.append(hook)
            return self._send_create(text, hook)

        failure: tuple[PartState, PixVerseError] | None = None
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pixverse-create") as pool:
                futures = {pool.submit(create, part.text_of(request.text)): part for part in todo}
                for future in as_completed(futures):
                    part = futures[future]
                    try:
                        part.audio_id = future.result()
                    except PixVerseError as error:
                        failure = failure or (part, error)
                        for other in futures:
                            other.cancel()  # the creates not started yet are not sent
                        continue
                    self._created(job, part, store)
        finally:
            for hook in hooks:
                hook.session.close()
        if failure is not None:
            failed_part, failed_with = failure
            raise self._create_failed(job, failed_part, failed_with) from failed_with

    def _created(self, job: SpeechJob, part: PartState, store: Any) -> None:
        self.log.info("Created part %d of %d: %s", part.index, len(job.parts), part.audio_id)
        self._save(store, job)

    def _create_failed(self, job: SpeechJob, part: PartState, error: PixVerseError) -> PixVerseError:
        """The error a failed create fails the task with; a 412 or 402 names the account."""
        if not isinstance(error, PixVersePaymentError):
            return error
        credits = (job.estimate.get("part_credits") or [None] * len(job.parts))[part.index - 1]
        return PixVersePaymentError(
            f"{error.reason}: account {self._account_name()} cannot pay for part {part.index} of {len(job.parts)} "
            f"({part.end - part.start} characters, about {credits} credits); top up the account",
            http_status=error.http_status,
        )

    def _find_lost(self, request: _SpeechRequest, job: SpeechJob, todo: list[PartState], store: Any) -> None:
        """The jobs of creates whose answers an earlier try never got (see :mod:`.._api.intent`)."""
        intents = [(part, CreateIntent.from_json(part.intent)) for part in todo]
        lost = [(part, intent) for part, intent in intents if intent is not None]
        if not lost:
            return
        clips = self.hook.list_speech(email=lost[0][1].email, max_items=SEARCH_DEPTH)
        claimed = {part.audio_id for part in job.parts if part.audio_id}
        for part, intent in lost:
            found = find_intended(intent, [clip for clip in clips if clip.audio_id not in claimed])
            if found is None or found.audio_id is None:
                part.intent = None
                continue
            self.log.warning(
                "An earlier try created part %d (%s) but never got the answer; resuming it", part.index, found.audio_id
            )
            part.audio_id = found.audio_id
            claimed.add(found.audio_id)
        self._save(store, job)

    def _concurrency(self) -> int:
        max_jobs = self.settings.get("max_jobs")
        return min(self.part_concurrency, max_jobs) if isinstance(max_jobs, int) else self.part_concurrency

    def _wait_parts(self, pending: list[PartState], job: SpeechJob) -> dict[str, FinalClip]:
        """The final clips of ``pending`` parts, some or all; defers (one trigger for all) when none is final."""
        kwargs = {"job": job.to_json()}
        if len(pending) == 1:
            (part,) = pending
            assert part.audio_id is not None
            return {part.audio_id: self._wait(part.audio_id, kwargs)}
        from airflow_provider_pixverse._api.waiting import ClipWaiter

        clock = self.hook.clock
        started = clock.time()
        deadline = started + self.wait_timeout
        waiters = [
            ClipWaiter(part.audio_id, deadline, self.poll_interval, started=started)
            for part in pending
            if part.audio_id is not None
        ]
        finals: dict[str, FinalClip] = {}
        due: dict[str, float] = {}
        for waiter in waiters:
            decision = self._poll_once(waiter)
            if decision.event is not None:
                finals[waiter.audio_id] = self.final_clip_from(decision.event)
            else:
                due[waiter.audio_id] = clock.time() + decision.wait
        if finals or not due:
            return finals  # those first (a FAILED one is re-submitted now); the others are waited for next
        if self.deferrable:
            from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechClipsTrigger

            self.defer(
                trigger=PixVerseSpeechClipsTrigger(
                    audio_ids=list(due),
                    end_time=deadline,
                    pixverse_conn_id=self.pixverse_conn_id,
                    poll_interval=self.poll_interval,
                    started=started,
                ),
                method_name="execute_complete",
                kwargs=kwargs,
                timeout=timedelta(seconds=deadline - clock.time() + DEFERRAL_GRACE_SECONDS),
            )
        by_id = {waiter.audio_id: waiter for waiter in waiters}
        while due:
            clock.sleep(max(min(due.values()) - clock.time(), 0.0))
            for audio_id in [a for a, at in due.items() if at <= clock.time()]:
                decision = self._poll_once(by_id[audio_id])
                if decision.event is not None:
                    finals[audio_id] = self.final_clip_from(decision.event)
                    del due[audio_id]
                else:
                    due[audio_id] = clock.time() + decision.wait
        return finals

    def _finals_from(self, event: dict[str, Any]) -> dict[str, FinalClip]:
        """The final clips an event carries: one clip's, or the parts' (an error or timeout raised again)."""
        events = event.get("events") if event.get("status") == "clips" else [event]
        finals = {}
        for one in events if isinstance(events, list) else []:
            final = self.final_clip_from(one)
            finals[str(one.get("audio_id"))] = final
        return finals

    def _apply(self, job: SpeechJob, finals: dict[str, FinalClip], store: Any) -> None:
        """Take in the parts that ended: COMPLETED ones are kept, FAILED ones re-submitted alone or the task fails."""
        try:
            for part in job.parts:
                final = finals.get(part.audio_id or "")
                if final is None or part.clip is not None:
                    continue
                if final.completed:
                    part.clip = final.clip.to_json()
                    self.log.info("Part %d of %d (%s) is COMPLETED", part.index, len(job.parts), part.audio_id)
                elif part.resubmits < self.resubmit_on_failure:
                    part.resubmits += 1
                    self.log.warning(
                        "Part %d of %d: %s; re-submitting it alone (%d of %d)",
                        part.index,
                        len(job.parts),
                        final.failure,
                        part.resubmits,
                        self.resubmit_on_failure,
                    )
                    part.audio_id = part.intent = None
                else:
                    raise final.failure
        finally:
            self._save(store, job)

    def _save(self, store: Any, job: SpeechJob) -> None:
        if store is not None:
            store.set(JOB_STATE_KEY, job.to_json())

    # -- writing -----------------------------------------------------------------------------

    def _write(self, context: Context, request: _SpeechRequest, job: SpeechJob) -> str | list[str]:
        """Land the MP3 (joined, or one object per part), store its metadata, push it to XCom and the asset event."""
        from airflow_provider_pixverse._api.clip import SpeechClip
        from airflow_provider_pixverse.speech_metadata import write_metadata
        from airflow_provider_pixverse.storage import object_uri

        clips = [SpeechClip.from_json(part.clip) for part in job.parts]
        urls = [self._checked_url(clip) for clip in clips]
        context["ti"].xcom_push(key=AUDIO_URL_XCOM_KEY, value=urls[0])
        targets = self._targets(request, len(job.parts))
        overwrite = self.overwrite or job.replace
        results: list[dict[str, Any]] = []
        if self.split == "parts":
            for part, clip, url, target in zip(job.parts, clips, urls, targets, strict=True):
                written = self._fetch(clip, url, target, max_bytes=self.max_bytes, overwrite=overwrite)
                results.append(self._metadata(request, job, [part], [clip], written, clip.duration))
        elif len(clips) == 1:
            written = self._fetch(clips[0], urls[0], targets[0], max_bytes=self.max_bytes, overwrite=overwrite)
            results.append(self._metadata(request, job, job.parts, clips, written, clips[0].duration))
        else:
            written, duration = self._join(clips, urls, targets[0], overwrite=overwrite)
            results.append(self._metadata(request, job, job.parts, clips, written, duration))
        for metadata, target in zip(results, targets, strict=True):
            where = write_metadata(target, metadata)
            self.log.info("Stored the speech's metadata (content key %s...) in %s", request.key[:12], where)
            if self.asset_alias is not None:
                context["outlet_events"][AssetAlias(name=self.asset_alias)].add(
                    Asset(object_uri(target)), extra=metadata
                )
        charged = plain_credits(sum(metadata["credits_charged"] or 0 for metadata in results))
        self.log.info("Charged %s credits (estimated %s)", charged, job.estimate.get("credits"))
        context["ti"].xcom_push(key=SPEECH_XCOM_KEY, value=results if self.split == "parts" else results[0])
        uris = [str(metadata["destination"]) for metadata in results]
        return uris if self.split == "parts" else uris[0]

    def _checked_url(self, clip: SpeechClip) -> str:
        if not clip.url:
            raise PixVerseResponseError("the clip is COMPLETED but has no media URL", audio_id=clip.audio_id)
        return check_media_url(without_userinfo(clip.url), api_scheme=self.hook.settings.origin[0])

    def _join(
        self, clips: list[SpeechClip], urls: list[str], target: ObjectStoragePath, *, overwrite: bool
    ) -> tuple[WrittenObject, float]:
        """Download the parts into a local folder, join them frame by frame, write the one MP3 to ``target``."""
        import tempfile
        from pathlib import Path

        from airflow.providers.common.compat.sdk import ObjectStoragePath

        from airflow_provider_pixverse.hooks.pixverse import MediaStream
        from airflow_provider_pixverse.mp3join import join_mp3
        from airflow_provider_pixverse.storage import write_download

        with tempfile.TemporaryDirectory(prefix="pixverse-join-") as folder:
            paths = []
            for index, (clip, url) in enumerate(zip(clips, urls, strict=True), 1):
                path = Path(folder) / f"part-{index:03d}.mp3"
                local = ObjectStoragePath(path.as_uri())
                self._fetch(clip, url, local, max_bytes=self.max_bytes, overwrite=True)
                paths.append(path)
            joined = join_mp3(paths, Path(folder) / "joined.mp3")
            self.log.info(
                "Joined %d parts into one MP3: %d bytes, %.3f s (%.3f s of it the encoder's padding at the joins)",
                len(paths),
                joined.size,
                joined.duration,
                joined.join_gap_seconds,
            )
            with (Path(folder) / "joined.mp3").open("rb") as source:
                media = MediaStream(
                    url=f"the MP3 joined from {len(paths)} parts",
                    status_code=200,
                    content_type="audio/mpeg",
                    content_length=joined.size,
                    chunks=iter(lambda: source.read(1024 * 1024), b""),
                )
                written = write_download(media, target, file_size=joined.size, max_bytes=None, overwrite=overwrite)
        return written, joined.duration

    def _metadata(
        self,
        request: _SpeechRequest,
        job: SpeechJob,
        parts: list[PartState],
        clips: list[SpeechClip],
        written: WrittenObject,
        duration: float | None,
    ) -> dict[str, Any]:
        """What is stored with an object, pushed to XCom and given to the asset event."""
        from datetime import UTC, datetime

        from airflow_provider_pixverse.storage import object_uri

        credits = [clip.credits for clip in clips]
        part_credits = job.estimate.get("part_credits")
        estimated = (
            job.estimate.get("credits")
            if len(parts) == len(job.parts) or not part_credits
            else sum(part_credits[part.index - 1] for part in parts)
        )
        metadata: dict[str, Any] = {
            "content_key": request.key,
            "audio_ids": [clip.audio_id for clip in clips],
            "text_sha256": text_digest(request.text),
            "text_length": len(request.text),
            "voice_id": self.voice_id,
            "model": request.model,
            "settings": request.settings,
            "credits_estimated": estimated,
            "credits_charged": None if None in credits else plain_credits(sum(c or 0 for c in credits)),
            "duration": None if duration is None else round(duration, 3),
            "bytes": written.size,
            "sha256": written.sha256,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "destination": object_uri(written.path),
            "parts": len(job.parts),
            "reused": False,
        }
        if self.split == "parts":
            metadata["part"] = parts[0].index
        return metadata


@dataclass(frozen=True)
class _SpeechRequest:
    """One request, normalised: what is sent and what is keyed."""

    text: str
    key: str
    model: str
    settings: dict[str, Any]
