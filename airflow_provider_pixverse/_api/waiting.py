"""Waiting for clips: every decision, in one place, for the trigger, the sensor and the operators.

:func:`classify_clip` says what an answer means, :class:`ClipWaiter` what to do next for one clip
(poll again after how long, or stop with which event), :class:`ClipsWaiter` the same for a set of
clips (one clip is the set of one), and :func:`final_clip` what a task makes of the event.
No I/O here: the trigger drives a waiter with async polls, the worker-side wait with sync ones.
"""

from __future__ import annotations

import collections
import enum
import math
import random
from dataclasses import dataclass
from typing import Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import (
    PixVerseError,
    PixVerseInvalidInputError,
    PixVerseJobFailedError,
    error_class_named,
    error_from_details,
)
from airflow_provider_pixverse._api.retry import RetryPolicy, is_transient

SUCCESS = "success"
FAILED = "failed"
ERROR = "error"
TIMEOUT = "timeout"
# While a wait goes on, one line says so at least this often (and on every change of status).
HEARTBEAT_SECONDS = 60.0
# Polls of clips deferred together spread over up to this fraction of the interval.
POLL_JITTER = 0.1


class ClipOutcome(enum.Enum):
    """What one answer about a clip means for a wait."""

    COMPLETED = "completed"  # final, and ready to download
    FAILED = "failed"  # final and not COMPLETED: FAILED, or a final status this client does not know
    WAITING = "waiting"  # a documented status that is not final (QUEUED, GENERATING)
    UNKNOWN = "unknown"  # a status this client does not know, not final: keep waiting, say so


def classify_clip(clip: SpeechClip) -> ClipOutcome:
    """The one rule: final and COMPLETED is success; final and anything else is a failure."""
    if clip.is_final:
        return ClipOutcome.COMPLETED if clip.is_completed else ClipOutcome.FAILED
    return ClipOutcome.WAITING if clip.audio_status_enum is not None else ClipOutcome.UNKNOWN


def check_poll_interval(poll_interval: object) -> float:
    """``poll_interval`` as a positive, finite number of seconds; a clear error naming it otherwise."""
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
        raise PixVerseInvalidInputError(f"poll_interval must be a number of seconds, got {poll_interval!r}")
    if not math.isfinite(poll_interval) or poll_interval <= 0:
        raise PixVerseInvalidInputError(f"poll_interval={poll_interval!r} must be a positive number of seconds")
    return float(poll_interval)


@dataclass(frozen=True)
class Decision:
    """What to do after one answer: stop with ``event``, or poll again in ``wait`` seconds.

    ``note`` is a line worth logging (a change of status, a failed poll, a heartbeat), if any.
    """

    event: dict[str, Any] | None = None
    wait: float = 0.0
    note: str | None = None


@dataclass
class ClipWaiter:
    """The state of one wait for one clip, up to an absolute ``deadline`` (UNIX time).

    Transient errors (no connection, timeouts, 429, 5xx) mean "not yet" until the deadline, with
    the backoff and ``Retry-After`` rules of ``policy``; any other error ends the wait at once.
    """

    audio_id: str
    deadline: float
    poll_interval: float
    started: float
    policy: RetryPolicy
    failures: int = 0
    last_clip: SpeechClip | None = None
    last_status: str | None = None
    last_note_at: float = 0.0

    def __post_init__(self) -> None:
        self.poll_interval = check_poll_interval(self.poll_interval)
        self.last_note_at = self.started

    def first_wait(self, now: float) -> Decision:
        """Before the first poll of a deferred wait: the task has just looked, so wait one interval."""
        return self._wait_or_timeout(now, self.poll_interval)

    def after(self, answer: SpeechClip | PixVerseError, now: float) -> Decision:
        """The next step after one poll, whatever it gave: a clip or an error."""
        if isinstance(answer, PixVerseError):
            return self.after_error(answer, now)
        return self.after_clip(answer, now)

    def after_clip(self, clip: SpeechClip, now: float) -> Decision:
        """The next step after an answer."""
        self.failures = 0
        self.last_clip = clip
        outcome = classify_clip(clip)
        if outcome is ClipOutcome.COMPLETED:
            return Decision(event=self._event(SUCCESS, f"audio_id {self.audio_id!r}: status COMPLETED"))
        if outcome is ClipOutcome.FAILED:
            return Decision(event=self._event(FAILED, _failure_message(self.audio_id, clip)))
        note = self._status_note(clip, outcome, now)
        decision = self._wait_or_timeout(now, self.poll_interval * (1 - POLL_JITTER * random.random()))
        return Decision(event=decision.event, wait=decision.wait, note=note)

    def after_error(self, error: PixVerseError, now: float) -> Decision:
        """The next step after a poll that failed."""
        if not is_transient(error):
            return Decision(event=self._event(ERROR, str(error), error=error))
        self.failures += 1
        decision = self._wait_or_timeout(now, self.policy.delay(self.failures, error))
        note = f"Polling {self.audio_id} failed ({error}); polling again in {decision.wait:.1f} s"
        return Decision(event=decision.event, wait=decision.wait, note=note)

    def _wait_or_timeout(self, now: float, wait: float) -> Decision:
        remaining = self.deadline - now
        if remaining <= 0:
            status = self.last_clip.status_label if self.last_clip else "unknown"
            elapsed = now - self.started
            message = f"audio_id {self.audio_id!r}: still {status} at the deadline ({elapsed:.0f} s)"
            return Decision(event=self._event(TIMEOUT, message))
        return Decision(wait=min(wait, remaining))

    def _status_note(self, clip: SpeechClip, outcome: ClipOutcome, now: float) -> str | None:
        status = clip.status_label
        changed = status != self.last_status
        self.last_status = status
        if not changed and now - self.last_note_at < HEARTBEAT_SECONDS:
            return None
        self.last_note_at = now
        waited = f"waited {now - self.started:.0f} s"
        if outcome is ClipOutcome.UNKNOWN:
            return f"Clip {self.audio_id} has status {status}, unknown to this provider: not final ({waited})"
        return f"Clip {self.audio_id} is {status} ({waited})"

    def _event(self, status: str, message: str, *, error: PixVerseError | None = None) -> dict[str, Any]:
        clip = self.last_clip.to_json() if self.last_clip is not None else None
        return event_payload(status, self.audio_id, message, clip=clip, error=error)


CLIPS = "clips"


class ClipsWaiter:
    """The wait for a set of clips, to one deadline: a :class:`ClipWaiter` per clip, and when each is due.

    A clip's wait ends with its own event; the whole wait is over once every clip has one, or at
    once when one ends with an error no wait will cure (:data:`ERROR`).
    """

    def __init__(
        self,
        audio_ids: list[str],
        deadline: float,
        poll_interval: float,
        *,
        started: float,
        policy: RetryPolicy,
        now: float | None = None,
    ) -> None:
        if not audio_ids:
            raise PixVerseInvalidInputError("audio_ids is empty: there is nothing to wait for")
        self.order = list(dict.fromkeys(audio_ids))
        self.deadline = deadline
        self.poll_interval = check_poll_interval(poll_interval)
        self.waiters = {
            audio_id: ClipWaiter(audio_id, deadline, poll_interval, started=started, policy=policy)
            for audio_id in self.order
        }
        self.pending = list(self.order)
        self.events: dict[str, dict[str, Any]] = {}
        self.stopped = False
        # The task has just looked at each clip: the first poll is one interval from ``now`` (or at
        # the deadline, which is polled once more before the wait times out).
        first = (started if now is None else now) + self.poll_interval
        self._due = dict.fromkeys(self.order, min(first, deadline))

    @property
    def done(self) -> bool:
        """Every clip has its event, or one ended with an error that ends them all."""
        return self.stopped or not self.pending

    def after(self, audio_id: str, answer: SpeechClip | PixVerseError, now: float) -> Decision:
        """Feed one poll's answer to the clip's waiter; the clip is due again after the decision's wait."""
        decision = self.waiters[audio_id].after(answer, now)
        if decision.event is not None:
            self._ended(audio_id, decision.event)
        else:
            self._due[audio_id] = now + decision.wait
        return decision

    def due(self, now: float) -> list[str]:
        """The pending clips whose next poll is due at ``now``."""
        return [audio_id for audio_id in self.pending if self._due[audio_id] <= now]

    def next_poll_in(self, now: float) -> float:
        """Seconds until the next clip is due (0 when one is due now)."""
        return max(min((self._due[audio_id] for audio_id in self.pending), default=now) - now, 0.0)

    def deadline_passed(self, now: float) -> None:
        """No answer came before the deadline: every clip still pending ends with a timeout."""
        for audio_id in list(self.pending):
            decision = self.waiters[audio_id].first_wait(now)
            if decision.event is not None:
                self._ended(audio_id, decision.event)

    def group_event(self) -> dict[str, Any]:
        """The one event for the set: ``{"status": "clips", "events": [...], "message": ...}``."""
        events = [self.events[audio_id] for audio_id in self.order if audio_id in self.events]
        statuses = collections.Counter(event["status"] for event in events)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        return {"status": CLIPS, "events": events, "message": f"{len(self.order)} clips: {summary}"}

    def _ended(self, audio_id: str, event: dict[str, Any]) -> None:
        self.events[audio_id] = event
        self.pending.remove(audio_id)
        if event["status"] == ERROR:
            self.stopped = True


def events_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The one-clip events an event carries: itself, or a set's (see :meth:`ClipsWaiter.group_event`)."""
    if event.get("status") != CLIPS:
        return [event]
    events = event.get("events")
    return [one for one in events if isinstance(one, dict)] if isinstance(events, list) else []


def event_payload(
    status: str,
    audio_id: str,
    message: str,
    *,
    clip: dict[str, Any] | None = None,
    error: PixVerseError | None = None,
) -> dict[str, Any]:
    """The one event a wait ends with; every key always present, all of it plain JSON.

    ``status`` is ``success``, ``failed`` (final and not COMPLETED), ``error`` or ``timeout``;
    ``error`` carries an error's class and fields, so the task raises the same error.
    """
    return {
        "status": status,
        "audio_id": audio_id,
        "clip": clip,
        "message": message,
        "error_type": type(error).__name__ if error is not None else None,
        "error": error.details() if error is not None else None,
    }


@dataclass(frozen=True)
class FinalClip:
    """A clip whose wait is over: COMPLETED, or final and not (``failure`` says why)."""

    clip: SpeechClip
    completed: bool

    @property
    def failure(self) -> PixVerseJobFailedError:
        """The error that a clip that did not complete fails its task with."""
        clip = self.clip
        return PixVerseJobFailedError(
            audio_id=clip.audio_id, fail_code=clip.fail_code, fail_reason=clip.fail_reason, status=clip.status_label
        )

    def raise_if_failed(self) -> SpeechClip:
        """The clip when COMPLETED; raise :attr:`failure` otherwise."""
        if not self.completed:
            raise self.failure
        return self.clip


def final_clip(event: dict[str, Any], *, timeout_error: type[BaseException]) -> FinalClip:
    """What a task makes of the event its wait ended with: the final clip, or the error raised again."""
    status = event.get("status")
    if status in (SUCCESS, FAILED):
        clip = SpeechClip.from_json(event.get("clip"), audio_id=event.get("audio_id"))
        return FinalClip(clip, completed=status == SUCCESS)
    message = str(event.get("message"))
    if status == TIMEOUT:
        raise timeout_error(message)
    details = event.get("error")
    if isinstance(details, dict):
        raise error_from_details(details)
    # An event of an earlier release names the class only.
    raise error_class_named(event.get("error_type"))(message)


def final_from_clip(clip: SpeechClip) -> FinalClip | None:
    """A :class:`FinalClip` when ``clip`` is final (by the same rule as every wait), else ``None``."""
    outcome = classify_clip(clip)
    if outcome in (ClipOutcome.COMPLETED, ClipOutcome.FAILED):
        return FinalClip(clip, completed=outcome is ClipOutcome.COMPLETED)
    return None


def _failure_message(audio_id: str, clip: SpeechClip) -> str:
    return (
        f"audio_id {audio_id!r}: final with status {clip.status_label}, not COMPLETED "
        f"(fail_code={clip.fail_code!r}, fail_reason={clip.fail_reason!r})"
    )
