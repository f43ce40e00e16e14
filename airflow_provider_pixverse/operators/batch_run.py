"""A corpus's rounds: create a window of parts over the accounts, take the finals in, write what is whole.

The steps of :class:`~airflow_provider_pixverse.operators.batch.PixVerseBatchTextToSpeechOperator`
between its plan and its manifest, each deciding one thing:

- :meth:`BatchRounds._send_window`: the parts that fit the accounts' free slots are given an
  account and an intent, saved in one save, sent at once (each create to its account, a 429 not
  retried), their audio_ids saved in one save. A 429 shrinks the account's window and leaves the
  part for the next round.
- :meth:`BatchRounds._recover_lost`: the parts an earlier try sent with no answer are looked for,
  one listing per account.
- :meth:`BatchRounds._apply_finals`: COMPLETED parts are kept; a FAILED one is sent again alone up
  to ``resubmit_on_failure`` times, then its request fails (the others go on).
- :meth:`BatchRounds._write_ready`: every request whose parts are all COMPLETED is written to each
  of its names, as the one-task operator writes (the same objects, metadata and content key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.cost import plain_credits
from airflow_provider_pixverse._api.errors import (
    PixVerseAccountBusyError,
    PixVerseAuthError,
    PixVerseConnectionError,
    PixVerseError,
    PixVersePaymentError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse._api.intent import CreateIntent
from airflow_provider_pixverse._api.waiting import FinalClip, events_of
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
    from airflow_provider_pixverse.operators.batch_accounts import AccountWindows
    from airflow_provider_pixverse.operators.batch_items import BatchItem

# A create that fails with one of these fails the task at once (the state is saved: a retry carries
# on): no other create would fare better (the token is refused, the account cannot pay), or the
# create may have reached the server (its job is looked for by the retry, from its intent).
_FATAL_CREATE_ERRORS = (
    PixVerseAuthError,
    PixVersePaymentError,
    PixVerseConnectionError,
    PixVerseServerError,
    PixVerseResponseError,
)
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
    storage_conn_id: str | None

    # -- creating -------------------------------------------------------------------------------

    def _send_window(
        self, state: BatchState, windows: AccountWindows, items: dict[str, BatchItem], store: Any
    ) -> dict[str | None, PixVerseAccountBusyError]:
        """Create as many parts as the windows' free slots allow; the accounts that refused busy."""
        chosen: list[tuple[RequestState, PartState, str | None]] = []
        now = self.hook.clock.time()
        for request in state.requests.values():
            for part in request.to_create():
                account = windows.next_account()
                if account is None:
                    break
                windows.started(account.email)
                part.intent = CreateIntent.of(
                    self._item_part(items[request.key], part), email=account.email, now=now
                ).to_json()
                request.sent_to[str(part.index)] = account.email
                chosen.append((request, part, account.email))
            else:
                continue
            break
        if not chosen:
            return {}
        self._save_state(store, state, windows)  # every intent of the window, in one save
        creates = [
            (part.text_of(items[request.key].text), {**self._item_arguments(items[request.key]), "email": email})
            for request, part, email in chosen
        ]
        busy: dict[str | None, PixVerseAccountBusyError] = {}
        fatal: PixVerseError | None = None
        results = self.hook.create_speech_many(creates, concurrency=len(creates))
        try:
            for index, result in results:
                request, part, email = chosen[index]
                if isinstance(result, PixVerseAccountBusyError):
                    windows.busy(email)
                    part.intent = None  # refused: no job was made, none to look for
                    busy[email] = result
                elif isinstance(result, _FATAL_CREATE_ERRORS):
                    windows.ended(email)
                    fatal = fatal or result  # its intent kept: a retry looks for its job
                elif isinstance(result, PixVerseError):
                    windows.ended(email)
                    part.intent = None
                    self._fail(request, f"the create of part {part.index} was refused: {result}")
                else:
                    windows.created(email)
                    part.audio_id = result
        finally:
            results.close()  # every create of the window was started at once: their answers are all taken in
            self._save_state(store, state, windows)  # every audio_id of the window, in one save
        if fatal is not None:
            raise fatal
        return busy

    def _item_arguments(self, item: BatchItem) -> dict[str, Any]:
        """The create's arguments but the text and the account: the item's voice, model and settings."""
        return {**item.create_arguments(), "retry_busy": False}

    def _item_part(self, item: BatchItem, part: PartState) -> SpeechRequest:
        """The request of one part of ``item``: its text with the item's settings."""
        return item.request.with_text(part.text_of(item.text))

    def _recover_lost(self, state: BatchState, items: dict[str, BatchItem]) -> None:
        """Find the jobs of creates an earlier try sent and got no answer for: one listing per account."""
        by_account: dict[str | None, list[tuple[PartState, CreateIntent, SpeechRequest]]] = {}
        for request in state.requests.values():
            for part in request.to_create():
                intent = CreateIntent.from_json(part.intent) if part.intent is not None else None
                if intent is None:
                    part.intent = None
                    continue
                one = (part, intent, self._item_part(items[request.key], part))
                by_account.setdefault(request.account_of(part), []).append(one)
        if not by_account:
            return
        claimed = frozenset(
            part.audio_id
            for request in state.requests.values()
            if request.job is not None
            for part in request.job.parts
            if part.audio_id
        )
        for lost in by_account.values():
            found = self.recover_lost_jobs([(intent, request) for _, intent, request in lost], claimed=claimed)
            for (part, _, _), audio_id in zip(lost, found, strict=True):
                part.audio_id = audio_id
                part.intent = None if audio_id is None else part.intent

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
        """Write every request whose parts are all COMPLETED, to each of its names; saved after each."""
        for request in state.requests.values():
            if request.status == FAILED or request.job is None or request.job.pending():
                continue
            try:
                request.result = self._write_request(request, items[request.key], folder)
            except PixVerseError as error:
                self._fail(request, f"writing its MP3 failed: {error}")
            else:
                request.status, request.job = DONE, None
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
