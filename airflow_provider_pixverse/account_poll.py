"""One poll per account, however many of its clips wait: the listing the triggers of a group share.

This is the machinery of the triggers (it holds no trigger itself). Airflow 3.3's triggerer runs
:func:`account_snapshots` once per group of triggers with the same shared-stream key (connection,
account, poll interval) and hands every snapshot to each trigger of the group; a watcher of new
speech that runs alone (before 3.3) drives the same loop for itself.

Each round lists the account's clips newest first and pages only as far as the
clips its subscribers wait for (see :class:`~airflow_provider_pixverse._api.listing.SpeechListing`).

- A 429 or a ``Retry-After`` pauses the whole group, and other transient errors back it off, by
  the rules of :class:`~airflow_provider_pixverse._api.retry.RetryPolicy`: no snapshot is sent
  meanwhile, and each subscriber keeps its own deadline.
- An error that no GET of a clip would cure either (a 401, a 402) goes out in a snapshot's
  ``error``, and every subscriber ends with it.
- Any other error (an answer that cannot be read, a page of one clip over the answer cap, a 404)
  goes out as ``failed``: that round shows no clips, and each waiting trigger looks at its own
  clips with their own GETs instead.
- Only clips of the group's account are taken (ids name their account); entries that are not
  clips are skipped, logged once a page.
- A round that tells the group's waiting triggers nothing new (every clip they wait for listed,
  each as the last round sent showed it) wakes none of them (:class:`RoundsWorthSending`): the
  triggerer hands every snapshot to every subscriber, and a clip's wait costs only the rounds in
  which it changed. Groups with watchers, and rounds that failed, are always sent; so is a round
  at least every ``HEARTBEAT_SECONDS``, for the waits' heartbeat lines.
- The group's loop, and its hook, end when its last subscriber leaves (the triggerer cancels it).
"""

from __future__ import annotations

import asyncio
import collections
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.clip import SpeechClip
from airflow_provider_pixverse._api.errors import PixVerseAuthError, PixVerseError, PixVersePaymentError
from airflow_provider_pixverse._api.retry import is_transient
from airflow_provider_pixverse._api.waiting import HEARTBEAT_SECONDS
from airflow_provider_pixverse._compat import HAS_SHARED_STREAMS

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Iterator

    from airflow_provider_pixverse.hooks.pixverse import PixVerseHook


_STATUS_FIELDS = ("audio_status", "audio_status_name", "audio_status_final")


class ListedClips(Mapping[str, "SpeechClip"]):
    """The clips of one round by ``audio_id``, kept as the API sent them: each is built when looked up.

    A round of 10,000 clips then holds 10,000 plain JSON objects, which the garbage collector does
    not track, instead of as many clip objects that it would walk at every full collection; and a
    subscriber builds only the clips it waits for.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: dict[str, dict[str, Any]]) -> None:
        self._raw = raw

    def __getitem__(self, audio_id: str) -> SpeechClip:
        return SpeechClip.from_json(self._raw[audio_id])

    def get(self, audio_id: str, default: Any = None) -> Any:  # one lookup, not two
        """The clip ``audio_id`` (built now), or ``default``."""
        entry = self._raw.get(audio_id)
        return default if entry is None else SpeechClip.from_json(entry)

    def __contains__(self, audio_id: object) -> bool:
        return audio_id in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def raw(self, audio_id: str) -> dict[str, Any] | None:
        """The clip ``audio_id`` as the API sent it, unbuilt (``None`` when not listed)."""
        return self._raw.get(audio_id)

    def status_of(self, audio_id: str) -> tuple[Any, ...] | None:
        """The status fields of the clip ``audio_id`` as sent (``None`` when not listed): what a wait decides by."""
        entry = self._raw.get(audio_id)
        return None if entry is None else tuple(entry.get(name) for name in _STATUS_FIELDS)


@dataclass(frozen=True)
class AccountSnapshot:
    """What one round of the shared poll saw: the clips listed (by ``audio_id``), or the error that ends the group.

    ``clips`` maps ``audio_id`` to the clip (a :class:`ListedClips` from a round: each built as it
    is looked up). ``failed`` is the error of a round that could not list (its ``clips`` are
    empty): the clips are looked at one by one instead. ``covered_above``: every clip of the
    account numbered above it was listed (``None``: the listing reached its last page; see
    ``SpeechListing.covered_above``). ``last_seen``: the position and number of the last clip
    listed, where a further listing may go on.
    """

    clips: Mapping[str, SpeechClip]
    error: PixVerseError | None = None
    failed: PixVerseError | None = None
    covered_above: int | None = None
    last_seen: tuple[int, int] | None = None


def ends_every_wait(error: PixVerseError) -> bool:
    """Whether a listing's ``error`` would fail every GET of the account's clips too (the token, the account)."""
    return isinstance(error, (PixVerseAuthError, PixVersePaymentError))


class GroupNeeds:
    """What the subscribers of each group need listed (one registry per triggerer process).

    Waiting triggers need their clips (``want``); watchers of new speech need every clip newer
    than their watermark (``watch``). Each round lists as far as the group's needs reach.
    """

    def __init__(self) -> None:
        self._wanted: dict[Hashable, collections.Counter[str]] = {}
        self._floors: dict[Hashable, dict[int, int]] = {}
        self._joins: collections.Counter[Hashable] = collections.Counter()

    def want(self, group: Hashable, audio_id: str) -> None:
        """A subscriber of ``group`` starts waiting for ``audio_id``."""
        self._wanted.setdefault(group, collections.Counter())[audio_id] += 1
        self._joins[group] += 1

    def joins(self, group: Hashable) -> int:
        """How many waits have begun in ``group`` so far (it only grows): a new one needs the next round."""
        return self._joins[group]

    def unwant(self, group: Hashable, audio_id: str) -> None:
        """A subscriber of ``group`` stops waiting for ``audio_id``."""
        wanted = self._wanted.get(group)
        if wanted is None:
            return
        wanted[audio_id] -= 1
        if wanted[audio_id] <= 0:
            del wanted[audio_id]
        if not wanted:
            del self._wanted[group]

    def watch(self, group: Hashable, watcher: int, down_to: int) -> None:
        """A watcher of ``group`` needs every clip numbered above ``down_to`` (called again as it moves)."""
        self._floors.setdefault(group, {})[watcher] = down_to

    def unwatch(self, group: Hashable, watcher: int) -> None:
        """A watcher of ``group`` leaves."""
        floors = self._floors.get(group, {})
        floors.pop(watcher, None)
        if not floors:
            self._floors.pop(group, None)

    def of(self, group: Hashable) -> tuple[frozenset[str], int | None]:
        """The clips ``group`` waits for, and the lowest clip number its watchers need listed down to."""
        floors = self._floors.get(group)
        return frozenset(self._wanted.get(group, ())), min(floors.values()) if floors else None


NEEDS = GroupNeeds()


async def account_snapshots(
    hook: PixVerseHook,
    group: Hashable,
    *,
    account: str,
    poll_interval: float,
    first_wait: float | None = None,
) -> AsyncGenerator[AccountSnapshot]:
    """Every ``poll_interval``, one listing of ``account`` as far as ``group`` needs; forever.

    Rounds keep to the clock: each begins one interval after the previous one began, however long
    its listing took (its pages are fetched up to the connection's ``list_concurrency`` at once).
    A round that took longer than an interval is followed by the next at once, and the log says
    so; one group never runs two rounds at once. The first round comes after ``first_wait``
    (default: one interval, since the tasks that deferred have just looked at their clips).
    Failures back off by the hook's retry policy, counted from when the failed round ended.
    """
    policy = hook.retry_policy
    clock = hook.clock
    failures = 0
    next_round = clock.time() + (poll_interval if first_wait is None else first_wait)
    try:
        while True:
            await clock.asleep(max(next_round - clock.time(), 0.0))
            began = clock.time()
            next_round = began + poll_interval
            wanted, down_to = NEEDS.of(group)
            if not wanted and down_to is None:
                continue
            try:
                listing = await hook.alist_account(account, wanted, down_to=down_to)
            except PixVerseError as error:
                if is_transient(error):
                    failures += 1
                    wait = policy.delay(failures, error)
                    next_round = clock.time() + wait
                    hook.log.warning("Listing %s's clips failed (%s); again in %.1f s", account, error, wait)
                    continue
                failures = 0
                if ends_every_wait(error):
                    yield AccountSnapshot({}, error)
                else:
                    hook.log.warning("Listing %s's clips failed (%s): each clip is looked up by itself", account, error)
                    yield AccountSnapshot({}, failed=error, covered_above=sys.maxsize)
                continue
            failures = 0
            took = clock.time() - began
            if took > poll_interval:
                hook.log.warning(
                    "Listing %s's clips took %.1f s (%d pages), longer than the %.1f s poll interval: "
                    "the next round starts at once",
                    account,
                    took,
                    listing.pages,
                    poll_interval,
                )
            yield AccountSnapshot(
                ListedClips({entry["audio_id"]: entry for entry in listing.raw()}),
                covered_above=listing.covered_above,
                last_seen=listing.last_seen,
            )
    finally:
        await hook.aclose()


class RoundsWorthSending:
    """Which rounds of a group's poll tell its subscribers something new (see the module).

    A round is sent when it failed, when the group has watchers (they need every new clip), when
    a clip waited for is not listed (its trigger looks it up itself), when any clip waited for has
    another status than in the last round sent (the status fields are all a wait decides by; the
    rest of a clip comes with the round its status changes in), when a wait began since the last
    round sent (a trigger joined, even for a clip another already waits for), and at least every
    ``heartbeat`` seconds. Only the statuses are kept between rounds, never a round's clips.
    """

    def __init__(self, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.heartbeat = heartbeat
        self._sent: tuple[int, dict[str, Any]] | None = None  # joins, and the statuses waited for, as last sent
        self._sent_at = -math.inf

    def worth_sending(self, snapshot: AccountSnapshot, group: Hashable, now: float, needs: GroupNeeds) -> bool:
        """Whether ``snapshot`` goes to ``group``'s subscribers (and becomes the round the next is compared with)."""
        wanted, down_to = needs.of(group)
        clips = snapshot.clips
        if snapshot.error or snapshot.failed or down_to is not None or not isinstance(clips, ListedClips):
            self._sent = None
            return True
        seen = (needs.joins(group), {audio_id: clips.status_of(audio_id) for audio_id in wanted})
        if seen == self._sent and now - self._sent_at < self.heartbeat and None not in seen[1].values():
            return False
        self._sent, self._sent_at = seen, now
        return True


class SharedAccountPoll:
    """For triggers that share their account's poll (Airflow 3.3+): the group key and the group's loop.

    Waiting triggers and watchers of new speech of one connection, account and poll interval
    make one group, whichever kind subscribes first: both open the same loop.
    """

    pixverse_conn_id: str
    poll_interval: float

    def account(self) -> str:
        """The account whose clips this trigger needs."""
        raise NotImplementedError

    def _make_hook(self) -> PixVerseHook:
        raise NotImplementedError

    def shared_stream_key(self) -> Hashable | None:
        """The group whose one poll this trigger shares: connection, account, interval (``None`` before 3.3)."""
        if not HAS_SHARED_STREAMS:
            return None
        key = self.__dict__.get("_shared_stream_key")  # asked for often (per subscription, per trigger): built once
        if key is None:
            key = self.__dict__["_shared_stream_key"] = (
                "pixverse-account",
                self.pixverse_conn_id,
                self.account(),
                float(self.poll_interval),
            )
        return key

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[AccountSnapshot]:
        """The group's poll: one listing of the account per interval, for as long as the group lives."""
        trigger = cls(**kwargs)  # the trigger class's own constructor
        hook = trigger._make_hook()
        group = trigger.shared_stream_key()
        interval = float(trigger.poll_interval)
        snapshots = account_snapshots(hook, group, account=trigger.account(), poll_interval=interval)
        rounds = RoundsWorthSending()
        async for snapshot in snapshots:
            # The comparison in a loop turn of its own: at 10,000 clips, the round's last page, its
            # clips by id, the comparison and the fan-out to every subscriber made one 55-70 ms step.
            await asyncio.sleep(0)
            if rounds.worth_sending(snapshot, group, hook.clock.time(), NEEDS):
                yield snapshot
