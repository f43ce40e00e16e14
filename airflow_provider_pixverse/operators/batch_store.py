"""The corpus's state in the task state store: a header and shards of requests, a save writing only what changed.

One document of every request, written whole at each save, cost the store the corpus once per
save: a corpus of N requests saved every 50 writes moved about N² / 50 requests through the task,
its supervisor, the API server and the database, and each value was far over the store's
``max_value_storage_bytes`` (64 KiB by default). Here the header (key :data:`BATCH_STATE_KEY`)
holds the corpus-wide fields and the number of shards; shard ``i`` (key ``pixverse_batch/i``)
holds the requests ``i * SHARD_REQUESTS`` to ``(i + 1) * SHARD_REQUESTS - 1`` in the corpus's
order, which a resumed state keeps. A save writes a shard only when its JSON differs from what
was last written or read, so a save costs the store the requests that changed.

A kill between two writes of one save leaves some shards newer than others: each request is
whole in its shard, and every request's state is one the corpus was in (a write the kill kept
out is done again by the retry, as a kill between two saves already did). A header written by an
earlier release (the whole document, its ``requests`` inline) is read as it is.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_pixverse.operators.batch_state import BATCH_STATE_KEY, BatchState

# Requests per shard: a pending request (its job, parts, intents and clips) is about 1 to 2 KB of
# JSON, so a shard stays under the store's 64 KiB default for texts of ordinary length.
SHARD_REQUESTS = 25


def shard_key(index: int) -> str:
    """The task state store's key of shard ``index``."""
    return f"{BATCH_STATE_KEY}/{index}"


class BatchStateStore:
    """A :class:`BatchState` kept in the task state store (``context["task_state_store"]``), in shards."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._written: dict[str, str] = {}  # key -> the JSON last written there or read from it
        self._shards = 0

    def load(self) -> BatchState | None:
        """The state saved by an earlier try or run; ``None`` when there is none, or not one this release reads."""
        header = self.store.get(BATCH_STATE_KEY)
        if not isinstance(header, dict) or "shards" not in header:
            return BatchState.from_json(header)  # none, or the whole document of an earlier release
        count = header["shards"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return None
        requests: list[Any] = []
        for index in range(count):
            shard = self.store.get(shard_key(index))
            if not isinstance(shard, list):
                return None  # a shard lost: the operator plans again from what the destination holds
            self._written[shard_key(index)] = _text(shard)
            requests.extend(shard)
        self._written[BATCH_STATE_KEY] = _text(header)
        self._shards = count
        fields = {name: value for name, value in header.items() if name != "shards"}
        return BatchState.from_json({**fields, "requests": requests})

    def save(self, state: BatchState) -> int:
        """Write the shards that changed, then the header; the number of values written."""
        document = state.to_json()
        requests = document.pop("requests")
        shards = [requests[start : start + SHARD_REQUESTS] for start in range(0, len(requests), SHARD_REQUESTS)]
        written = sum(self._put(shard_key(index), shard) for index, shard in enumerate(shards))
        written += self._put(BATCH_STATE_KEY, {**document, "shards": len(shards)})
        for index in range(len(shards), self._shards):  # fewer requests than before (the corpus changed)
            self._drop(shard_key(index))
        self._shards = len(shards)
        return written

    def delete(self) -> None:
        """Remove the header and every shard (the corpus is written: a re-run looks at the objects)."""
        self._drop(BATCH_STATE_KEY)  # first: a kill after it leaves shards no header names, never a header without them
        for index in range(self._shards):
            self._drop(shard_key(index))
        self._shards = 0

    def _put(self, key: str, value: Any) -> int:
        text = _text(value)
        if self._written.get(key) == text:
            return 0
        self.store.set(key, value)
        self._written[key] = text
        return 1

    def _drop(self, key: str) -> None:
        self.store.delete(key)
        self._written.pop(key, None)


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
