"""One poll per account, however many of its clips wait: the listing the triggers of a group share.

Airflow 3.3's triggerer runs :func:`account_snapshots` once per group of triggers with the same
shared-stream key (connection, account, poll interval) and hands every snapshot to each trigger
of the group. Each round lists the account's clips newest first and pages only as far as the
clips its subscribers wait for (see :class:`~airflow_provider_pixverse._api.listing.SpeechListing`).

- A 429 or a ``Retry-After`` pauses the whole group, and other transient errors back it off, by
  the rules of :class:`~airflow_provider_pixverse._api.retry.RetryPolicy`: no snapshot is sent
  meanwhile, and each subscriber keeps its own deadline.
- An error no wait will cure (a 401, say) goes out in a snapshot, and every subscriber ends with it.
- The group's loop, and its hook, end when its last subscriber leaves (the triggerer cancels it).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.retry import RetryPolicy, is_transient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook


@dataclass(frozen=True)
class AccountSnapshot:
    """What one round of the shared poll saw: the clips listed (by ``audio_id``), or the error that ends the group."""

    clips: dict[str, SpeechClip]
    error: PixVerseError | None = None


class WantedClips:
    """Which clips the subscribers of each group wait for (one registry per triggerer process)."""

    def __init__(self) -> None:
        self._by_group: dict[Hashable, collections.Counter[str]] = {}

    def add(self, group: Hashable, audio_id: str) -> None:
        """A subscriber of ``group`` starts waiting for ``audio_id``."""
        self._by_group.setdefault(group, collections.Counter())[audio_id] += 1

    def remove(self, group: Hashable, audio_id: str) -> None:
        """A subscriber of ``group`` stops waiting for ``audio_id``."""
        wanted = self._by_group.get(group)
        if wanted is None:
            return
        wanted[audio_id] -= 1
        if wanted[audio_id] <= 0:
            del wanted[audio_id]
        if not wanted:
            del self._by_group[group]

    def of(self, group: Hashable) -> frozenset[str]:
        """The clips ``group`` waits for now."""
        return frozenset(self._by_group.get(group, ()))


WANTED = WantedClips()


async def account_snapshots(
    hook: PixVerseHook,
    group: Hashable,
    *,
    account: str,
    poll_interval: float,
    policy: RetryPolicy | None = None,
) -> AsyncIterator[AccountSnapshot]:
    """Every ``poll_interval``, one listing of ``account`` for the clips ``group`` waits for; forever."""
    policy = policy or RetryPolicy()
    failures = 0
    wait = poll_interval  # the tasks that deferred have just looked at their clips
    try:
        while True:
            await hook.clock.asleep(wait)
            wanted = WANTED.of(group)
            if not wanted:
                continue
            try:
                clips = await hook.alist_speech_for(account, wanted)
            except PixVerseError as error:
                if is_transient(error):
                    failures += 1
                    wait = policy.delay(failures, error)
                    hook.log.warning("Listing %s's clips failed (%s); again in %.1f s", account, error, wait)
                    continue
                yield AccountSnapshot({}, error)
                wait = poll_interval
                continue
            failures = 0
            wait = poll_interval
            yield AccountSnapshot({clip.audio_id: clip for clip in clips if clip.audio_id})
    finally:
        await hook.aclose()
