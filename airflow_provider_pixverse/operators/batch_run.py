"""A corpus's rounds: create a window of parts over the accounts, take the finals in, write what is whole.

The steps of :class:`~airflow_provider_pixverse.operators.batch.PixVerseBatchTextToSpeechOperator`
between its plan and its manifest, each deciding one thing:

- :meth:`BatchRounds._queue`: the next parts to create (up to ``parts_per_run`` and
  :data:`MAX_QUEUED_TEXT_BYTES` of text), each given an intent (saved in one save before the run).
  One run of the engine (:class:`~airflow_provider_pixverse.batch_driver.CorpusDriver`, in the
  triggerer or in the worker) creates them as the accounts' slots free and waits;
  :meth:`BatchRounds._apply_run` takes what it did into the state.
- :meth:`BatchRounds._recover_lost`: the parts an earlier try sent with no answer are looked for,
  one listing of each account.
- :meth:`BatchRounds._apply_finals`: COMPLETED parts are kept; a FAILED one is sent again alone up
  to ``resubmit_on_failure`` times, then its request fails (the others go on).
- :meth:`BatchRounds._write_ready`: every request whose parts are all COMPLETED is written to each
  of its names, as the one-task operator writes (the same objects, metadata and content key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.cost import plain_credits
from airflow_provider_pixverse._api.errors import PixVerseError, PixVerseResponseError, error_from_details
from airflow_provider_pixverse._api.intent import CreateIntent, match_lost_jobs, search_depth
from airflow_provider_pixverse._api.waiting import TIMEOUT, FinalClip, events_of
from airflow_provider_pixverse.batch_records import FlyingPart, QueuedPart
from airflow_provider_pixverse.operators.batch_state import DONE, FAILED, BatchState, RequestState
from airflow_provider_pixverse.operators.creating import PixVerseBaseCreatingOperator
from airflow_provider_pixverse.operators.speech_destination import (
    MetadataStage,
    SpeechDestination,
    join_parts,
    speech_metadata,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_pixverse._api.speech_job import PartState
    from airflow_provider_pixverse._api.speech_request import SpeechRequest
    from airflow_provider_pixverse.operators.batch_items import BatchItem

# One run of the engine (one deferral) takes at most this many parts and this much text: the
# trigger's kwargs stay small whatever the corpus, and the task resumes about once per this many parts.
DEFAULT_PARTS_PER_RUN = 500
MAX_PARTS_PER_RUN = 5000
MAX_QUEUED_TEXT_BYTES = 1024 * 1024
SAVE_EVERY_WRITES = 50  # writes between two saves of the corpus's state


def part_ref(key: str, index: int) -> str:
    """A part's reference in the engine's runs: its request's content key and its index."""
    return f"{key}:{index}"


_READ_BLOCK = 1024 * 1024


class WaitError(FinalClip):
    """A clip whose wait ended with an error (it is gone, or its answers are not clips): its part failed."""

    def __init__(self, audio_id: str, error: PixVerseError) -> None:
        super().__init__(SpeechClip(audio_id=audio_id), completed=False)
        object.__setattr__(self, "error", error)

    error: PixVerseError


class BatchRounds(PixVerseBaseCreatingOperator):
    """The rounds of the corpus operator (see the module); it sets the attributes used here."""

    max_bytes: int | None
    overwrite: bool
    parts_per_run: int
    storage_conn_id: str | None

    # -- creating and waiting: one run of the corpus's engine ---------------------------------------

    def _queue(self, state: BatchState, items: dict[str, BatchItem]) -> list[QueuedPart]:
        """The next parts to create, in the corpus's order, up to one run's bounds; each given its intent now."""
        queue: list[QueuedPart] = []
        text_bytes = 0
        now = self.hook.clock.time()
        for request in state.requests.values():
            for part in request.to_create():
                if part.audio_id is not None:
                    continue
                speech = self._item_part(items[request.key], part)
                size = len(speech.text.encode())
                if queue and (len(queue) >= self.parts_per_run or text_bytes + size > MAX_QUEUED_TEXT_BYTES):
                    return queue
                part.intent = CreateIntent.of(speech, email=None, now=now).to_json()
                queue.append(QueuedPart(part_ref(request.key, part.index), speech, now))
                text_bytes += size
        return queue

    def _flying(self, state: BatchState) -> list[FlyingPart]:
        """The parts in flight, each on the account it was sent to, with its wait's deadline."""
        flying: list[FlyingPart] = []
        for request in state.requests.values():
            for part in request.in_flight():
                assert part.audio_id is not None
                deadline = request.deadlines.get(str(part.index), self.hook.clock.time() + self.wait_timeout)
                flying.append(
                    FlyingPart(part_ref(request.key, part.index), part.audio_id, request.account_of(part), deadline)
                )
        return flying

    def _apply_run(self, state: BatchState, event: dict[str, Any]) -> PixVerseError | None:
        """What a run of the engine did, into the state; the error that ended it, if one must end the task."""
        if event.get("status") != "corpus":
            raise PixVerseResponseError(f"the corpus's trigger fired an event that is not a corpus run's: {event!r}")
        parts = {
            part_ref(request.key, part.index): (request, part)
            for request in state.requests.values()
            if request.job is not None
            for part in request.job.parts
        }
        for ref, audio_id in (event.get("created") or {}).items():
            if ref in parts:
                parts[ref][1].audio_id = str(audio_id)
        for ref, audio_id, email, deadline in event.get("in_flight") or []:
            if ref in parts:
                request, part = parts[ref]
                part.audio_id = str(audio_id)
                request.sent_to[str(part.index)] = email
                request.deadlines[str(part.index)] = float(deadline)
        for ref in event.get("queued") or []:
            if ref in parts and ref != event.get("fatal_ref"):
                parts[ref][1].intent = None  # never sent: no job to look for
        for ref, reason in (event.get("refused") or {}).items():
            if ref in parts:
                request, part = parts[ref]
                part.intent = None
                self._fail(request, f"the create of part {part.index} was refused: {reason}")
        finals: dict[str, FinalClip] = {}
        for one in event.get("events") or []:
            known = parts.get(str(one.get("ref")))
            if known is not None and known[1].audio_id is None and known[1].clip is None and one.get("audio_id"):
                known[1].audio_id = str(one["audio_id"])  # a state planned again (resumed without it) learns its clip
            if one.get("status") == TIMEOUT and one.get("ref") in parts:
                request, part = parts[one["ref"]]
                part.audio_id = None
                self._fail(request, str(one.get("message")))
                continue
            finals.update(self._finals_of(one))
        self._apply_finals(state, finals)
        if isinstance(event.get("windows"), dict):
            state.windows = event["windows"]
        fatal = event.get("fatal")
        return error_from_details(fatal) if isinstance(fatal, dict) else None

    def _item_part(self, item: BatchItem, part: PartState) -> SpeechRequest:
        """The request of one part of ``item``: its text with the item's settings."""
        return item.request.with_text(part.text_of(item.text))

    def _recover_lost(self, state: BatchState, items: dict[str, BatchItem]) -> None:
        """Find the jobs of creates an earlier try sent and got no answer for: one listing of each account."""
        lost: list[tuple[PartState, CreateIntent, SpeechRequest]] = []
        for request in state.requests.values():
            for part in request.to_create():
                intent = CreateIntent.from_json(part.intent) if part.intent is not None else None
                if intent is None:
                    part.intent = None
                    continue
                lost.append((part, intent, self._item_part(items[request.key], part)))
        if not lost:
            return
        claimed = frozenset(
            part.audio_id
            for request in state.requests.values()
            if request.job is not None
            for part in request.job.parts
            if part.audio_id
        )
        clips: list[SpeechClip] = []
        for email in self._account_emails():
            clips.extend(self.hook.list_speech(email=email, max_items=search_depth(len(lost))))
        found = match_lost_jobs(
            [(intent, speech) for _, intent, speech in lost],
            clips,
            claimed=claimed,
            on_lost_answer=self.on_lost_answer,
            log=self.log,
        )
        for (part, _, _), audio_id in zip(lost, found, strict=True):
            part.audio_id = audio_id
            part.intent = None if audio_id is None else part.intent

    def _account_emails(self) -> list[str | None]:
        raise NotImplementedError

    # -- waiting ------------------------------------------------------------------------------

    def _finals_of(self, event: dict[str, Any]) -> dict[str, FinalClip]:
        """The finals a trigger's event carries; a clip whose wait ended with an error is its part's failure."""
        finals: dict[str, FinalClip] = {}
        for one in events_of(event):
            audio_id = str(one.get("audio_id"))
            try:
                finals[audio_id] = self.final_clip_from(one)
            except PixVerseError as error:
                finals[audio_id] = WaitError(audio_id, error)
        return finals

    def _apply_finals(self, state: BatchState, finals: dict[str, FinalClip]) -> None:
        """COMPLETED parts kept; a FAILED one sent again alone up to ``resubmit_on_failure``, then its request fails."""
        for request in state.requests.values():
            for part in request.in_flight():
                final = finals.get(part.audio_id or "")
                if final is None:
                    continue
                if final.completed:
                    part.clip = final.clip.to_json()
                    continue
                failure = final.error if isinstance(final, WaitError) else final.failure
                if request.status != FAILED and part.resubmits < self.resubmit_on_failure:
                    part.resubmits += 1
                    self.log.warning(
                        "%s, part %d: %s; re-submitting it alone (%d of %d)",
                        request.names[0],
                        part.index,
                        failure,
                        part.resubmits,
                        self.resubmit_on_failure,
                    )
                    part.audio_id = part.intent = None
                else:
                    part.audio_id = None  # no longer in flight
                    self._fail(request, str(failure))

    def _fail(self, request: RequestState, reason: str) -> None:
        if request.status == FAILED:
            return
        request.status, request.reason = FAILED, reason
        self.log.warning("%s failed: %s", ", ".join(request.names[:5]), reason)

    # -- writing ------------------------------------------------------------------------------

    def _write_ready(
        self, state: BatchState, items: dict[str, BatchItem], folder: ObjectStoragePath, store: Any, windows: Any
    ) -> None:
        """Write every request whose parts are all COMPLETED, to each of its names; saved every few writes.

        Saving after every write would cost a store round trip per item. A write that a kill keeps
        out of the state is done again by the retry (the object holds its content key, so it is
        replaced, not refused; nothing is paid again).
        """
        unsaved = 0
        for request in state.requests.values():
            if request.status == FAILED or request.job is None or request.job.pending():
                continue
            try:
                request.result = self._write_request(request, items[request.key], folder)
            except PixVerseError as error:
                self._fail(request, f"writing its MP3 failed: {error}")
            else:
                request.status, request.job = DONE, None
                request.sent_to, request.deadlines = {}, {}
            unsaved += 1
            if unsaved >= SAVE_EVERY_WRITES:
                self._save_state(store, state, windows)
                unsaved = 0
        if unsaved:
            self._save_state(store, state, windows)

    def _write_request(self, request: RequestState, item: BatchItem, folder: ObjectStoragePath) -> dict[str, Any]:
        """Download (and join) the parts as the one-task operator does, to the first name; copied to the others."""
        job = request.job
        assert job is not None
        clips = [SpeechClip.from_json(part.clip) for part in job.parts]
        speech = item.request
        uris: list[str] = []
        duration: float | None = None
        first: ObjectStoragePath | None = None
        for name in request.names:
            target = folder / f"{name}.mp3"
            replace = self.overwrite or self._damaged(target, speech)
            stage = MetadataStage(
                lambda written, seconds: speech_metadata(speech, job, job.parts, clips, written, seconds),
                clips[0].duration if len(clips) == 1 else None,
            )
            if first is not None:
                written = self._copy(first, target, replace=replace, stage=stage)
            elif len(clips) == 1:
                written = self._fetch_clip(clips[0], target, replace=replace, stage=stage)
            else:
                written, _ = join_parts(
                    lambda clip, path: self._fetch_clip(clip, path, replace=True),
                    clips,
                    target,
                    overwrite=replace,
                    log=self.log,
                    stage=stage,
                )
            metadata, _ = stage.finish(written)
            duration = metadata["duration"]
            uris.append(str(metadata["destination"]))
            first = first or target
        credits = [clip.credits for clip in clips]
        self.log.info("Wrote %s (content key %s...)", ", ".join(uris[:5]), request.key[:12])
        return {
            "audio_ids": [clip.audio_id for clip in clips],
            "credits": None if None in credits else plain_credits(sum(c or 0 for c in credits)),
            "duration": duration,
            "uris": uris,
        }

    def _damaged(self, target: ObjectStoragePath, speech: SpeechRequest) -> bool:
        """Whether ``target`` holds this request's speech, damaged (checked at the plan: then it is replaced)."""
        return self._destination_of(target).check_before_paying(speech, 1)

    def _destination_of(self, target: ObjectStoragePath) -> SpeechDestination:
        return SpeechDestination(target, "join", self.storage_conn_id, self.overwrite, self.log)

    def _fetch_clip(
        self, clip: SpeechClip, target: ObjectStoragePath, *, replace: bool, stage: MetadataStage | None = None
    ) -> Any:
        url = self._checked_url(clip)
        if url is None:
            raise PixVerseError(f"the clip {clip.audio_id} is COMPLETED but has no usable media URL")
        return self._fetch(clip, url, target, max_bytes=self.max_bytes, overwrite=replace, before_publish=stage)

    def _copy(
        self, source: ObjectStoragePath, target: ObjectStoragePath, *, replace: bool, stage: MetadataStage
    ) -> Any:
        """The object at ``source`` written again at ``target`` (a duplicate's second name), checked as any write."""
        from airflow_provider_pixverse.storage import object_uri, storage_failures, write_stream

        with storage_failures(f"reading {object_uri(source)}"), source.open("rb") as data:
            return write_stream(
                iter(lambda: data.read(_READ_BLOCK), b""),
                target,
                origin=f"the copy of {object_uri(source)}",
                file_size=source.stat().st_size,
                overwrite=replace,
                before_publish=stage,
            )

    def _save_state(self, store: Any, state: BatchState, windows: Any) -> None:
        raise NotImplementedError
