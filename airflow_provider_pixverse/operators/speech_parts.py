"""Creating the parts of a job and waiting for them: the base of the operators that speak texts in parts.

A job (:class:`~airflow_provider_pixverse._api.speech_job.SpeechJob`) holds every part of one text.
:meth:`PixVerseBasePartsOperator.create_and_wait` creates the parts that have no clip yet (each
intent recorded first, a lost answer looked for), waits for those not COMPLETED (deferred), sends
FAILED ones again, and waits for the account's capacity when it is busy, until every part is COMPLETED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseAccountBusyError, PixVerseError, PixVersePaymentError
from airflow_provider_pixverse._api.intent import CreateIntent
from airflow_provider_pixverse.operators.creating import PixVerseBaseCreatingOperator

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
    from airflow_provider_pixverse._api.speech_request import SpeechRequest
    from airflow_provider_pixverse._api.waiting import FinalClip


class PixVerseBasePartsOperator(PixVerseBaseCreatingOperator):
    """Base of the operators that create a text's parts; subclasses set ``part_concurrency`` and ``_save``."""

    part_concurrency: int

    def _save(self, store: Any, job: SpeechJob) -> None:
        raise NotImplementedError

    def create_and_wait(
        self, request: SpeechRequest, job: SpeechJob, store: Any, *, queued_since: float | None = None
    ) -> None:
        """Until every part is COMPLETED: create those with no clip, wait for those in flight, or for capacity.

        Waiting defers (resuming ``execute_complete`` with the job, or ``execute_after_capacity``
        with the job and when the account first refused).
        """
        busy = self._create_parts(request, job, store)
        while pending := job.pending():
            audio_ids = [part.audio_id for part in pending if part.audio_id is not None]
            if audio_ids:  # the parts in flight first: as they end, the account has room again
                self._apply(job, self._wait_all(audio_ids, {"job": job.to_json()}), store)
            elif busy is not None:
                queued_since = self.wait_for_capacity(
                    busy, queued_since=queued_since, resume_kwargs={"job": job.to_json()}
                )
            busy = self._create_parts(request, job, store)

    def _create_parts(self, request: SpeechRequest, job: SpeechJob, store: Any) -> PixVerseAccountBusyError | None:
        """Create every part that has no clip yet, ``part_concurrency`` at a time; each intent recorded first.

        Parts refused as busy stay without a clip (they made no job): the refusal is returned.
        """
        lost = [part for part in job.parts if part.audio_id is None and part.intent is not None]
        intents = [CreateIntent.from_json(part.intent) for part in lost]
        found = self.recover_lost_jobs(
            [(intent, self._part_request(request, part)) for part, intent in zip(lost, intents, strict=True) if intent],
            claimed=frozenset(part.audio_id for part in job.parts if part.audio_id),
        )
        for part, audio_id in zip([p for p, i in zip(lost, intents, strict=True) if i], found, strict=True):
            part.audio_id = audio_id
            if audio_id is None:
                part.intent = None
        todo = [part for part in job.parts if part.audio_id is None]
        for part in todo:
            part.intent = self._intent(self._part_request(request, part)).to_json()
        self._save(store, job)
        if not todo:
            return None
        busy: PixVerseAccountBusyError | None = None
        creates = [(part.text_of(request.text), self._create_arguments(request)) for part in todo]
        results = self.hook.create_speech_many(creates, concurrency=min(self._concurrency(), len(todo)))
        try:
            for index, result in results:
                part = todo[index]
                if isinstance(result, PixVerseAccountBusyError):
                    part.intent = None  # refused: no job to look for
                    busy = result
                elif isinstance(result, PixVerseError):
                    raise self._create_failed(job, part, result) from result
                else:
                    part.audio_id = result
                    self.log.info("Created part %d of %d: %s", part.index, len(job.parts), part.audio_id)
                self._save(store, job)
        finally:
            results.close()  # the creates not started yet are not sent
        return busy

    def _part_request(self, request: SpeechRequest, part: PartState) -> SpeechRequest:
        return request.with_text(part.text_of(request.text))

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

    def _concurrency(self) -> int:
        max_jobs = self.settings.get("max_jobs")
        return min(self.part_concurrency, max_jobs) if isinstance(max_jobs, int) else self.part_concurrency

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
                else:
                    part.resubmits = self._resubmit_or_raise(
                        final, part.resubmits, f"Part {part.index} of {len(job.parts)}"
                    )
                    part.audio_id = part.intent = None
        finally:
            self._save(store, job)
