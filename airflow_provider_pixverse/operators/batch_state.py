"""The state of a corpus on its way, as JSON (kept in the task state store in shards: see :mod:`.batch_store`).

Per distinct request (content key) it holds the names the request goes to and either its
:class:`~airflow_provider_pixverse._api.speech_job.SpeechJob` (parts, intents, audio_ids, clips)
with the account each part was sent to, or, once its objects are written, a small record of what
was written (audio_ids, credits, duration, URIs), or why it failed. It also holds the accounts'
windows (see :mod:`.batch_accounts`), the corpus estimate, and when the corpus started (for the
rate in the progress lines). A retry of the task reads it back and carries on: nothing made is lost,
nothing is paid twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob

BATCH_STATE_KEY = "pixverse_batch"
BATCH_STATE_VERSION = 1
# What a request is: being made, written (this run or found written), or failed for good.
PENDING, DONE, REUSED, FAILED = "pending", "done", "reused", "failed"
_STATUSES = (PENDING, DONE, REUSED, FAILED)


@dataclass
class RequestState:
    """One distinct request of the corpus: its names, its job while it is made, and what became of it.

    :param key: The request's content key.
    :param names: The items it is written to (duplicates share one request).
    :param status: ``pending``, ``done`` (written by this task), ``reused`` (found at its
        destination) or ``failed``.
    :param job: Its parts while it is made (``None`` once written, or when found written).
    :param sent_to: The account each part was last sent to, by part index (as a string).
    :param deadlines: When each part in flight stops being waited for (UNIX time), by part index.
    :param result: Once written: ``audio_ids``, ``credits``, ``duration`` and ``uris`` (one per name).
    :param reason: Why it failed.
    """

    key: str
    names: list[str]
    status: str = PENDING
    job: SpeechJob | None = None
    sent_to: dict[str, str | None] = field(default_factory=dict)
    deadlines: dict[str, float] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    reason: str | None = None

    def in_flight(self) -> list[PartState]:
        """The parts created and not final yet (counted in their account's window)."""
        if self.job is None:
            return []
        return [part for part in self.job.parts if part.audio_id is not None and part.clip is None]

    def to_create(self) -> list[PartState]:
        """The parts to create now: none once the request failed or is written."""
        if self.status != PENDING or self.job is None:
            return []
        return [part for part in self.job.parts if part.audio_id is None]

    def account_of(self, part: PartState) -> str | None:
        """The account ``part`` was sent to (``None``: the connection's)."""
        return self.sent_to.get(str(part.index))

    def to_json(self) -> dict[str, Any]:
        """The request as the document keeps it."""
        return {
            "key": self.key,
            "names": list(self.names),
            "status": self.status,
            "job": None if self.job is None else self.job.to_json(),
            "sent_to": dict(self.sent_to),
            "deadlines": dict(self.deadlines),
            "result": self.result,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: object) -> RequestState | None:
        """The request a document kept; ``None`` when it is not one."""
        if not isinstance(data, dict) or data.get("status") not in _STATUSES:
            return None
        key, names, sent_to = data.get("key"), data.get("names"), data.get("sent_to") or {}
        if not isinstance(key, str) or not isinstance(names, list) or not isinstance(sent_to, dict):
            return None
        job = SpeechJob.from_json(data.get("job")) if data.get("job") is not None else None
        if data["status"] == PENDING and (job is None or job.content_key != key):
            return None
        result = data.get("result")
        reason = data.get("reason")
        deadlines = data.get("deadlines")
        deadlines = deadlines if isinstance(deadlines, dict) else {}
        return cls(
            key=key,
            names=[str(name) for name in names],
            status=str(data["status"]),
            job=job,
            sent_to={str(index): None if email is None else str(email) for index, email in sent_to.items()},
            deadlines={str(index): float(when) for index, when in deadlines.items() if isinstance(when, (int, float))},
            result=result if isinstance(result, dict) else None,
            reason=reason if isinstance(reason, str) else None,
        )


@dataclass
class BatchState:
    """The whole corpus's state (see the module)."""

    requests: dict[str, RequestState] = field(default_factory=dict)
    windows: dict[str, Any] | None = None
    credits_estimated: float | None = None
    started: float = 0.0
    resumes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The document kept in the task state store."""
        return {
            "version": BATCH_STATE_VERSION,
            "requests": [request.to_json() for request in self.requests.values()],
            "windows": self.windows,
            "credits_estimated": self.credits_estimated,
            "started": self.started,
            "resumes": self.resumes,
        }

    @classmethod
    def from_json(cls, data: object) -> BatchState | None:
        """The state a store kept; ``None`` when there is none, or not one this release reads."""
        if not isinstance(data, dict) or data.get("version") != BATCH_STATE_VERSION:
            return None
        entries = data.get("requests")
        if not isinstance(entries, list):
            return None
        requests: dict[str, RequestState] = {}
        for entry in entries:
            request = RequestState.from_json(entry)
            if request is None:
                return None
            requests[request.key] = request
        estimated, started = data.get("credits_estimated"), data.get("started")
        windows = data.get("windows")
        resumes = data.get("resumes")
        return cls(
            requests=requests,
            windows=windows if isinstance(windows, dict) else None,
            credits_estimated=estimated if isinstance(estimated, (int, float)) else None,
            started=float(started) if isinstance(started, (int, float)) else 0.0,
            resumes=resumes if isinstance(resumes, int) else 0,
        )

    def counts(self) -> dict[str, int]:
        """Requests by what they are: done (written or reused), in flight, waiting (to create), failed."""
        done = in_flight = waiting = failed = 0
        for request in self.requests.values():
            if request.status in (DONE, REUSED):
                done += 1
            elif request.status == FAILED:
                failed += 1
            elif request.in_flight():
                in_flight += 1
            else:
                waiting += 1
        return {"done": done, "in_flight": in_flight, "waiting": waiting, "failed": failed}

    def credits_charged(self) -> float:
        """The credits the clips made so far were charged (as the API says them)."""
        total = 0.0
        for request in self.requests.values():
            if request.result is not None and request.status == DONE:
                total += request.result.get("credits") or 0
            elif request.job is not None:
                total += sum((part.clip or {}).get("credits") or 0 for part in request.job.parts)
        return total
