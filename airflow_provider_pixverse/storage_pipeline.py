"""The bytes of a download hashed and written alongside their reading: a bounded pipeline of three threads.

The calling thread reads the chunks (the socket) and checks them as they come; one worker thread
computes their SHA-256 and another writes them to the store, each fed through its own bounded
queue of the chunks already read. Chunks go to the workers in batches of at least
:data:`BATCH_BYTES` (a socket read gives up to about 512 KiB at a time: one hand-over per chunk would cost
more than the hash), at most :data:`QUEUE_BATCHES` batches waiting (about 8 MiB in flight).
``hashlib``, file writes and socket reads release the GIL on large buffers, so the three overlap
on as many cores as there are: the hash costs no wall time while a core is free.

A failure anywhere stops the whole: a worker's error is raised in the calling thread at its next
batch (or at the end), and an error (or a kill) while reading stops both workers before it goes
on, so nothing is written once :func:`stream_hashed` has returned or raised.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import TYPE_CHECKING

from airflow_provider_pixverse._api.media import check_mp3_start
from airflow_provider_pixverse.exceptions import PixVerseResponseError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

# Bytes handed to the workers at once, and batches each worker may lag behind the reading: fewer,
# larger hand-overs cost less (at 1 GB, 4 MiB x 2 took the client 1.45 CPU-s/GB against 1.59 at 1 MiB x 8).
BATCH_BYTES = 4 * 1024 * 1024
QUEUE_BATCHES = 2
_END = object()
_SIGNATURE_BYTES = 4


class _Worker(threading.Thread):
    """Applies ``apply`` to each chunk of the batches put in its queue, in order, until the end or a stop."""

    def __init__(self, name: str, apply: Callable[[bytes], object]) -> None:
        super().__init__(name=name, daemon=True)
        self.apply = apply
        self.batches: queue.Queue[object] = queue.Queue(maxsize=QUEUE_BATCHES)
        self.error: BaseException | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while (batch := self.batches.get()) is not _END:
            for chunk in batch:  # type: ignore[attr-defined]
                if self.error is not None or self.stopped.is_set():
                    break
                try:
                    self.apply(chunk)
                except BaseException as error:  # raised in the reading thread
                    self.error = error
            # After an error or a stop the queue is still drained: the reader never blocks on it.

    def finish(self) -> None:
        self.batches.put(_END)
        self.join()


def stream_hashed(chunks: Iterable[bytes], write: Callable[[bytes], object]) -> tuple[int, str]:
    """Read ``chunks`` here, hash and ``write`` them in two worker threads; their total length and SHA-256.

    :param chunks: The bytes, as they are read (checked by the iterator itself, which may raise).
    :param write: Writes one chunk to the store (called in order, from one thread).
    """
    digest = hashlib.sha256()
    hasher = _Worker("pixverse-hash", digest.update)
    writer = _Worker("pixverse-write", write)
    workers = (hasher, writer)
    for worker in workers:
        worker.start()
    size = 0
    batch: list[bytes] = []
    batched = 0
    try:
        for chunk in chunks:
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BATCH_BYTES:
                _hand_over(workers, batch)
                size += batched
                batch, batched = [], 0
        _hand_over(workers, batch)
        size += batched
    except BaseException:
        for worker in workers:
            worker.stopped.set()
        raise
    finally:
        for worker in workers:
            worker.finish()
    _raise_failed(workers)
    return size, digest.hexdigest()


def _hand_over(workers: tuple[_Worker, ...], batch: list[bytes]) -> None:
    for worker in workers:
        worker.batches.put(batch)
    _raise_failed(workers)


def _raise_failed(workers: tuple[_Worker, ...]) -> None:
    for worker in workers:
        if worker.error is not None:
            raise worker.error


class CheckedChunks:
    """The chunks of a download, checked as they are read: the MP3 signature and ``max_bytes``."""

    def __init__(self, chunks: Iterable[bytes], origin: str, content_type: str, max_bytes: int | None) -> None:
        self.chunks = chunks
        self.origin = origin
        self.content_type = content_type
        self.max_bytes = max_bytes
        self.head = b""
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if len(self.head) < _SIGNATURE_BYTES:
                self.head += chunk[: _SIGNATURE_BYTES - len(self.head)]
                if len(self.head) >= _SIGNATURE_BYTES:
                    check_mp3_start(self.head, url=self.origin, content_type=self.content_type)
            self.size += len(chunk)
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise PixVerseResponseError(f"the download from {self.origin} passed max_bytes ({self.max_bytes})")
            yield chunk

    def finish(self) -> None:
        """Check a body too short to have been checked while it came."""
        if len(self.head) < _SIGNATURE_BYTES:
            check_mp3_start(self.head, url=self.origin, content_type=self.content_type)
