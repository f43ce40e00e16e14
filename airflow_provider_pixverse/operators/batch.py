"""A corpus in one task: many texts spoken over several accounts, each within its job limit, paid once per text.

The items are read and checked in :mod:`.batch_items`, the accounts and their windows are
:mod:`.batch_accounts`, the manifest and the result :mod:`.batch_manifest`, the state kept across
tries :mod:`.batch_state`, and the rounds (create, take the finals in, write) :mod:`.batch_run`.
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api import capacity
from airflow_provider_pixverse._api.cost import check_max_credits, plain_credits
from airflow_provider_pixverse.exceptions import PixVerseBatchItemsFailedError, PixVerseInvalidInputError
from airflow_provider_pixverse.operators.base import DEFAULT_MAX_BYTES, DEFERRAL_GRACE_SECONDS
from airflow_provider_pixverse.operators.batch_accounts import AccountWindows, connection_accounts, parse_accounts
from airflow_provider_pixverse.operators.batch_items import read_items
from airflow_provider_pixverse.operators.batch_manifest import (
    MANIFEST_NAME,
    BatchResult,
    ManifestEntry,
    manifest_path,
    write_manifest,
)
from airflow_provider_pixverse.operators.batch_plan import BatchPlanning
from airflow_provider_pixverse.operators.batch_run import DEFAULT_PARTS_PER_RUN, MAX_PARTS_PER_RUN
from airflow_provider_pixverse.operators.batch_state import (
    BATCH_STATE_KEY,
    DONE,
    FAILED,
    REUSED,
    BatchState,
)
from airflow_provider_pixverse.operators.batch_store import BatchStateStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from airflow_provider_pixverse.batch_records import FlyingPart, QueuedPart
    from airflow_provider_pixverse.operators.batch_items import BatchItem

__all__ = ["BATCH_STATE_KEY", "PixVerseBatchTextToSpeechOperator"]


class PixVerseBatchTextToSpeechOperator(BatchPlanning):
    """
    Speak a corpus in one task: each item lands at ``<destination>/<name>.mp3``, paid once, with a manifest.

    1. **Check everything first.** Every item (name, text, settings) is read and checked before
       anything is sent; items with the same request (content key) are created once and written
       to every name.
    2. **Pay once per item.** An item whose object already holds its content key (written by this
       operator or by :class:`~airflow_provider_pixverse.operators.text_to_speech.PixVerseTextToSpeechOperator`
       with that destination: the same objects, metadata and key) is not sent. The rest is
       planned (long texts split as the one-task operator splits them), the corpus's estimate is
       logged and pushed to XCom (``pixverse_credits_estimate``), and ``max_credits`` refuses the
       task over it before the first create.
    3. **Windows, filled as slots free.** The parts to create go, a queue at a time (at most
       ``parts_per_run`` parts, 500 by default, and 1 MiB of text), to the corpus's engine
       (:class:`~airflow_provider_pixverse.batch_driver.CorpusDriver`): each account takes the
       next part whenever one of its slots frees (never more in flight on an account than its
       window, counting what this task has in flight there), so the accounts share the work in
       proportion to what they take; a 429 (another client busy on the account) shrinks that
       account's window and puts the part back for a later slot. One listing per account per
       ``poll_interval`` takes the finals in.
    4. **Waiting holds no worker slot.** The engine runs in the triggerer
       (:class:`~airflow_provider_pixverse.triggers.batch.PixVerseBatchTrigger`), and fires once its
       queue is all created (what still flies goes on in the next run), or, with nothing left to
       queue, once every part is final. The task therefore **resumes once per queue**: about
       ``parts / parts_per_run + 1`` times in all, whatever the accounts' limits, instead of once per clip
       (a resume costs the Airflow round trip of a task instance, which is what this operator
       avoids). With ``deferrable=False`` the same engine runs in the worker.
    5. **Write.** On each resume the finals are taken in (a FAILED part is sent again alone up to
       ``resubmit_on_failure`` times, then its item fails and the others go on; a clip still not
       final ``wait_timeout`` after its create fails its item), every request whose parts are all
       COMPLETED is written (downloaded, joined, checked, with its metadata), and the next queue is
       handed on. A progress line is logged per resume, and by the engine every 30 s.
    6. **Manifest.** At the end ``<destination>/manifest.jsonl`` (one JSON line per item) is
       written and the small result returned (see
       :class:`~airflow_provider_pixverse.operators.batch_manifest.BatchResult`). The task fails
       naming the failed items (:class:`~airflow_provider_pixverse.exceptions.PixVerseBatchItemsFailedError`)
       unless ``allow_failed_items``; what succeeded is kept either way, and a re-run sends only
       what is missing.

    A kill at any moment loses nothing and pays nothing twice (Airflow 3.3+): the state (each
    request's parts, intents and clips, the account each part went to) is kept in the task state
    store (``pixverse_batch`` and its shards of 25 requests, each save writing only the shards
    that changed: see :mod:`.batch_store`), saved before each queue is handed on (every queued
    part's intent), after each run, and every 50 writes. A triggerer killed mid-run: the trigger
    runs again elsewhere and first looks for the jobs its queue made (one listing per account);
    a worker killed after a run: the retry does the same from the saved intents.

    :param texts: The items (templated): a mapping of name to text, a list of ``{"name": ..., "text": ...}``
        dicts (each may carry its own ``voice_id``, ``model`` and audio settings), or an
        ``ObjectStoragePath`` or URI of a folder of ``*.txt`` objects (see :mod:`.batch_items`).
    :param voice_id: The voice of every item that names none (templated).
    :param destination: The folder the MP3s and the manifest land in (templated).
    :param accounts: The accounts to spread the corpus over, each with its job limit (see
        :func:`~airflow_provider_pixverse.operators.batch_accounts.parse_accounts`); default: the
        connection's extra ``accounts``, else its account (``account_email``) at 3.
    :param max_credits: Fail before sending anything when the corpus's estimate is over this.
    :param allow_failed_items: Succeed although items failed for good (they are in the result and the manifest).
    :param storage_conn_id: The Airflow connection of the object store, if it needs one (templated).
    :param overwrite: Replace objects that hold other content (by default the task fails before paying).
    :param max_bytes: Refuse a part larger than this (default 1 GiB; ``None`` for no cap).
    :param manifest_name: The manifest's name in ``destination``.
    :param parts_per_run: The most parts one run of the engine (one deferral) creates (1 to 5,000;
        and at most 1 MiB of their text): fewer means more resumes, and the MP3s written sooner.

    ``model`` and the other create settings, ``resubmit_on_failure``, ``on_lost_answer``,
    ``capacity_timeout`` (how long every account may stay busy with parts still to create),
    ``deferrable``, ``poll_interval`` and ``wait_timeout`` (each clip's wait, from its create) are those of
    :class:`~airflow_provider_pixverse.operators.text_to_speech.PixVerseTextToSpeechOperator`.
    """

    template_fields: Sequence[str] = (
        "texts",
        "voice_id",
        "model",
        "language_code",
        "destination",
        "accounts",
        "storage_conn_id",
        "pixverse_conn_id",
    )
    ui_color = "#fde2c8"

    def __init__(
        self,
        *,
        texts: Any,
        destination: str | ObjectStoragePath,
        voice_id: str | None = None,
        accounts: Any = None,
        max_credits: float | None = None,
        allow_failed_items: bool = False,
        storage_conn_id: str | None = None,
        overwrite: bool = False,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
        manifest_name: str = MANIFEST_NAME,
        parts_per_run: int = DEFAULT_PARTS_PER_RUN,
        **kwargs: Any,
    ) -> None:
        super().__init__(text="", voice_id=voice_id, **kwargs)  # type: ignore[arg-type]
        self.texts = texts
        self.destination = destination
        self.accounts = accounts
        self.max_credits = check_max_credits(max_credits)
        self.allow_failed_items = allow_failed_items
        self.storage_conn_id = storage_conn_id
        self.overwrite = overwrite
        self.max_bytes = max_bytes
        self.manifest_name = manifest_name
        if isinstance(parts_per_run, bool) or not isinstance(parts_per_run, int):
            raise PixVerseInvalidInputError(f"parts_per_run={parts_per_run!r} must be a whole number")
        if not 1 <= parts_per_run <= MAX_PARTS_PER_RUN:
            raise PixVerseInvalidInputError(f"parts_per_run={parts_per_run} must be from 1 to {MAX_PARTS_PER_RUN}")
        self.parts_per_run = parts_per_run

    # -- the task -------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Check every item, reuse what is written, plan and estimate the rest (or resume a try); then the rounds."""
        store = _sharded(self._state_store(context))
        items = self._items()
        saved = store.load() if store is not None else None
        state = self._resume_try(context, saved, items) if saved is not None else self._plan(context, items)
        self._save_state(store, state, None)
        return self._rounds(context, state, items, store)

    def execute_complete(
        self, context: Context, event: dict[str, Any], batch: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after a run of the corpus's engine: take what it did in, write what is whole, hand on the rest."""
        store = _sharded(context.get("task_state_store"))
        items = self._items()
        state = self._resumed_state(context, store, batch, items)
        state.resumes += 1
        fatal = self._apply_run(state, event)
        self._save_state(store, state, None)
        if fatal is not None:
            raise fatal
        return self._rounds(context, state, items, store)

    def _items(self) -> dict[str, BatchItem]:
        """The corpus's items, every one checked (nothing sent before), by name."""
        defaults = {"voice_id": self.voice_id, "model": self.model, "language_code": self.language_code}
        items = read_items(self.texts, defaults={**defaults, **self.settings}, conn_id=self.storage_conn_id)
        return {item.name: item for item in items}

    def _resumed_state(self, context: Context, store: Any, batch: Any, items: dict[str, BatchItem]) -> BatchState:
        state = store.load() if store is not None else None
        state = state or BatchState.from_json(batch)
        if state is None:
            self.log.warning("Resumed without the corpus's state: planning again from what the destination holds")
            return self._plan(context, items)
        return state

    # -- the rounds -----------------------------------------------------------------------------

    def _rounds(self, context: Context, state: BatchState, items: dict[str, BatchItem], store: Any) -> dict[str, Any]:
        """Until no part is left: write what is whole, hand the next queue and what flies to a run of the engine."""
        by_key = {item.key: item for item in items.values()}
        missing = [key for key in state.requests if key not in by_key]
        if missing:  # the corpus changed under a resumed state: those requests are no longer this task's
            for key in missing:
                del state.requests[key]
        windows = self._windows(state)
        folder = self._folder()
        while True:
            self._write_ready(state, by_key, folder, store, windows)
            self._progress(state)
            queue = self._queue(state, by_key)
            flying = self._flying(state)
            if not queue and not flying:
                break
            self._save_state(store, state, windows)  # the queue's intents, in one save
            event = self._run_engine(state, windows, queue, flying, store)
            fatal = self._apply_run(state, event)
            windows = self._windows(state)
            self._save_state(store, state, windows)
            if fatal is not None:
                raise fatal
        return self._finish(context, state, items, store)

    def _run_engine(
        self, state: BatchState, windows: AccountWindows, queue: list[QueuedPart], flying: list[FlyingPart], store: Any
    ) -> dict[str, Any]:
        """One run of the corpus's engine: deferred to the triggerer (raises ``TaskDeferred``), or here."""
        from airflow_provider_pixverse.triggers.batch import PixVerseBatchTrigger, drive_corpus

        now = self.hook.clock.time()
        slots = max(sum(windows.windows.values()), 1)
        capacity_timeout = self.wait_timeout if self.capacity_timeout is None else self.capacity_timeout
        end_time = now + max(self.wait_timeout, capacity_timeout) * (1 + math.ceil(len(queue) / slots))
        kwargs: dict[str, Any] = {
            "queue": [part.to_json() for part in queue],
            "in_flight": [part.to_json() for part in flying],
            "windows": windows.to_json(),
            "end_time": end_time,
            "deferred_at": now,
            "not_before": now + capacity.SETTLE_SECONDS,
            "pixverse_conn_id": self.pixverse_conn_id,
            "poll_interval": self.poll_interval,
            "wait_timeout": self.wait_timeout,
            "capacity_timeout": capacity_timeout,
            "on_lost_answer": self.on_lost_answer,
        }
        self.log.info(
            "Handing %d part(s) to create and %d in flight to the corpus's engine (%s)",
            len(queue),
            len(flying),
            "in the triggerer" if self.deferrable else "in this worker",
        )
        if not self.deferrable:
            kwargs["not_before"] = now  # no deferral: no Airflow race to stay clear of

            async def here() -> dict[str, Any]:
                try:
                    return await drive_corpus(self.hook, log=self.log, **kwargs)
                finally:
                    await self.hook.aclose()  # this event loop ends with the run

            return asyncio.run(here())
        self.defer(
            trigger=PixVerseBatchTrigger(**kwargs),
            method_name="execute_complete",
            kwargs={"batch": state.to_json() if store is None else None},
            timeout=timedelta(seconds=end_time - now + DEFERRAL_GRACE_SECONDS),
        )
        raise AssertionError("unreachable: defer() raises")  # pragma: no cover

    def _windows(self, state: BatchState) -> AccountWindows:
        """The accounts' windows: as saved when the accounts are the same, else fresh; nothing counted in flight."""
        accounts = self._accounts()
        windows = AccountWindows(accounts)
        saved = AccountWindows.from_json(state.windows)
        if saved is not None and saved.limits == windows.limits and saved.accounts == windows.accounts:
            windows = saved
        return windows

    def _account_emails(self) -> list[str | None]:
        return [account.email for account in self._accounts()]

    def _accounts(self) -> list[Any]:
        if self.accounts is not None:
            return parse_accounts(self.accounts)
        settings = self.hook.settings
        if settings.accounts is None and self.account_email:
            return parse_accounts([self.account_email])
        return connection_accounts(settings.accounts, email=settings.email, conn_id=self.pixverse_conn_id)

    def _save_state(self, store: Any, state: BatchState, windows: Any) -> None:
        if windows is not None:
            state.windows = windows.to_json()
        if store is not None:
            store.save(state)

    def _progress(self, state: BatchState) -> None:
        """One line per round: done / in flight / waiting, credits so far, the time left at the current rate."""
        counts = state.counts()
        elapsed = max(self.hook.clock.time() - state.started, 0.0)
        left = counts["in_flight"] + counts["waiting"]
        made = counts["done"]
        eta = f"about {left * elapsed / made:.0f} s left at the current rate" if made and left else "rate unknown yet"
        self.log.info(
            "Corpus: %d of %d request(s) done, %d in flight, %d waiting, %d failed; %s credits charged so far "
            "(estimated %s); %s",
            made,
            len(state.requests),
            counts["in_flight"],
            counts["waiting"],
            counts["failed"],
            plain_credits(state.credits_charged()),
            state.credits_estimated,
            eta if left else "nothing left",
        )

    # -- the end ---------------------------------------------------------------------------------

    def _finish(self, context: Context, state: BatchState, items: dict[str, BatchItem], store: Any) -> dict[str, Any]:
        """Write the manifest, return the small result; fail naming the failed items unless they are allowed."""
        result = BatchResult(credits_estimated=state.credits_estimated)
        target = manifest_path(self.destination, self.manifest_name, conn_id=self.storage_conn_id)
        write_manifest(target, self._entries(state, items), result=result)
        summary = result.to_json()
        self.log.info(
            "Corpus finished: %d item(s): %s; %s credits charged (estimated %s); manifest %s",
            result.items,
            ", ".join(f"{count} {status}" for status, count in result.counts.items() if count),
            result.credits_charged,
            result.credits_estimated,
            result.manifest,
        )
        if result.counts.get("failed"):
            names = ", ".join(result.failed) + (f" and {result.failed_more} more" if result.failed_more else "")
            message = f"{result.counts['failed']} item(s) failed for good: {names} (their reasons are in {target})"
            if not self.allow_failed_items:
                raise PixVerseBatchItemsFailedError(f"{message}; the others were written, a re-run sends only these")
            self.log.warning("%s; allow_failed_items=True: the task succeeds", message)
        elif store is not None:
            store.delete()  # all written: a re-run looks at the objects themselves
        return summary

    def _entries(self, state: BatchState, items: dict[str, BatchItem]) -> Iterator[ManifestEntry]:
        for item in items.values():
            request = state.requests.get(item.key)
            if request is None:
                yield ManifestEntry(item.name, item.key, "failed", reason="not in the corpus's state")
                continue
            position = request.names.index(item.name) if item.name in request.names else 0
            result = request.result or {}
            uris = result.get("uris") or []
            uri = uris[position] if position < len(uris) else None
            if request.status in (DONE, REUSED):
                reused = request.status == REUSED
                yield ManifestEntry(
                    item.name,
                    item.key,
                    "reused" if reused else "done",
                    audio_ids=tuple(result.get("audio_ids") or ()),
                    credits=0 if reused or position else result.get("credits"),
                    duration=result.get("duration"),
                    uri=uri,
                )
            elif request.status == FAILED:
                yield ManifestEntry(item.name, item.key, "failed", reason=request.reason)
            else:
                yield ManifestEntry(item.name, item.key, "pending")


def _sharded(store: Any) -> BatchStateStore | None:
    """The corpus's state kept in ``store`` (the task state store, Airflow 3.3+), in shards."""
    return None if store is None else BatchStateStore(store)
