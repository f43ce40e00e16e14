"""The hash and the writing alongside the reading: a bounded pipeline, stopped whole by any failure."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse.exceptions import PixVerseResponseError
from airflow_provider_pixverse.storage import write_stream
from airflow_provider_pixverse.storage_pipeline import BATCH_BYTES, QUEUE_BATCHES, stream_hashed

if TYPE_CHECKING:
    from collections.abc import Iterator

CHUNK = os.urandom(64 * 1024)
BATCH = os.urandom(BATCH_BYTES)  # one chunk, one batch


def test_the_bytes_are_hashed_and_written_in_order() -> None:
    chunks = [os.urandom(n) for n in (1, 4096, 70_000, 3, 1 << 20)]
    written: list[bytes] = []
    size, digest = stream_hashed(iter(chunks), written.append)
    assert written == chunks
    assert (size, digest) == (sum(map(len, chunks)), hashlib.sha256(b"".join(chunks)).hexdigest())


def test_the_reading_goes_on_while_the_store_is_busy_within_the_bound() -> None:
    """A store stuck on the first batch does not stop the reading, for QUEUE_BATCHES batches and no more."""
    released = threading.Event()
    read = 0
    ahead = threading.Event()

    def chunks() -> Iterator[bytes]:
        nonlocal read
        for _ in range(QUEUE_BATCHES * 4):
            read += 1
            if read == QUEUE_BATCHES + 1:
                ahead.set()  # read while the first batch is still being written
            yield BATCH

    def write(_chunk: bytes) -> None:
        if not released.is_set():
            assert ahead.wait(timeout=30), "the reading waited for the store"
            for _ in range(200):  # the reader runs up against the bound, and stops there
                if read >= QUEUE_BATCHES + 2:
                    break
                threading.Event().wait(0.01)
            assert read <= QUEUE_BATCHES + 2
            released.set()

    size, _ = stream_hashed(chunks(), write)
    assert size == len(BATCH) * QUEUE_BATCHES * 4


def test_the_writers_failure_stops_the_reading() -> None:
    read = 0

    def chunks() -> Iterator[bytes]:
        nonlocal read
        for _ in range(10_000):
            read += 1
            yield CHUNK

    def write(_chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        stream_hashed(chunks(), write)
    assert read < 100 * BATCH_BYTES // len(CHUNK)  # stopped within a few batches, not after reading everything


def test_a_failed_read_stops_the_writing_before_it_is_raised() -> None:
    written: list[bytes] = []
    gate = threading.Event()

    def chunks() -> Iterator[bytes]:
        for _ in range(QUEUE_BATCHES):
            yield BATCH
        raise PixVerseResponseError("the download broke")

    def write(chunk: bytes) -> None:
        gate.wait(timeout=0.05)
        written.append(chunk)

    with pytest.raises(PixVerseResponseError, match="broke"):
        stream_hashed(chunks(), write)
    count = len(written)
    gate.wait(timeout=0.2)
    assert len(written) == count < QUEUE_BATCHES  # no write after the error reached the caller


def test_a_bad_body_leaves_no_file_and_no_thread_behind(tmp_path: Path) -> None:
    before = threading.active_count()
    target = ObjectStoragePath(f"file://{tmp_path}/a.mp3")
    with pytest.raises(PixVerseResponseError, match="bytes"):
        write_stream(iter([b"ID3", CHUNK, CHUNK]), target, origin="x", file_size=10, overwrite=False)
    assert list(tmp_path.iterdir()) == [] and threading.active_count() == before
    written = write_stream(iter([b"ID3", CHUNK]), target, origin="x", overwrite=False)
    assert (
        written.sha256 == hashlib.sha256(b"ID3" + CHUNK).hexdigest() == hashlib.sha256(target.read_bytes()).hexdigest()
    )
