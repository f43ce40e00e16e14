"""The corpus's engine: create parts on several accounts as their job slots free, and take the finals in.

One :class:`CorpusDriver` run is what a corpus task hands to the triggerer
(:class:`~airflow_provider_pixverse.triggers.batch.PixVerseBatchTrigger`), or runs itself when it
does not defer: a queue of parts to create (each with its intent already saved by the task), the
parts in flight, and the accounts' windows
(:class:`~airflow_provider_pixverse.operators.batch_accounts.AccountWindows`).

- **One queue, every account pulls from it.** An account with a free slot takes the next part, so
  the work goes where the slots are: an account that another client keeps busy takes less, and a
  limit of 5 takes more than a limit of 3. Never more in flight on an account than its window.
- **A 429 "busy"** (another client uses the account's slots) shrinks that account's window, puts
  the part back at the head of the queue, and the account creates nothing before ``Retry-After``.
- **One listing per account** when its earliest clip in flight is expected final (learnt from
  the clips seen to end: :class:`~airflow_provider_pixverse._api.finish_estimate.FinishEstimate`),
  and at least every ``poll_interval`` from the last one's start, takes in the finals of every
  part in flight there; a clip the listing does not show is looked up with its own GET. Each
  clip's wait follows the one rule of :class:`~airflow_provider_pixverse._api.waiting.ClipWaiter`;
  its event is the same as a clip trigger's.
- **A lost run is found again.** Before its first create, a run looks through each account's
  newest clips for the jobs its queue's intents made (:func:`~airflow_provider_pixverse._api.intent.match_lost_jobs`):
  a run cut short (a killed triggerer) and started again pays for nothing twice.
- **When it ends.** Once the queue is empty and no create is on its way (the parts still in
  flight go back to the task, which hands them to the next run), or, given nothing to create, once
  every part in flight is final; at once on a create error that no other create would survive
  (the token refused, the account cannot pay, an answer that may have been lost); at the deadline.

No Airflow here: the trigger and the worker drive the same run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_pixverse._api.capacity import not_before
from airflow_provider_pixverse._api.errors import (
    PixVerseAccountBusyError,
    PixVerseAuthError,
    PixVerseConnectionError,
    PixVerseError,
    PixVerseLostAnswerError,
    PixVersePaymentError,
    PixVerseResponseError,
    PixVerseServerError,
)
from airflow_provider_pixverse._api.finish_estimate import FinishEstimate
from airflow_provider_pixverse._api.ids import account_of
from airflow_provider_pixverse._api.intent import match_lost_jobs, search_depth
from airflow_provider_pixverse._api.waiting import FAILED, SUCCESS, ClipWaiter
from airflow_provider_pixverse.batch_records import CorpusRun, FlyingPart, QueuedPart

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook
    from airflow_provider_pixverse.operators.batch_accounts import AccountWindows

__all__ = ["FATAL_CREATE_ERRORS", "PROGRESS_SECONDS", "CorpusDriver"]

# A create that fails with one of these ends the run at once: no other create would fare better
# (the token is refused, the account cannot pay), or the create may have reached the server (its
# job is looked for from its intent, by the next run or the task's retry).
FATAL_CREATE_ERRORS = (
    PixVerseAuthError,
    PixVersePaymentError,
    PixVerseConnectionError,
    PixVerseServerError,
    PixVerseResponseError,
)

PROGRESS_SECONDS = 30.0  # a run's progress line, at most this often


class CorpusDriver:
    """One run of the corpus's engine (see the module).

    :param hook: The hook (its async calls; the run closes nothing of it).
    :param windows: The accounts' windows, nothing counted in flight yet: the run counts ``flying``.
    :param queue: The parts to create, in order.
    :param flying: The parts in flight when the run starts.
    :param poll_interval: Seconds between two listings of an account.
    :param wait_timeout: Each clip's wait ends this many seconds after its create (a ``timeout`` event).
    :param capacity_timeout: With parts queued, the run ends with :class:`PixVerseAccountBusyError`
        after this many seconds in which no create was accepted and no clip ended (every account busy).
    :param end_time: The run's own bound (UNIX time): it ends there, with what is in flight.
    :param started: When the task's wait began, for the clips' log lines.
    :param until_final: Go on until every part in flight is final (the task has nothing left to
        queue), instead of ending once the queue is empty.
    :param on_lost_answer: ``"fail"`` or ``"create"``: what a clip that only may be a lost job means.
    :param log: Where the run's lines go.
    """

    def __init__(
        self,
        hook: PixVerseHook,
        windows: AccountWindows,
        queue: list[QueuedPart],
        flying: list[FlyingPart],
        *,
        poll_interval: float,
        wait_timeout: float,
        capacity_timeout: float,
        end_time: float,
        started: float,
        until_final: bool,
        on_lost_answer: str,
        log: Any,
    ) -> None:
        self.hook = hook
        self.clock = hook.clock
        self.windows = windows
        self.queue = collections.deque(queue)
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.capacity_timeout = capacity_timeout
        self.end_time = end_time
        self.started = started
        self.until_final = until_final
        self.on_lost_answer = on_lost_answer
        self.log = log
        self.run_result = CorpusRun()
        self._flying: dict[str | None, dict[str, tuple[str, ClipWaiter]]] = {e: {} for e in windows.accounts}
        self._not_before = dict.fromkeys(windows.accounts, 0.0)
        self._timing = {email: FinishEstimate(poll_interval) for email in windows.accounts}
        self._created_at: dict[str, float] = {}  # the clips this run created, when
        self._seen_running: dict[str, float] = {}  # when a listing last saw each clip not final
        self._creating = 0
        self._changed = asyncio.Event()
        self._progress_at = self.clock.time()  # the last accepted create or clip that ended
        self._progress_logged = self._progress_at
        for part in flying:
            email = part.email if part.email in windows.limits else self._account_of(part.audio_id)
            if email is _NOWHERE:  # on an account this task no longer uses: waited for, counted on the first
                email = windows.accounts[0]
            self.windows.adopted(email)
            self._take_flying(part.ref, part.audio_id, email, part.deadline)

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> CorpusRun:
        """Create, wait, take the finals in, until the run ends (see the module); what it did."""
        try:
            if self.queue:
                await self._find_lost()
            loops = [asyncio.ensure_future(self._account(email)) for email in self.windows.accounts]
            for loop in loops:
                loop.add_done_callback(lambda _: self._wake())
            try:
                while not self._over() and not all(loop.done() for loop in loops):
                    self._log_progress()
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(self.end_time - self.clock.time(), 0.0) + 1.0):
                            await self._changed.wait()
                    if self.clock.time() >= self.end_time:
                        break
            finally:
                for loop in loops:
                    loop.cancel()
                for loop in loops:
                    with contextlib.suppress(asyncio.CancelledError):
                        await loop
            for loop in loops:
                if not loop.cancelled() and loop.exception() is not None:
                    raise loop.exception()  # type: ignore[misc]
        except PixVerseLostAnswerError as error:
            self.run_result.fatal = self.run_result.fatal or error
        return self._result()

    def _log_progress(self) -> None:
        """A line every :data:`PROGRESS_SECONDS`: created, ended, in flight per account, queued."""
        now = self.clock.time()
        if now - self._progress_logged < PROGRESS_SECONDS:
            return
        self._progress_logged = now
        flying = ", ".join(
            f"{email or 'the connection account'} {len(self._flying[email])}/{self.windows.windows[email]}"
            for email in self.windows.accounts
        )
        self.log.info(
            "Corpus run: %d created, %d ended, in flight %s, %d queued",
            len(self.run_result.created),
            len(self.run_result.events),
            flying,
            len(self.queue),
        )

    def _over(self) -> bool:
        if self.run_result.fatal is not None:
            return True
        if self.queue and self.clock.time() - self._progress_at >= self.capacity_timeout:
            self.run_result.fatal = PixVerseAccountBusyError(
                f"no account took a create for {self.clock.time() - self._progress_at:.0f} s (every one busy: as "
                f"many jobs running as it may), past capacity_timeout={self.capacity_timeout:g}; "
                f"{len(self.queue)} part(s) not created"
            )
            return True
        if self.queue or self._creating:
            return False
        return not self.until_final or not any(self._flying.values())

    def _result(self) -> CorpusRun:
        result = self.run_result
        result.in_flight = [
            FlyingPart(ref, audio_id, email, waiter.deadline)
            for email, flying in self._flying.items()
            for audio_id, (ref, waiter) in flying.items()
        ]
        result.queued = [part.ref for part in self.queue]
        result.windows = self.windows.to_json()
        return result

    def _wake(self) -> None:
        self._changed.set()

    # -- one account ------------------------------------------------------------------------------

    async def _account(self, email: str | None) -> None:
        """Fill the account's window from the queue, list it once per interval, take its finals in."""
        last_poll: float | None = None
        while not self._over() and self.clock.time() < self.end_time:
            await self._fill(email)
            flying = self._flying[email]
            now = self.clock.time()
            if flying:  # when the earliest clip is expected final, within an interval of the last listing
                created = [self._created_at[audio_id] for audio_id in flying if audio_id in self._created_at]
                due = self._timing[email].next_listing(now, last_poll, created)
            elif self.queue and self._not_before[email] > now:
                # Refused busy: nothing to create before Retry-After (and the capacity timeout is looked at then).
                due = min(self._not_before[email], self._progress_at + self.capacity_timeout)
            elif self.queue and self.windows.free(email) > 0:
                continue
            else:
                return  # nothing of this account in flight, and nothing it may take
            await self.clock.asleep(max(min(due, self.end_time) - now, 0.0))
            if flying and not self._over():
                last_poll = self.clock.time()
                await self._poll(email, last_poll)
                self._wake()

    async def _fill(self, email: str | None) -> None:
        """Create as many queued parts as ``email``'s free slots take, at once; busy puts a part back."""
        now = self.clock.time()
        if now < self._not_before[email] or now >= self.end_time:
            return
        parts: list[QueuedPart] = []
        while self.queue and self.windows.free(email) > len(parts):
            parts.append(self.queue.popleft())
        if not parts:
            return
        for _ in parts:
            self.windows.started(email)
        self._creating += len(parts)
        try:
            results = await asyncio.gather(*(self._create(email, part) for part in parts))
        finally:
            self._creating -= len(parts)
        refused_busy: list[QueuedPart] = []
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, PixVerseAccountBusyError):
                self.windows.busy(email)
                self.run_result.busy += 1
                refused_busy.append(part)
                self._not_before[email] = max(
                    self._not_before[email], not_before(result, self.hook.retry_policy, self.clock.time())
                )
            elif isinstance(result, FATAL_CREATE_ERRORS):
                self.windows.ended(email)
                if self.run_result.fatal is None:
                    self.run_result.fatal, self.run_result.fatal_ref = result, part.ref
            elif isinstance(result, PixVerseError):
                self.windows.ended(email)
                self.run_result.refused[part.ref] = str(result)
            else:
                self.windows.created(email)
                self._progress_at = self.clock.time()
                self._took(part.ref, result, email)
        if refused_busy:
            self.queue.extendleft(reversed(refused_busy))  # their turn kept, at the head of the queue
            self.log.info(
                "Account %s is busy (another client uses its slots): window now %d, %d part(s) back in the queue",
                email or "(the connection's)",
                self.windows.windows[email],
                len(refused_busy),
            )
        self._wake()

    async def _create(self, email: str | None, part: QueuedPart) -> str | PixVerseError:
        request = part.request
        self.run_result.requests += 1
        settings: dict[str, Any] = {"model": request.model, **request.settings}  # a 429 is never retried here
        if email is not None:
            settings["email"] = email
        try:
            return await self.hook.acreate_speech(request.text, request.voice_id, **settings)
        except PixVerseError as error:
            return error

    def _took(self, ref: str, audio_id: str, email: str | None) -> None:
        self.run_result.created[ref] = audio_id
        now = self.clock.time()
        self._created_at[audio_id] = now
        self._take_flying(ref, audio_id, email, now + self.wait_timeout)

    def _take_flying(self, ref: str, audio_id: str, email: str | None, deadline: float) -> None:
        waiter = ClipWaiter(audio_id, deadline, self.poll_interval, started=self.started, policy=self.hook.retry_policy)
        self._flying[email][audio_id] = (ref, waiter)

    async def _poll(self, email: str | None, at: float) -> None:
        """One listing of the account (begun ``at``); a GET for each clip in flight it does not show; the finals in."""
        flying = self._flying[email]
        wanted = frozenset(flying)
        listed: dict[str, SpeechClip] = {}
        listing_error: PixVerseError | None = None
        try:
            self.run_result.requests += 1
            listing = await self.hook.alist_account(account_of(next(iter(wanted))), wanted)
            self.run_result.requests += max(listing.pages - 1, 0)
            listed = {clip.audio_id: clip for clip in listing.result() if clip.audio_id in wanted}
        except PixVerseError as error:
            listing_error = error
            self.log.warning("Listing account %s failed (%s): each clip looked up alone", email, error)
        for audio_id in list(wanted):
            answer: SpeechClip | PixVerseError | None = listed.get(audio_id)
            if answer is None:
                self.run_result.requests += 1
                answer = await _poll_one(self.hook, audio_id)
            ref, waiter = flying[audio_id]
            decision = waiter.after(answer, self.clock.time())
            if decision.note and listing_error is None:
                self.log.debug("%s", decision.note)
            if decision.event is None:
                self._seen_running[audio_id] = at
                continue
            del flying[audio_id]
            self.windows.ended(email)
            self._progress_at = self.clock.time()
            self.run_result.events.append({**decision.event, "ref": ref})
            created = self._created_at.pop(audio_id, None)
            running = self._seen_running.pop(audio_id, None)
            if created is not None and decision.event["status"] in (SUCCESS, FAILED):
                self._timing[email].observe(created, at, running)

    # -- a run cut short --------------------------------------------------------------------------

    async def _find_lost(self) -> None:
        """The jobs an earlier run of this queue made: one listing of each account, matched to the intents."""
        clips: list[SpeechClip] = []
        depth = search_depth(len(self.queue))
        for email in self.windows.accounts:
            self.run_result.requests += 1
            listing = await self.hook.alist_account(email or "", frozenset(), max_items=depth)
            self.run_result.requests += max(listing.pages - 1, 0)
            clips.extend(listing.result())
        parts = list(self.queue)
        claimed = frozenset(audio_id for flying in self._flying.values() for audio_id in flying)
        found = match_lost_jobs(
            [(part.intent(), part.request) for part in parts],
            clips,
            claimed=claimed,
            on_lost_answer=self.on_lost_answer,
        )
        left: list[QueuedPart] = []
        for part, audio_id in zip(parts, found, strict=True):
            owner = self._account_of(audio_id) if audio_id is not None else _NOWHERE
            if audio_id is None or owner is _NOWHERE:
                left.append(part)
                continue
            self.log.warning("%s: an earlier run created %s before it was cut short; resuming it", part.ref, audio_id)
            email = cast("str | None", owner)
            self.windows.adopted(email)  # a job that runs: counted even over the window
            self._took(part.ref, audio_id, email)
        self.queue = collections.deque(left)

    def _account_of(self, audio_id: str) -> Any:
        """Which of the run's accounts ``audio_id`` runs on (the token's one account: ``None``)."""
        email = account_of(audio_id)
        for account in self.windows.accounts:
            if account is not None and account.lower() == email.lower():
                return account
        return None if None in self.windows.limits else _NOWHERE


_NOWHERE = object()


async def _poll_one(hook: PixVerseHook, audio_id: str) -> SpeechClip | PixVerseError:
    try:
        return await hook.apoll_speech(audio_id)
    except PixVerseError as error:
        return error
