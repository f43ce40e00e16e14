"""The base of the operators that create clips: the settings, the request, the intent, lost answers, re-sends.

Every creating operator decides these things here, once:

- the request (:class:`~airflow_provider_pixverse._api.speech_request.SpeechRequest`): the
  normalised text and every setting that changes the audio, checked against the model first;
- the create intent recorded before a create is sent, and what a later try does when that
  create's answer was lost (:meth:`PixVerseBaseCreatingOperator.recover_lost_jobs`);
- whether a clip an earlier try made is worth resuming, and whether a FAILED clip is sent again;
- what a create refused as busy does: it waits for the account's capacity (deferred), then is sent
  again (:meth:`PixVerseBaseCreatingOperator.wait_for_capacity`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api import capacity
from airflow_provider_pixverse._api.capacity import check_capacity_timeout, not_before
from airflow_provider_pixverse._api.create import build_create_form
from airflow_provider_pixverse._api.errors import (
    PixVerseAccountBusyError,
    PixVerseBadRequestError,
    PixVerseInvalidInputError,
    PixVerseLostAnswerError,
    PixVerseNotFoundError,
)
from airflow_provider_pixverse._api.intent import CreateIntent, match_lost_jobs, search_depth
from airflow_provider_pixverse._api.speech_request import SpeechRequest
from airflow_provider_pixverse._api.waiting import final_from_clip
from airflow_provider_pixverse.operators.base import DEFERRAL_GRACE_SECONDS, PixVerseBaseClipOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_pixverse._api.waiting import FinalClip

# What a retry does when a create's answer was lost and the listing shows a clip that only may be its job.
LOST_ANSWER_CHOICES = ("fail", "create")


class PixVerseBaseCreatingOperator(PixVerseBaseClipOperator):
    """Base of the operators that create clips: the create settings, the account, intents and re-sends.

    The settings are sent as given and checked against the model first (before anything is sent).

    :param on_lost_answer: What a retry does when an earlier try's create got no answer and the
        account shows a clip with this text, voice and model that may still differ in a setting no
        clip shows (``speed``, ``emotion``, ...), or when the account cannot be listed to look for
        it: ``"fail"`` (the default) says so and sends nothing; ``"create"`` creates anew, which may
        pay twice.
    :param capacity_timeout: How long a create refused because the account runs as many jobs as
        it may (429, busy) waits for a free slot, in seconds from the first refusal (default: the
        ``wait_timeout``). The wait is deferred (no worker slot) and in the account's queue, first
        come first served; then :class:`~airflow_provider_pixverse.exceptions.PixVerseAccountBusyError`.
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
        on_lost_answer: str = "fail",
        capacity_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.capacity_timeout = check_capacity_timeout(capacity_timeout)
        if on_lost_answer not in LOST_ANSWER_CHOICES:
            raise PixVerseInvalidInputError(
                f"on_lost_answer={on_lost_answer!r} must be one of {', '.join(map(repr, LOST_ANSWER_CHOICES))}"
            )
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
        self.on_lost_answer = on_lost_answer

    # -- the request -----------------------------------------------------------------------------

    def speech_request(self, text: str) -> SpeechRequest:
        """The request for ``text`` with this task's voice, model and settings; refused before anything is sent."""
        build_create_form(".", self.voice_id, model=self.model, language_code=self.language_code, **self.settings)
        return SpeechRequest.of(text, self.voice_id, self.model, language_code=self.language_code, **self.settings)

    def _send_create(self, request: SpeechRequest) -> str:
        """Send one create of ``request``'s text with this task's settings; the new ``audio_id``."""
        return self.hook.create_speech(request.text, **self._create_arguments(request))

    def _create_arguments(self, request: SpeechRequest) -> dict[str, Any]:
        """The keyword arguments of the hook's create (everything but the text)."""
        return {
            "voice_id": self.voice_id,
            "model": self.model,
            "email": self.account_email,
            "language_code": self.language_code,
            **self.settings,
            "retry_busy": False,  # a busy account is waited for in the queue (wait_for_capacity)
        }

    # -- a busy account --------------------------------------------------------------------------------

    def wait_for_capacity(
        self,
        busy: PixVerseAccountBusyError,
        *,
        queued_since: float | None,
        method_name: str = "execute_after_capacity",
        resume_kwargs: dict[str, Any] | None = None,
    ) -> float:
        """Wait for the account's capacity after ``busy`` (the create made no job); when it was first refused.

        Deferrable: defers to :class:`~airflow_provider_pixverse.triggers.capacity.PixVerseAccountCapacityTrigger`
        (raising ``TaskDeferred``); ``method_name`` resumes with ``resume_kwargs`` and ``queued_since``.
        Otherwise sleeps out the ``Retry-After`` and returns. Past ``capacity_timeout``: ``busy`` is raised.
        """
        clock = self.hook.clock
        now = clock.time()
        since = now if queued_since is None else queued_since
        limit = self.wait_timeout if self.capacity_timeout is None else self.capacity_timeout
        end_time = since + limit
        if now >= end_time:
            raise PixVerseAccountBusyError(
                f"account {self._account_name()} stayed busy (as many jobs running as it may) for {now - since:.0f} s, "
                f"past capacity_timeout={limit:g}; no job was made",
                retry_after=busy.retry_after,
            ) from busy
        earliest = min(not_before(busy, self.hook.retry_policy, now), end_time)
        self.log.info(
            "The create was refused, the account is busy (%s): waiting for a free job slot of %s, "
            "%.0f s queued so far, for at most %.0f s more",
            busy.reason,
            self._account_name(),
            now - since,
            end_time - now,
        )
        if not self.deferrable:
            clock.sleep(max(earliest - now, 0.0))
            return since
        from airflow_provider_pixverse.triggers.capacity import PixVerseAccountCapacityTrigger

        earliest = min(max(earliest, now + capacity.SETTLE_SECONDS), end_time)  # see capacity.SETTLE_SECONDS

        max_jobs = self.settings.get("max_jobs")
        self.defer(
            trigger=PixVerseAccountCapacityTrigger(
                waiter=uuid.uuid4().hex,
                queued_since=since,
                not_before=earliest,
                end_time=end_time,
                account=self.account_email or self.hook.settings.email or "",
                max_jobs=max_jobs if isinstance(max_jobs, int) else None,
                pixverse_conn_id=self.pixverse_conn_id,
                poll_interval=self.poll_interval,
            ),
            method_name=method_name,
            kwargs={**(resume_kwargs or {}), "queued_since": since},
            timeout=timedelta(seconds=end_time - now + DEFERRAL_GRACE_SECONDS),
        )
        raise AssertionError("unreachable: defer() raises")  # pragma: no cover

    def capacity_event(self, event: dict[str, Any]) -> None:
        """What a capacity trigger's event says: go on, or the account stayed busy (raised)."""
        if event.get("status") != "capacity":
            raise PixVerseAccountBusyError(f"{event.get('message') or 'the account stayed busy'}; no job was made")

    # -- the task state store and the intent -----------------------------------------------------------

    def _state_store(self, context: Context) -> Any:
        store = context.get("task_state_store")
        if store is None:
            self.log.warning("No task state store (it needs Airflow 3.3+): a retry of this task will create a new clip")
        return store

    def _intent(self, request: SpeechRequest) -> CreateIntent:
        """The intent to create ``request`` with this task's account, as of now."""
        return CreateIntent.of(
            request, email=self.account_email or self.hook.settings.email, now=self.hook.clock.time()
        )

    def recover_lost_jobs(
        self, lost: list[tuple[CreateIntent, SpeechRequest]], *, claimed: frozenset[str] = frozenset()
    ) -> list[str | None]:
        """The jobs that creates an earlier try sent made although their answers were lost, in order.

        One listing of the account serves every intent. ``None`` where there is no such job (create
        it); a clip that only may be it fails the task (:class:`PixVerseLostAnswerError`, naming the
        clip) unless ``on_lost_answer="create"``. Where the account cannot be listed (400: no account
        named where several are configured), the create it meant was refused alike: ``None``.
        """
        if not lost:
            return []
        try:
            clips = self.hook.list_speech(email=lost[0][0].email, max_items=search_depth(len(lost)))
        except PixVerseBadRequestError as error:
            message = f"an earlier try sent a create whose answer was lost, and its job cannot be looked for ({error})"
            if self.on_lost_answer == "create":
                self.log.warning("%s: creating anew (on_lost_answer='create'; this may pay twice)", message)
                return [None] * len(lost)
            raise PixVerseLostAnswerError(
                f"{message}. Nothing was sent. Name the account (account_email) or check it; to create anew "
                "(perhaps paying twice), set on_lost_answer='create' or clear the task's state"
            ) from error
        return match_lost_jobs(lost, clips, claimed=claimed, on_lost_answer=self.on_lost_answer, log=self.log)

    # -- resuming and re-sending -------------------------------------------------------------------------

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

    def _resubmit_or_raise(self, final: FinalClip, resubmits: int, what: str = "") -> int:
        """A clip that did not complete: the count of re-sends after sending it again, or its failure raised."""
        if resubmits >= self.resubmit_on_failure:
            raise final.failure
        self.log.warning(
            "%s%s; re-submitting%s (%d of %d)",
            f"{what}: " if what else "",
            final.failure,
            " it alone" if what else "",
            resubmits + 1,
            self.resubmit_on_failure,
        )
        return resubmits + 1

    def _account_name(self) -> str:
        """The PixVerse account creates go to, for messages."""
        account = self.account_email or self.hook.settings.email
        return repr(account) if account else f"the default account of connection {self.pixverse_conn_id!r}"
