"""The event trigger that schedules DAGs on new speech: one asset event per clip of an account that ends."""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.errors import PixVerseError
from airflow_provider_pixverse._api.retry import is_transient
from airflow_provider_pixverse._api.waiting import check_poll_interval
from airflow_provider_pixverse._api.watermark import SpeechSweep, SpeechWatermark
from airflow_provider_pixverse._compat import BaseEventTrigger, TriggerEvent
from airflow_provider_pixverse.account_poll import (
    NEEDS,
    AccountSnapshot,
    SharedAccountPoll,
    account_snapshots,
    ends_every_wait,
)
from airflow_provider_pixverse.hooks.pixverse import PixVerseHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Hashable

    from airflow_provider_pixverse._api.clip import SpeechClip

__all__ = ["PixVerseNewSpeechTrigger"]

WATERMARK_KEY = "pixverse_watermark"
_WATCHER_IDS = itertools.count()


class PixVerseNewSpeechTrigger(SharedAccountPoll, BaseEventTrigger):
    """
    Fire one event per clip of an account that becomes final, for an ``AssetWatcher``.

    The event's payload is the clip as a JSON dict; Airflow puts it in the asset event's extra
    under ``payload``. Clips made anywhere
    count: the web UI, another tool, a ``replyUrl`` flow. Clips that were final before the watcher
    started are not announced unless ``include_existing``; FAILED ones only with ``include_failed``.

    It never announces a clip twice across triggerer restarts on Airflow 3.3+, where it keeps its
    watermark in the asset's state store. On 3.0-3.2 the watermark lives in memory only: after a
    restart the watcher starts afresh, and clips that ended while no triggerer ran it are not
    announced. On 3.3+ it shares its account's one poll per interval with the waiting triggers.

    When more clips ended than one round lists (a triggerer down for a while), it pages further
    down each round, a bounded number of pages a round, until it reaches its watermark, and logs
    each round that stops short; the watermark moves only over clips it has listed. Only clips of
    ``account_email`` count (the account is in each clip's id), and the listing's order is checked
    by the clip numbers, not trusted.

    .. code-block:: python

        trigger = PixVerseNewSpeechTrigger(account_email="me@example.com")
        Asset("pixverse://me@example.com/speech", watchers=[AssetWatcher(name="new_speech", trigger=trigger)])

    :param account_email: The account to watch.
    :param pixverse_conn_id: The ``pixverse`` connection.
    :param poll_interval: Seconds between looks at the account's newest clips.
    :param include_failed: Announce clips that end other than COMPLETED too.
    :param include_existing: On a first start, announce the clips already final.
    """

    def __init__(
        self,
        *,
        account_email: str,
        pixverse_conn_id: str = "pixverse_default",
        poll_interval: float = 30.0,
        include_failed: bool = False,
        include_existing: bool = False,
    ) -> None:
        super().__init__()
        self.account_email = account_email
        self.pixverse_conn_id = pixverse_conn_id
        self.poll_interval = check_poll_interval(poll_interval)
        self.include_failed = include_failed
        self.include_existing = include_existing
        self._watermark: SpeechWatermark | None = None
        self._sweep: SpeechSweep | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and every constructor argument (no secret among them)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "account_email": self.account_email,
                "pixverse_conn_id": self.pixverse_conn_id,
                "poll_interval": self.poll_interval,
                "include_failed": self.include_failed,
                "include_existing": self.include_existing,
            },
        )

    def account(self) -> str:
        """The account watched."""
        return self.account_email

    def _make_hook(self) -> PixVerseHook:
        return PixVerseHook(self.pixverse_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Before Airflow 3.3: this watcher's own look at the account's newest clips, every interval.

        The same loop as the shared poll's (:func:`~airflow_provider_pixverse.account_poll.account_snapshots`),
        for a group of one, whose first round comes at once.
        """
        group = ("pixverse-watcher", next(_WATCHER_IDS))
        snapshots = account_snapshots(
            self._make_hook(), group, account=self.account_email, poll_interval=self.poll_interval, first_wait=0.0
        )
        try:
            async for event in self._events(snapshots, group):
                yield event
        finally:
            await snapshots.aclose()

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """Airflow 3.3+: the newly final clips out of each round of the account's shared poll."""
        async for event in self._events(shared_stream, self.shared_stream_key()):
            yield event

    async def _events(self, snapshots: AsyncIterator[Any], group: Hashable) -> AsyncIterator[TriggerEvent]:
        """The newly final clips of each snapshot; the group is told how far down to list."""
        watcher = next(_WATCHER_IDS)
        hook: PixVerseHook | None = None
        try:
            if self._watermark is None:
                self._watermark = await self._stored_watermark()
            # With no watermark yet, the newest page is enough to start one.
            NEEDS.watch(group, watcher, self._watermark.settled if self._watermark else sys.maxsize)
            async for snapshot in snapshots:
                if snapshot.error is not None:
                    raise snapshot.error
                if snapshot.failed is not None:
                    self.log.warning("No listing of %s this round (%s)", self.account_email, snapshot.failed)
                    continue
                events = await self._announce(snapshot)
                if self._sweep is not None:  # the round stopped short of the watermark: page on
                    hook = hook or self._make_hook()
                    events += await self._sweep_on(hook)
                for event in events:
                    yield event
                if self._watermark is not None:  # _announce started it
                    # While a sweep goes on, the newest clips are needed down to where it began.
                    NEEDS.watch(group, watcher, self._sweep.top if self._sweep else self._watermark.settled)
        finally:
            NEEDS.unwatch(group, watcher)
            if hook is not None:
                await hook.aclose()

    async def _announce(self, snapshot: AccountSnapshot) -> list[TriggerEvent]:
        """Events for the clips that ended since the last look; the watermark is stored before they fire."""
        clips = list(snapshot.clips.values())
        if self._watermark is None:
            self._watermark = await self._stored_watermark()
        if self._watermark is None:
            self._watermark = SpeechWatermark.start(clips, include_existing=self.include_existing)
            if not self.include_existing:
                await self._store_watermark()
                return []
        mark = self._watermark
        whole = snapshot.covered_above is None or snapshot.covered_above <= mark.settled
        if whole:
            self._sweep = None  # this round listed every clip above the watermark
        elif self._sweep is None and snapshot.last_seen is not None:
            self._sweep = SpeechSweep.begin(snapshot.last_seen, clips, mark.settled)
            self.log.warning(
                "The listing of %s stopped at clip %d, short of the watermark (clip %d): listing further "
                "down from there, round by round",
                self.account_email,
                snapshot.last_seen[1],
                mark.settled,
            )
        return await self._events_for(mark.take(clips, include_failed=self.include_failed, advance=whole))

    async def _sweep_on(self, hook: PixVerseHook) -> list[TriggerEvent]:
        """One more stretch of the sweep down to the watermark (as many pages as one round lists)."""
        sweep, mark = self._sweep, self._watermark
        if sweep is None or mark is None:  # no sweep under way: nothing to list
            return []
        try:
            listing = await hook.alist_account(
                self.account_email, down_to=mark.settled, start_offset=sweep.position, anchor=sweep.anchor
            )
        except PixVerseError as error:
            if ends_every_wait(error):
                raise
            again = "next round" if is_transient(error) else "from the newest clips next round"
            self.log.warning("Listing %s further down failed (%s); again %s", self.account_email, error, again)
            if not is_transient(error):
                self._sweep = None
            return []
        if listing.broken:
            self.log.warning(
                "Clips of %s came or went where the last listing ended: listing again from the newest",
                self.account_email,
            )
            self._sweep = None
            return []
        clips = listing.result()
        ended = mark.take(clips, include_failed=self.include_failed, advance=False)
        sweep.extend(clips, mark.settled)
        sweep.rounds += 1
        covered = listing.covered_above
        if covered is None or covered <= mark.settled:
            before = mark.settled
            mark.settle(sweep.reach())
            self._sweep = None
            self.log.info("Listed %s down to its watermark: now at clip %d", self.account_email, mark.settled)
            if mark.settled != before and not ended:
                await self._store_watermark()
        elif listing.last_seen is not None:
            sweep.position, sweep.anchor = listing.last_seen
            self.log.warning(
                "The listing of %s stopped at clip %d this round, short of the watermark (clip %d): "
                "going on next round",
                self.account_email,
                sweep.anchor,
                mark.settled,
            )
        return await self._events_for(ended)

    async def _events_for(self, ended: list[SpeechClip]) -> list[TriggerEvent]:
        if ended:
            await self._store_watermark()  # at most once: a restart never announces these again
        for clip in ended:
            self.log.info("Clip %s of %s is %s: announcing it", clip.audio_id, self.account_email, clip.status_label)
        return [TriggerEvent(clip.to_json()) for clip in ended]

    async def _stored_watermark(self) -> SpeechWatermark | None:
        store = getattr(self, "asset_state_store", None)  # Airflow 3.3+, and only for watchers
        if store is None:
            return None
        return SpeechWatermark.from_json(await store.aget(WATERMARK_KEY))

    async def _store_watermark(self) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is not None and self._watermark is not None:
            await store.aset(WATERMARK_KEY, self._watermark.to_json())
