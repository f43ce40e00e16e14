"""Each account's job limit: at most ``max_jobs`` clips QUEUED or GENERATING at once, as the API enforces it.

A create beyond the limit is refused with 429 and ``Retry-After`` (no job is made, nothing is
charged). The limit is the sandbox's setting for the account (default :data:`DEFAULT_MAX_JOBS`),
or the create's own ``maxJobs`` field where it gives one. Clips seeded with ``add_clip`` are an
account's history, not its jobs: they never count. No I/O and no lock: the state calls it under its own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from airflow_provider_pixverse.sandbox.clips import GENERATING, QUEUED

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox.clips import Clip

# The documented range is 1 to 8 jobs at once. 3 is a mid-range PixVerse subscription's concurrency,
# low enough that a DAG test with a handful of parallel creates meets the limit as it would for real.
DEFAULT_MAX_JOBS = 3
MIN_RETRY_AFTER, MAX_RETRY_AFTER = 1, 30  # published clients wait 10 to 30 s on a busy account


class AccountBusy(Exception):
    """The account runs as many jobs as it may: the create is refused (429), nothing made."""

    def __init__(self, email: str, running: int, limit: int, retry_after: int) -> None:
        super().__init__(
            f"Account {email} is busy: {running} of {limit} jobs running at once (maxJobs {limit}); try again later"
        )
        self.retry_after = retry_after


class JobLimits:
    """Per account: the limit, the jobs in flight, and the most ever in flight at once."""

    def __init__(self, default: int | None = DEFAULT_MAX_JOBS) -> None:
        self.default = _checked(default)
        self._limits: dict[str, int | None] = {}
        self._running: dict[str, list[Clip]] = {}
        self._high_water: dict[str, int] = {}

    def set(self, limit: int | None, email: str | None = None) -> None:
        """The limit of ``email``'s account, or of every account without one of its own (``email=None``)."""
        if email is None:
            self.default = _checked(limit)
        else:
            self._limits[email] = _checked(limit)

    def limit_of(self, email: str, asked: int | None = None) -> int | None:
        """The limit a create for ``email`` meets: its own ``maxJobs`` if it gives one, else the account's."""
        if asked is not None:
            return int(asked)
        return self._limits.get(email, self.default)

    def running(self, email: str, now: float) -> list[Clip]:
        """The account's jobs still QUEUED or GENERATING at monotonic time ``now``."""
        jobs = [clip for clip in self._running.get(email, []) if clip.status_at(now)[0] in (QUEUED, GENERATING)]
        self._running[email] = jobs
        return jobs

    def admit(self, email: str, now: float, asked: int | None = None) -> None:
        """Raise :class:`AccountBusy` when the account may not start another job now."""
        limit = self.limit_of(email, asked)
        if limit is None:
            return
        jobs = self.running(email, now)
        if len(jobs) >= limit:
            raise AccountBusy(email, len(jobs), limit, _retry_after(jobs, now))

    def started(self, clip: Clip, now: float) -> None:
        """Count a new job of ``clip.email``'s account."""
        jobs = self.running(clip.email, now)
        jobs.append(clip)
        self._high_water[clip.email] = max(self._high_water.get(clip.email, 0), len(jobs))

    def high_water(self, email: str) -> int:
        """The most jobs the account ever had in flight at once."""
        return self._high_water.get(email, 0)


def _retry_after(jobs: list[Clip], now: float) -> int:
    """Whole seconds until the first of ``jobs`` ends (1 to 30; 30 when none of them ever ends by itself)."""
    ends = [clip.created_mono + clip.queued_seconds + clip.generating_seconds for clip in jobs if not clip.fixed]
    if not ends:
        return MAX_RETRY_AFTER
    return min(max(math.ceil(min(ends) - now), MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def _checked(limit: int | None) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_jobs={limit!r} must be a whole number from 1, or None for no limit")
    return limit
