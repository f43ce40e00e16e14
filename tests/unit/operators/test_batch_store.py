"""The corpus's state in the task state store: shards of requests, a save writing only those that changed."""

from __future__ import annotations

import json
from typing import Any

from pixverse_testing import MemoryStateStore

from airflow_provider_pixverse._api.speech_job import PartState, SpeechJob
from airflow_provider_pixverse.operators.batch_state import BATCH_STATE_KEY, DONE, BatchState, RequestState
from airflow_provider_pixverse.operators.batch_store import SHARD_REQUESTS, BatchStateStore, shard_key


class CountingStore(MemoryStateStore):
    """A task state store that counts the values written and the bytes they took."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def set(self, key: str, value: Any) -> None:
        super().set(key, value)
        self.writes.append(key)


def corpus_state(n: int) -> BatchState:
    """``n`` requests in flight, each a part created (its intent and audio_id kept), as a corpus's state holds them."""
    requests = {}
    for index in range(n):
        key = f"{index:064x}"
        intent = {"content_key": key, "email": None, "voice_id": "minimax_english_radiant_girl", "at": 1000.0 + index}
        part = PartState(index=0, start=0, end=180, audio_id=f"user:1-pixverse:a@b.c-speech:{index}", intent=intent)
        job = SpeechJob(key, 2000, {"credits": 12, "part_credits": [12]}, parts=[part])
        requests[key] = RequestState(
            key=key, names=[f"item-{index}"], job=job, sent_to={"0": "a@b.c"}, deadlines={"0": 5000.0}
        )
    return BatchState(requests=requests, credits_estimated=float(n), started=1000.0)


def written(request: RequestState, uri: str) -> None:
    request.status, request.job, request.sent_to, request.deadlines = DONE, None, {}, {}
    request.result = {"audio_ids": ["a"], "credits": 1, "duration": 1.0, "uris": [uri]}


def test_a_save_writes_only_the_shards_that_changed() -> None:
    raw = CountingStore()
    store = BatchStateStore(raw)
    state = corpus_state(3 * SHARD_REQUESTS)
    assert store.save(state) == 4  # three shards and the header
    assert store.save(state) == 0  # nothing changed: nothing written
    written(list(state.requests.values())[SHARD_REQUESTS + 1], "file:///out/item-26.mp3")
    raw.writes.clear()
    assert store.save(state) == 1 and raw.writes == [shard_key(1)]
    state.resumes += 1
    raw.writes.clear()
    assert store.save(state) == 1 and raw.writes == [BATCH_STATE_KEY]


def test_a_resumed_try_reads_the_state_back_in_order_and_writes_nothing_unchanged() -> None:
    raw = CountingStore()
    state = corpus_state(2 * SHARD_REQUESTS + 3)
    written(list(state.requests.values())[-1], "file:///out/last.mp3")
    BatchStateStore(raw).save(state)
    again = BatchStateStore(raw)  # the next try: another process, another operator
    loaded = again.load()
    assert loaded is not None
    assert [r.to_json() for r in loaded.requests.values()] == [r.to_json() for r in state.requests.values()]
    assert (loaded.credits_estimated, loaded.started) == (state.credits_estimated, state.started)
    raw.writes.clear()
    assert again.save(loaded) == 0 and raw.writes == []


def test_each_value_stays_far_below_the_stores_64_kib_and_one_save_is_not_the_corpus() -> None:
    """The whole document of 2,000 requests in flight was one value of 1.4 MB, written whole at every save."""
    raw = CountingStore()
    state = corpus_state(2000)
    whole = len(json.dumps(state.to_json()))
    store = BatchStateStore(raw)
    store.save(state)
    sizes = [len(json.dumps(value)) for value in raw.values.values()]
    assert max(sizes) < 64 * 1024 // 2 < whole, (max(sizes), whole)
    written(next(iter(state.requests.values())), "s3://speech/corpus/item-0.mp3")
    assert store.save(state) == 1  # one request changed: one shard of 25 written, not 2,000 requests


def test_a_state_saved_whole_by_an_earlier_release_is_read() -> None:
    raw = MemoryStateStore()
    state = corpus_state(3)
    raw.set(BATCH_STATE_KEY, state.to_json())
    loaded = BatchStateStore(raw).load()
    assert loaded is not None and list(loaded.requests) == list(state.requests)


def test_a_lost_shard_reads_as_no_state_and_fewer_requests_drop_their_shards() -> None:
    raw = MemoryStateStore()
    store = BatchStateStore(raw)
    state = corpus_state(2 * SHARD_REQUESTS + 1)
    store.save(state)
    for key in list(state.requests)[SHARD_REQUESTS:]:  # the corpus changed under a resumed state
        del state.requests[key]
    store.save(state)
    assert shard_key(1) not in raw.values and shard_key(2) not in raw.values
    assert raw.values[BATCH_STATE_KEY]["shards"] == 1
    raw.delete(shard_key(0))
    assert BatchStateStore(raw).load() is None  # the operator plans again from what the destination holds
    store.delete()
    assert raw.values == {}
