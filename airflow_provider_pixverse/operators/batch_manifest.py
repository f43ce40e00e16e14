"""The manifest of a corpus (one JSON line per item) and the corpus's small result.

The contract the corpus operator relies on:

- The manifest is the object ``<destination>/<manifest_name>`` (default :data:`MANIFEST_NAME`),
  beside the MP3s: UTF-8, one JSON object per line, one line per item, each a
  :class:`ManifestEntry`: ``name``, ``content_key``, ``audio_ids``, ``credits``, ``duration``,
  ``uri``, ``status`` (one of :data:`STATUSES`) and ``reason`` (why it failed, else ``null``).
  ``credits`` are those this run was charged for the item: 0 for an item ``reused`` (found at
  its destination) and for the second and later items of one create (duplicates: the first
  carries the create's credits), ``null`` when the API did not say.
- :func:`write_manifest` streams the entries into a hidden temporary object beside the manifest
  and moves it into place when whole (as downloads are written, see
  :mod:`airflow_provider_pixverse.storage`): readers see the previous manifest or the new one,
  never half of one. Memory stays bounded whatever the corpus (one line at a time); a line is at
  most :data:`MAX_LINE_BYTES` (a ``reason`` is cut to :data:`MAX_REASON_CHARS`).
- :func:`read_manifest` reads it back tolerantly, one line at a time: a line that is not a valid
  entry (not JSON, a field of the wrong type, over :data:`MAX_LINE_BYTES`) is skipped and counted.
- :class:`BatchResult` is the task's result (its XCom): counts per status, credits estimated and
  charged, the names of failed items (at most :data:`MAX_FAILED_NAMES` and
  :data:`MAX_FAILED_CHARS` characters, the others counted) and the manifest's URI; it stays a few
  KB whatever the corpus size.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse._api.cost import plain_credits
from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError
from airflow_provider_pixverse.operators.batch_items import name_problem

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow.providers.common.compat.sdk import ObjectStoragePath

__all__ = [
    "MANIFEST_NAME",
    "STATUSES",
    "BatchResult",
    "ManifestEntry",
    "ManifestReading",
    "manifest_path",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.jsonl"
STATUSES = ("done", "reused", "failed", "pending")
# A line holds at most 1,000 audio_ids (the most parts of one stored speech) of at most 256
# characters each, a URI and a reason: 512 KiB holds that with room to spare.
MAX_LINE_BYTES = 512 * 1024
MAX_REASON_CHARS = 2000
MAX_URI_CHARS = 4096
MAX_AUDIO_IDS = 1000
MAX_AUDIO_ID_CHARS = 256
MAX_FAILED_NAMES = 100
MAX_FAILED_CHARS = 4000
_READ_BLOCK = 256 * 1024
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ManifestEntry:
    """One line of the manifest: one item and what became of it (see the module for each field)."""

    name: str
    content_key: str
    status: str
    audio_ids: tuple[str, ...] = ()
    credits: float | None = None
    duration: float | None = None
    uri: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise PixVerseInvalidInputError(
                f"manifest entry {self.name!r}: status {self.status!r} is not one of {', '.join(STATUSES)}"
            )

    def to_json(self) -> dict[str, Any]:
        """The entry as its line's JSON object (a reason cut to :data:`MAX_REASON_CHARS`)."""
        reason = self.reason if self.reason is None else self.reason[:MAX_REASON_CHARS]
        return {
            "name": self.name,
            "content_key": self.content_key,
            "audio_ids": list(self.audio_ids),
            "credits": self.credits,
            "duration": self.duration,
            "uri": self.uri,
            "status": self.status,
            "reason": reason,
        }

    @classmethod
    def from_json(cls, data: object) -> ManifestEntry | None:
        """The entry a line holds, every field checked; ``None`` when it is not one."""
        if not isinstance(data, dict):
            return None
        name, key, status = data.get("name"), data.get("content_key"), data.get("status")
        audio_ids = data.get("audio_ids", [])
        ids_ok = isinstance(audio_ids, list) and len(audio_ids) <= MAX_AUDIO_IDS
        if not ids_ok or not all(isinstance(one, str) and 0 < len(one) <= MAX_AUDIO_ID_CHARS for one in audio_ids):
            return None
        if name_problem(name) is not None or not isinstance(key, str) or not _HEX64.fullmatch(key):
            return None
        if status not in STATUSES:
            return None
        try:
            credits, duration = _number(data.get("credits")), _number(data.get("duration"))
            uri, reason = _text(data.get("uri"), MAX_URI_CHARS), _text(data.get("reason"), MAX_REASON_CHARS)
        except _NotAnEntry:
            return None
        return cls(str(name), key, str(status), tuple(audio_ids), credits, duration, uri, reason)


def manifest_path(
    destination: str | ObjectStoragePath, manifest_name: str = MANIFEST_NAME, *, conn_id: str | None = None
) -> ObjectStoragePath:
    """The manifest's object: ``<destination>/<manifest_name>``; the name is checked as an item's name is."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    problem = name_problem(manifest_name)
    if problem is not None:
        raise PixVerseInvalidInputError(f"manifest_name={manifest_name!r}: {problem}")
    folder = (
        destination if isinstance(destination, ObjectStoragePath) else ObjectStoragePath(destination, conn_id=conn_id)
    )
    return folder / manifest_name


def write_manifest(
    target: ObjectStoragePath, entries: Iterable[ManifestEntry], *, result: BatchResult | None = None
) -> str:
    """Stream ``entries`` into ``target`` (a temporary object first, moved into place when whole); its URI.

    Each entry is also counted in ``result`` when given, whose ``manifest`` is set to the URI.
    On any failure the temporary object is removed and an earlier manifest is left as it was.
    """
    from airflow_provider_pixverse.storage import (
        WRITE_BLOCK_SIZE,
        object_uri,
        remove_leftovers,
        storage_failures,
        temporary_name,
    )

    uri = object_uri(target)
    protocol = target.protocol if isinstance(target.protocol, str) else target.protocol[0]
    if protocol in ("", "file", "local"):  # folders exist only on local file systems; a bucket is never made
        with storage_failures(f"creating the folder of {uri}"):
            target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / temporary_name(target.name)
    try:
        with storage_failures(f"writing {uri}"), temporary.open("wb", block_size=WRITE_BLOCK_SIZE) as out:
            for entry in entries:
                line = json.dumps(entry.to_json(), ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                if len(line) > MAX_LINE_BYTES:
                    raise PixVerseInvalidInputError(
                        f"the manifest line of item {entry.name!r} is {len(line):,} bytes; at most {MAX_LINE_BYTES:,}"
                    )
                out.write(line)
                if result is not None:
                    result.add(entry)
        with storage_failures(f"publishing {uri}"):
            temporary.rename(target)
    finally:
        with storage_failures(f"removing the temporary object beside {uri}"), contextlib.suppress(FileNotFoundError):
            if temporary.exists():
                temporary.unlink()
    remove_leftovers(target)
    if result is not None:
        result.manifest = uri
    return uri


class ManifestReading:
    """The entries of a manifest, read one line at a time; ``skipped`` counts the lines that were not entries.

    ``found`` is False when there is no manifest (then there are no entries). Iterate once.
    """

    def __init__(self, target: ObjectStoragePath) -> None:
        self.target = target
        self.skipped = 0
        self.found = False

    def __iter__(self) -> Iterator[ManifestEntry]:
        from airflow_provider_pixverse.speech_metadata import forget_cached
        from airflow_provider_pixverse.storage import object_uri, storage_failures

        forget_cached(self.target)
        with storage_failures(f"reading {object_uri(self.target)}"):
            if not self.target.is_file():
                return
            self.found = True
            with self.target.open("rb") as source:
                for line in _lines(source, self):
                    entry = _entry(line)
                    if entry is None:
                        self.skipped += 1
                    else:
                        yield entry


def read_manifest(target: ObjectStoragePath) -> ManifestReading:
    """The manifest at ``target``, to iterate (see :class:`ManifestReading`)."""
    return ManifestReading(target)


@dataclass
class BatchResult:
    """The result of a corpus: small whatever its size (see the module)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    credits_estimated: float | None = None
    credits_charged: float = 0
    failed: list[str] = field(default_factory=list)
    failed_more: int = 0
    manifest: str | None = None
    _failed_chars: int = field(default=0, repr=False)

    @property
    def items(self) -> int:
        """How many items were counted."""
        return sum(self.counts.values())

    def add(self, entry: ManifestEntry) -> None:
        """Count one item."""
        self.counts[entry.status] = self.counts.get(entry.status, 0) + 1
        if entry.credits is not None:
            self.credits_charged = plain_credits(self.credits_charged + entry.credits)
        if entry.status == "failed":
            if len(self.failed) < MAX_FAILED_NAMES and self._failed_chars + len(entry.name) <= MAX_FAILED_CHARS:
                self.failed.append(entry.name)
                self._failed_chars += len(entry.name)
            else:
                self.failed_more += 1

    def to_json(self) -> dict[str, Any]:
        """The result as the task's XCom."""
        return {
            "items": self.items,
            "counts": dict(self.counts),
            "credits_estimated": self.credits_estimated,
            "credits_charged": self.credits_charged,
            "failed": list(self.failed),
            "failed_more": self.failed_more,
            "manifest": self.manifest,
        }


def _lines(source: Any, reading: ManifestReading) -> Iterator[bytes]:
    """The lines of ``source`` without their ends; a line over :data:`MAX_LINE_BYTES` is dropped and counted."""
    parts: list[bytes] = []  # the line read so far, never over the cap
    size = 0
    too_long = False  # the line read so far is over the cap: dropped up to its end
    while block := source.read(_READ_BLOCK):
        start = 0
        while (end := block.find(b"\n", start)) != -1:
            piece = block[start:end]
            if too_long or size + len(piece) > MAX_LINE_BYTES:
                reading.skipped += 1
            else:
                yield b"".join([*parts, piece])
            parts, size, too_long = [], 0, False
            start = end + 1
        rest = block[start:]
        if not too_long and rest:
            size += len(rest)
            parts.append(rest)
            if size > MAX_LINE_BYTES:
                parts, size, too_long = [], 0, True
    if too_long:
        reading.skipped += 1
    elif size:
        yield b"".join(parts)


def _entry(line: bytes) -> ManifestEntry | None:
    if not line.strip():
        return None
    try:
        return ManifestEntry.from_json(json.loads(line))
    except (ValueError, RecursionError):
        return None


class _NotAnEntry(ValueError):
    """A field of a manifest line that is not what the entry holds."""


def _number(value: object) -> float | None:
    """A finite number from 0, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise _NotAnEntry
    return value


def _text(value: object, limit: int) -> str | None:
    """A string of at most ``limit`` characters, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _NotAnEntry
    return value
