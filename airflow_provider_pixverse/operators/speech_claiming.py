"""Two runs of one speech pay once: a run claims the destination before it pays.

The claim itself is :mod:`airflow_provider_pixverse.speech_claim`.

:meth:`SpeechClaims.acquire` is called once the plan is made and checked, before any create:

- no claim: this run claims the destination (an exclusive create) and pays;
- a claim of this run (a retry, the same task state store): this run carries on;
- a claim of this speech whose every part has a clip: this run adopts the clips (waits for them
  and writes them itself, the same bytes); it never pays;
- a claim of this speech still being created: this run waits, polling the claim and the
  destination, until the clips are there (adopted), the speech is published (reused), the claim
  is gone (claimed anew), or stale (taken over, with its clips and intents); bounded by this
  run's own wait timeout, after which it fails having sent nothing;
- a claim of other content: refused before paying unless ``overwrite``, else waited for likewise.

The claim is removed once the speech is published with its metadata (by whichever run publishes
it), or by its owner when the owner fails before every part is COMPLETED (nothing to adopt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.speech_job import SpeechJob
from airflow_provider_pixverse.exceptions import DestinationExistsError
from airflow_provider_pixverse.speech_claim import (
    CLAIM_MARGIN_SECONDS,
    Claim,
    create_claim,
    read_claim,
    remove_claim,
    replace_claim,
    update_claim,
)
from airflow_provider_pixverse.speech_record import max_parts_of
from airflow_provider_pixverse.storage import object_uri

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from airflow_provider_pixverse._api.clock import Clock
    from airflow_provider_pixverse._api.speech_request import SpeechRequest

CLAIM_STATE_KEY = "pixverse_destination_claim"
_MIN_POLL, _MAX_POLL = 0.05, 10.0


def task_label(ti: Any) -> str | None:
    """Who a task instance is, for a claim's owner: ``dag.task of run <run_id>``."""
    task = ".".join(str(getattr(ti, name)) for name in ("dag_id", "task_id") if getattr(ti, name, None))
    run_id = getattr(ti, "run_id", None)
    return f"{task or 'task'} of run {run_id}" if run_id else task or None


@dataclass
class Acquired:
    """What :meth:`SpeechClaims.acquire` found: the job to carry on with, or the speech already published."""

    job: SpeechJob | None = None
    reused: list[dict[str, Any]] | None = None
    adopted: bool = False


class SpeechClaims:
    """The claim of one task on one destination (see the module).

    :param target: The object the claim is beside (the destination, unnumbered).
    :param request: The request being made.
    :param wait_timeout: This task's wait timeout: its claim lasts that plus a margin, and it waits
        for another run's claim that long at most.
    :param poll_interval: Seconds between looks at another run's claim (kept within 0.05 to 10).
    :param overwrite: Whether the task may replace other content (then another request's claim is waited for).
    :param store: The task state store (or ``None``): it keeps which claim is this task's across tries.
    :param task: Who this task is, for the claim's owner (logged by other runs).
    :param clock: Where time comes from.
    :param log: The task's logger.
    :param timeout_error: What is raised when another run's claim was waited for ``wait_timeout``.
    """

    def __init__(
        self,
        target: ObjectStoragePath,
        request: SpeechRequest,
        *,
        wait_timeout: float,
        poll_interval: float,
        overwrite: bool,
        store: Any,
        task: str | None,
        clock: Clock,
        log: Any,
        timeout_error: type[BaseException] = TimeoutError,
    ) -> None:
        self.target = target
        self.request = request
        self.ttl = wait_timeout + CLAIM_MARGIN_SECONDS
        self.wait_timeout = wait_timeout
        self.poll = min(max(poll_interval, _MIN_POLL), _MAX_POLL)
        self.overwrite = overwrite
        self.store = store
        self.task = task
        self.clock = clock
        self.log = log
        self.timeout_error = timeout_error
        self.mine: Claim | None = None

    def acquire(self, job: SpeechJob, published: Callable[[], list[dict[str, Any]] | None]) -> Acquired:
        """Claim the destination for ``job``, adopt another run's clips, or wait for it (see the module)."""
        uri = object_uri(self.target)
        deadline = self.clock.time() + self.wait_timeout
        while True:
            current = read_claim(self.target)
            if current is None:
                mine = Claim.new(self.request.key, ttl=self.ttl, task=self.task, job=job.to_json())
                if create_claim(self.target, mine):
                    self._own(mine)
                    found = published()  # published between the look at the destination and the claim
                    if found is not None:
                        self.release()
                        return Acquired(reused=found)
                    return Acquired(job=job)
                continue
            if current.nonce == self._my_nonce():
                self._own(current)
                return Acquired(job=job)
            theirs = self._adoptable(current)
            if theirs is not None and all(part.audio_id for part in theirs.parts):
                self.log.info(
                    "%s is being made by %s: adopting its %d clip(s), no create sent",
                    uri,
                    current.describe(),
                    len(theirs.parts),
                )
                return Acquired(job=theirs, adopted=True)
            if current.stale(self.clock.time()):
                taken = theirs or job
                mine = Claim.new(self.request.key, ttl=self.ttl, task=self.task, job=taken.to_json())
                if replace_claim(self.target, current, mine):
                    self.log.warning("Took over the stale claim of %s on %s", current.describe(), uri)
                    self._own(mine)
                    return Acquired(job=taken, adopted=theirs is not None)
                continue
            if current.content_key != self.request.key and not self.overwrite:
                raise DestinationExistsError(
                    f"{uri} is being written with other content by {current.describe()}; pass overwrite=True "
                    "to replace it (nothing was sent, no credits spent)"
                )
            found = published()
            if found is not None:
                return Acquired(reused=found)
            if self.clock.time() >= deadline:
                raise self.timeout_error(
                    f"{uri} is being made by {current.describe()}; waited {self.wait_timeout:g} s "
                    "(wait_timeout) for its clips; nothing was sent, no credits spent"
                )
            self.log.info("Waiting for %s, which %s is making", uri, current.describe())
            self.clock.sleep(self.poll)

    def update(self, job: SpeechJob) -> None:
        """Store ``job`` (its parts' clips and intents) in this task's claim, if it holds one."""
        if self.mine is None:
            return
        updated = update_claim(self.target, self.mine.renewed(ttl=self.ttl, job=job.to_json()))
        if updated is None:
            self.log.warning("The claim on %s is no longer this task's", object_uri(self.target))
        self.mine = updated

    def release(self, *, done: bool = False) -> None:
        """Remove this task's claim; with ``done`` (the speech is published) any claim of this speech."""
        nonce = None if done else self._my_nonce()
        if nonce is None and not done:
            return
        remove_claim(self.target, content_key=self.request.key, nonce=nonce)
        self.mine = None
        if self.store is not None and done:
            self.store.delete(CLAIM_STATE_KEY)

    def resume(self) -> None:
        """After a retry or a deferral: take this task's claim back (known from the task state store), if still held."""
        nonce = self._my_nonce()
        current = read_claim(self.target) if nonce else None
        if current is not None and current.nonce == nonce:
            self.mine = current

    def _own(self, claim: Claim) -> None:
        self.mine = claim
        if self.store is not None:
            self.store.set(CLAIM_STATE_KEY, claim.nonce)

    def _my_nonce(self) -> str | None:
        if self.mine is not None:
            return self.mine.nonce
        nonce = self.store.get(CLAIM_STATE_KEY) if self.store is not None else None
        return nonce if isinstance(nonce, str) and nonce else None

    def _adoptable(self, claim: Claim) -> SpeechJob | None:
        """The claim's job when it is of this request and its parts fit the text; else ``None``."""
        if claim.content_key != self.request.key:
            return None
        job = SpeechJob.from_json(claim.job)
        text = self.request.text
        if job is None or job.content_key != self.request.key or not 0 < len(job.parts) <= max_parts_of(text):
            return None
        for index, part in enumerate(job.parts, 1):
            if part.index != index or not 0 <= part.start < part.end <= len(text):
                return None
            if part.audio_id is not None and (not isinstance(part.audio_id, str) or len(part.audio_id) > 256):
                return None
        return job
