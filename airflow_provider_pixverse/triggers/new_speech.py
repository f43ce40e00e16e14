"""The event trigger that schedules DAGs on new speech: one asset event per clip of an account that ends."""

from __future__ import annotations

import itertools
import sys
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.waiting import check_poll_interval
from airflow_provider_pixverse._api.watermark import SpeechWatermark
from airflow_provider_pixverse._compat import BaseEventTrigger, TriggerEvent
from airflow_provider_pixverse.account_poll import NEEDS, SharedAccountPoll, account_snapshots
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
        try:
            if self._watermark is None:
                self._watermark = await self._stored_watermark()
            # With no watermark yet, the newest page is enough to start one.
            NEEDS.watch(group, watcher, self._watermark.settled if self._watermark else sys.maxsize)
            async for snapshot in snapshots:
                if snapshot.error is not None:
                    raise snapshot.error
                for event in await self._announce(list(snapshot.clips.values())):
                    yield event
                if self._watermark is not None:  # _announce started it
                    NEEDS.watch(group, watcher, self._watermark.settled)
        finally:
            NEEDS.unwatch(group, watcher)

    async def _announce(self, clips: list[SpeechClip]) -> list[TriggerEvent]:
        """Events for the clips that ended since the last look; the watermark is stored before they fire."""
        if self._watermark is None:
            self._watermark = await self._stored_watermark()
        if self._watermark is None:
            self._watermark = SpeechWatermark.start(clips, include_existing=self.include_existing)
            if not self.include_existing:
                await self._store_watermark()
                return []
        ended = self._watermark.take(clips, include_failed=self.include_failed)
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
