"""The plan of a corpus, made before anything is paid: what is written already, what is left, what it costs.

:meth:`BatchPlanning._plan` looks at each distinct request's objects (``<destination>/<name>.mp3``,
by the one-task operator's rule: :meth:`~.speech_destination.SpeechDestination.stored`), refuses
before paying to replace other content, plans the rest (:func:`~.speech_plan.plan_job`: its parts
and their estimate), sums the estimate and refuses the corpus over ``max_credits``.
:meth:`BatchPlanning._resume_try` is the same for a retry that found the state of an earlier try.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.cost import plain_credits
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError
from airflow_provider_pixverse.exceptions import DestinationExistsError
from airflow_provider_pixverse.operators.batch_items import group_duplicates
from airflow_provider_pixverse.operators.batch_run import BatchRounds
from airflow_provider_pixverse.operators.batch_state import FAILED, PENDING, REUSED, BatchState, RequestState
from airflow_provider_pixverse.operators.speech_destination import MetadataStage, SpeechDestination
from airflow_provider_pixverse.operators.speech_plan import plan_job
from airflow_provider_pixverse.operators.text_to_speech import ESTIMATE_XCOM_KEY

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from airflow_provider_pixverse.operators.batch_items import BatchItem

MAX_NAMED = 20  # the most names an error lists (the others are counted)


class _QuietLog:
    """The task's logger with its info lines lowered to debug: a look at each item's object is not a log line."""

    def __init__(self, log: Any) -> None:
        self._log = log

    def info(self, *args: Any, **kwargs: Any) -> None:
        self._log.debug(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


class BatchPlanning(BatchRounds):
    """The plan of the corpus operator (see the module); it sets ``destination``, ``max_credits`` and ``accounts``."""

    destination: Any
    max_credits: float | None

    def _accounts(self) -> list[Any]:
        raise NotImplementedError

    def _folder(self) -> ObjectStoragePath:
        """The destination folder as a path."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        if isinstance(self.destination, ObjectStoragePath):
            return self.destination
        return ObjectStoragePath(str(self.destination), conn_id=self.storage_conn_id or None)

    def _quiet(self, target: ObjectStoragePath) -> SpeechDestination:
        return SpeechDestination(target, "join", self.storage_conn_id, self.overwrite, _QuietLog(self.log))

    def _plan(self, context: Context, items: dict[str, BatchItem]) -> BatchState:
        """Reuse what is written; plan the rest, estimate the corpus, refuse it over ``max_credits``; nothing sent."""
        state = BatchState(started=self.hook.clock.time())
        self._plan_groups(state, list(items.values()))
        reused = sum(request.status == REUSED for request in state.requests.values())
        to_create = [request for request in state.requests.values() if request.job is not None]
        credits = [request.job.estimate.get("credits") for request in to_create if request.job is not None]
        state.credits_estimated = None if None in credits else plain_credits(sum(c or 0 for c in credits))
        parts = sum(len(request.job.parts) for request in to_create if request.job is not None)
        characters = sum(request.job.estimate.get("characters") or 0 for request in to_create if request.job)
        self.log.info(
            "Estimated cost of the corpus: %s credits for %d request(s) to create (%d characters in %d part(s)), "
            "%d item(s) in all, %d request(s) found written (0 credits)",
            state.credits_estimated,
            len(to_create),
            characters,
            parts,
            len(items),
            reused,
        )
        self._push_estimate(context, state, len(to_create), parts)
        self._refuse_over(state.credits_estimated, len(to_create), characters)
        return state

    def _resume_try(self, context: Context, state: BatchState, items: dict[str, BatchItem]) -> BatchState:
        """Carry on from an earlier try's state: failed requests planned again, lost creates looked for."""
        by_key = {item.key: item for item in items.values()}
        new = [item for item in items.values() if item.key not in state.requests]
        self._plan_groups(state, new)
        for request in state.requests.values():
            if request.status == FAILED and request.key in by_key:
                job, _ = plan_job(self.hook, by_key[request.key].request, email=self._model_account())
                request.status, request.reason, request.job, request.sent_to = PENDING, None, job, {}
            for part in request.job.pending() if request.job is not None else []:
                part.resubmits = 0
        counts = state.counts()
        self.log.info(
            "Resuming what an earlier try started: %d request(s), %d done, %d in flight, %d to create",
            len(state.requests),
            counts["done"],
            counts["in_flight"],
            counts["waiting"],
        )
        self._recover_lost(state, by_key)
        to_create = [request for request in state.requests.values() if request.job is not None]
        self._push_estimate(context, state, len(to_create), sum(len(r.job.parts) for r in to_create if r.job))
        return state

    def _plan_groups(self, state: BatchState, items: list[BatchItem]) -> None:
        """Add each distinct request of ``items`` to ``state``: found written (copied to its other names) or planned."""
        folder = self._folder()
        taken: list[str] = []
        email = self._model_account()
        for key, group in group_duplicates(items).items():
            names = [item.name for item in group]
            found: dict[str, dict[str, Any]] = {}
            for item in group:
                stored = self._quiet(folder / f"{item.name}.mp3").stored(item.request)
                if stored is not None:
                    found[item.name] = stored[0]
            if found:
                state.requests[key] = self._reused(group, found, folder)
                continue
            for item in group:
                try:
                    self._quiet(folder / f"{item.name}.mp3").check_before_paying(item.request, 1)
                except DestinationExistsError:
                    taken.append(item.name)
            job, _ = plan_job(self.hook, group[0].request, email=email)
            state.requests[key] = RequestState(key, names, job=job)
        if taken:
            shown = ", ".join(taken[:MAX_NAMED]) + (
                f" and {len(taken) - MAX_NAMED} more" if len(taken) > MAX_NAMED else ""
            )
            raise DestinationExistsError(
                f"the objects of {len(taken)} item(s) in {folder} already exist with other content: {shown}; pass "
                "overwrite=True to replace them (nothing was sent, no credits spent)"
            )

    def _reused(
        self, group: list[BatchItem], found: dict[str, dict[str, Any]], folder: ObjectStoragePath
    ) -> RequestState:
        """A request found written under some of its names: copied to the others (nothing paid), all reused."""
        from airflow_provider_pixverse.storage import object_uri

        source_name, source = next(iter(found.items()))
        uris: list[str] = []
        for item in group:
            if item.name in found:
                uris.append(str(found[item.name]["destination"]))
                continue
            target = folder / f"{item.name}.mp3"

            def build(written: Any, duration: float | None, source: dict[str, Any] = source) -> dict[str, Any]:
                where = {"destination": object_uri(written.path), "bytes": written.size, "sha256": written.sha256}
                return {**source, **where}

            stage = MetadataStage(build, source.get("duration"))
            written = self._copy(
                folder / f"{source_name}.mp3", target, replace=self._damaged(target, item.request), stage=stage
            )
            metadata, _ = stage.finish(written)
            uris.append(str(metadata["destination"]))
        names = [item.name for item in group]
        self.log.info(
            "%s already hold(s) this speech (content key %s...): no create", ", ".join(names[:5]), group[0].key[:12]
        )
        result = {"audio_ids": list(source.get("audio_ids") or []), "credits": 0, "duration": source.get("duration")}
        return RequestState(group[0].key, names, status=REUSED, result={**result, "uris": uris})

    def _model_account(self) -> str | None:
        """The account whose models list prices the corpus (the first given)."""
        email: str | None = self._accounts()[0].email
        return email

    def _push_estimate(self, context: Context, state: BatchState, requests: int, parts: int) -> None:
        context["ti"].xcom_push(
            key=ESTIMATE_XCOM_KEY,
            value={
                "credits": state.credits_estimated,
                "requests": len(state.requests),
                "to_create": requests,
                "parts": parts,
                "max_credits": self.max_credits,
            },
        )

    def _refuse_over(self, credits: float | None, requests: int, characters: int) -> None:
        if self.max_credits is None or not requests:
            return
        if credits is None:
            raise PixVerseInvalidInputError(
                f"max_credits={plain_credits(self.max_credits)} is set, and the models list gives a model of the "
                "corpus no usable credit_formula: the corpus's cost cannot be estimated, nothing was sent"
            )
        if credits > self.max_credits:
            raise PixVerseInvalidInputError(
                f"the corpus would cost about {credits} credits ({requests} request(s) to create, {characters} "
                f"characters); max_credits is {plain_credits(self.max_credits)}: nothing was sent"
            )
