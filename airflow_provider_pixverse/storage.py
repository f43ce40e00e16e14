"""Writing a download into object storage: published only when whole, checked, with its metadata.

Which store takes which path:

- **S3** (``s3://``, through s3fs): straight into the destination key by a multipart upload,
  completed only once the bytes are checked and aborted otherwise (see
  :mod:`airflow_provider_pixverse.storage_upload`): nothing shows until the completion, no
  temporary object, no copy; the bytes are written to the store once. Without ``overwrite`` the
  completion carries ``If-None-Match: *``. User metadata can be given only when an upload is
  created, before its bytes are known, so a write that stores metadata with the object
  (``before_publish``: its content key, length and SHA-256) first spools the bytes to a local
  temporary file (hashed as they come), then uploads them once, the metadata on the upload.
- **local files**: a hidden temporary file beside the target, renamed into place (atomic, free).
- **every other store** (GCS, Azure, ...): the temporary object then a rename, as local files.
  GCS's resumable uploads and Azure's block lists also publish at their commit, but gcsfs's and
  adlfs's code (how they commit, abort and take metadata) was neither read nor tested here, so
  they keep the path that is known to hold.

The temporary object sits beside the target, named ``.<name>.<32 hex>.part`` (the name cut so
the whole stays within 255 bytes). A later successful download of the same target removes any
such leftovers of a download that was killed, and on S3 the target key's uploads a killed run
left open. Folders are created only on local file systems; a bucket or container is never created.

The SHA-256 is computed alongside reading and writing (:mod:`airflow_provider_pixverse.storage_pipeline`).

What is stored with the object (its metadata) is staged before the object is published
(``before_publish``), so the object never shows without it. The steps of a write, in order:
the bytes streamed and checked (``streamed``), the metadata staged (``staged``), the object
published (``published``); :func:`step` marks each boundary.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse._api.media import (
    MAX_NAME_BYTES,
    TEMPORARY_NAME_BYTES,
    check_length,
    fit_name,
    safe_file_name,
)
from airflow_provider_pixverse.exceptions import (
    DestinationExistsError,
    PixVerseInvalidInputError,
    PixVerseResponseError,
    PixVerseStorageError,
)
from airflow_provider_pixverse.storage_pipeline import CheckedChunks, stream_hashed
from airflow_provider_pixverse.storage_upload import (
    DirectUpload,
    PendingUpload,
    abort_stale_uploads,
    publishes_on_commit,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import MediaStream

# Buffered per object while writing (an S3 multipart part, a GCS chunk): bounds memory.
WRITE_BLOCK_SIZE = 8 * 1024 * 1024
_READ_BLOCK_SIZE = 1024 * 1024
log = logging.getLogger(__name__)
_LOCAL_PROTOCOLS = ("", "file", "local")
_MP3_TYPE = "audio/mpeg"
# A temporary object younger than this may be another run's download of the same target, still
# on its way (two runs of one speech write the same bytes): it is left alone.
LEFTOVER_MIN_AGE_SECONDS = 600.0


def step(name: str) -> None:
    """The boundary ``name`` between two steps of a write has been passed (a point a kill may fall at; no-op)."""


@dataclass(frozen=True)
class WrittenObject:
    """What a download left in storage."""

    path: ObjectStoragePath
    size: int
    sha256: str
    written: bool  # False when an identical object was already there


if TYPE_CHECKING:
    # What a write calls just before it publishes: where the metadata goes, and what is written.
    BeforePublish = Callable[[ObjectStoragePath | PendingUpload, WrittenObject], None]


def resolve_destination(
    destination: str | ObjectStoragePath, clip: SpeechClip, *, conn_id: str | None = None
) -> ObjectStoragePath:
    """The object to write: ``destination`` itself, or a file named after the clip inside it.

    It names a folder when the string ends with ``/`` (``ObjectStoragePath`` drops that) or has
    no file suffix. A file target that is a folder or a symbolic link is refused.
    """
    given = str(destination)
    if isinstance(destination, ObjectStoragePath):
        path = destination
    else:
        _refuse_file_uri_with_host(given)
        path = ObjectStoragePath(given, conn_id=conn_id)
    target = path / safe_file_name(clip.name, clip.audio_id or "speech") if _names_folder(given, path) else path
    with storage_failures(f"checking {object_uri(target)}"):
        if _is_local(target) and os.path.islink(target.path):
            raise PixVerseInvalidInputError(
                f"the destination {object_uri(target)} is a symbolic link; give the path it points to"
            )
        if target.is_dir():
            raise PixVerseInvalidInputError(
                f"the destination {object_uri(target)} is a folder; end it with '/' to write the clip into it"
            )
    return target


def object_uri(path: ObjectStoragePath) -> str:
    """The plain URI of ``path`` (``s3://bucket/key``), without the connection id it carries."""
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    return f"{protocol}://{path.path}" if protocol else f"file://{path.path}"


def write_download(
    media: MediaStream,
    target: ObjectStoragePath,
    *,
    file_size: int | None,
    max_bytes: int | None,
    overwrite: bool,
    before_publish: BeforePublish | None = None,
) -> WrittenObject:
    """Stream a download into ``target`` (see :func:`write_stream`), checked against what its answer announced."""
    return write_stream(
        media.chunks,
        target,
        origin=media.url,
        content_type=media.content_type,
        content_length=media.content_length,
        file_size=file_size,
        max_bytes=max_bytes,
        overwrite=overwrite,
        before_publish=before_publish,
    )


def write_stream(
    chunks: Iterable[bytes],
    target: ObjectStoragePath,
    *,
    origin: str,
    content_type: str = "audio/mpeg",
    content_length: int | None = None,
    file_size: int | None = None,
    max_bytes: int | None = None,
    overwrite: bool,
    before_publish: BeforePublish | None = None,
) -> WrittenObject:
    """Stream MP3 ``chunks`` into ``target``, check them, and publish the object only then (see the module).

    ``origin`` names where the bytes come from, for messages. The bytes must start as an MP3 does
    and be as long as ``content_length`` and ``file_size`` say, where given. An object already at
    ``target`` is kept when its bytes are the same (same SHA-256), replaced when ``overwrite``, and
    refused otherwise. On any failure nothing is published (the temporary object is removed, the
    upload aborted) and ``target`` is left as it was. ``before_publish`` is called with what will
    be written, just before it is published (not when an identical object is kept), and with where
    the metadata goes: the temporary object about to be moved into place, or on S3 the
    :class:`~airflow_provider_pixverse.storage_upload.PendingUpload` about to be sent.
    """
    if max_bytes is not None:
        for announced in (content_length, file_size):
            if announced is not None and announced > max_bytes:
                raise PixVerseResponseError(f"the clip at {origin} is {announced} bytes; max_bytes is {max_bytes}")
    uri = object_uri(target)
    checked = CheckedChunks(chunks, origin, content_type, max_bytes)
    lengths = {"content_length": content_length, "file_size": file_size}
    if publishes_on_commit(target):
        if before_publish is None:
            written = _write_direct(target, checked, lengths, overwrite=overwrite)
        else:
            written = _write_spooled(target, checked, lengths, overwrite=overwrite, before_publish=before_publish)
        try:
            with storage_failures(f"listing the multipart uploads a killed download of {uri} may have left"):
                abort_stale_uploads(target)
        except PixVerseStorageError as error:  # the object is published: the clean-up is best effort
            log.warning("%s; an AbortIncompleteMultipartUpload lifecycle rule removes them instead", error)
        remove_leftovers(target)
        return written
    if _is_local(target):
        with storage_failures(f"creating the folder of {uri}"):
            target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / temporary_name(target.name)
    try:
        with storage_failures(f"writing {uri}"), temporary.open("wb", block_size=WRITE_BLOCK_SIZE) as out:
            size, digest = stream_hashed(checked, out.write)
        checked.finish()
        check_length(size, url=origin, **lengths)
        step("streamed")
        written = _publish(temporary, target, size, digest, overwrite=overwrite, before_publish=before_publish)
    finally:
        with storage_failures(f"removing the temporary object beside {uri}"), contextlib.suppress(FileNotFoundError):
            if temporary.exists():
                temporary.unlink()
    remove_leftovers(target)
    return written


def temporary_name(name: str) -> str:
    """The hidden name a download is written under before it is whole."""
    return f".{_temporary_stem(name)}.{uuid.uuid4().hex}.part"


def remove_leftovers(target: ObjectStoragePath) -> list[str]:
    """Remove temporary objects that downloads of ``target`` killed mid-stream left beside it.

    Only those older than :data:`LEFTOVER_MIN_AGE_SECONDS`: a younger one may be another run's, still being written.
    """
    stem = _temporary_stem(target.name)
    pattern = re.compile(rf"\.{re.escape(stem)}\.[0-9a-f]{{32}}\.part")
    parent = target.parent
    removed = []
    now = datetime.now(UTC)
    with storage_failures(f"removing leftovers beside {object_uri(target)}"):
        for found in _leftover_candidates(parent, f".{glob.escape(stem)}.*.part"):
            if pattern.fullmatch(str(found).rsplit("/", 1)[-1]) and _older_than(parent.fs, found, now):
                with contextlib.suppress(FileNotFoundError):
                    parent.fs.rm(found)
                removed.append(str(found))
    return removed


def _leftover_candidates(parent: ObjectStoragePath, pattern: str) -> list[str]:
    """The objects in ``parent`` named by ``pattern``: locally by the standard library's ``glob``, as fsspec's
    stats every object of the folder (23 ms at 2,000, paid at every write of a corpus); stores list by prefix."""
    if _is_local(parent):
        return glob.glob(os.path.join(glob.escape(str(parent.path)), pattern))
    return list(parent.fs.glob(f"{parent.path}/{pattern}"))


@contextlib.contextmanager
def storage_failures(what: str) -> Iterator[None]:
    """Map a store's failure (missing bucket, permission, not a folder, ...) to :class:`PixVerseStorageError`."""
    try:
        yield
    except OSError as error:
        detail = error.strerror or str(error) or type(error).__name__
        raise PixVerseStorageError(f"{what} failed: {type(error).__name__}: {detail}") from error


def _older_than(fs: Any, path: str, now: datetime) -> bool:
    try:
        modified = fs.modified(path)
    except FileNotFoundError:
        return False
    except (NotImplementedError, OSError):
        return True  # a store that cannot tell: as before
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return bool((now - modified).total_seconds() >= LEFTOVER_MIN_AGE_SECONDS)


def _temporary_stem(name: str) -> str:
    return fit_name(name, MAX_NAME_BYTES - TEMPORARY_NAME_BYTES)


def _names_folder(given: str, path: ObjectStoragePath) -> bool:
    return given.endswith("/") or not path.suffix


def _refuse_file_uri_with_host(given: str) -> None:
    parts = urlsplit(given)
    if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
        raise PixVerseInvalidInputError(
            f"the destination {given!r} has a host part ({parts.netloc!r}): a local path takes three slashes, "
            f"as in 'file:///{parts.netloc}{parts.path}'"
        )


def _is_local(path: ObjectStoragePath) -> bool:
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    return protocol in _LOCAL_PROTOCOLS


def _write_direct(
    target: ObjectStoragePath, checked: CheckedChunks, lengths: dict[str, int | None], *, overwrite: bool
) -> WrittenObject:
    """S3 without metadata: the bytes streamed straight into the key, the upload completed once checked."""
    uri = object_uri(target)
    with storage_failures(f"writing {uri}"):
        upload = DirectUpload(target, block_size=WRITE_BLOCK_SIZE, content_type=_MP3_TYPE, overwrite=overwrite)
    with _discarded_unless_committed(upload) as committed:
        with storage_failures(f"writing {uri}"):
            size, digest = stream_hashed(checked, upload.write)
        checked.finish()
        check_length(size, url=checked.origin, **lengths)
        step("streamed")
        return _commit(upload, committed, size, digest, overwrite=overwrite)


def _write_spooled(
    target: ObjectStoragePath,
    checked: CheckedChunks,
    lengths: dict[str, int | None],
    *,
    overwrite: bool,
    before_publish: BeforePublish,
) -> WrittenObject:
    """S3 with metadata: the bytes spooled to a local file (hashed), then uploaded once with their metadata."""
    uri = object_uri(target)
    with tempfile.TemporaryDirectory(prefix="pixverse-upload-") as folder:
        spool = os.path.join(folder, "clip.mp3")
        with storage_failures(f"writing {uri} to a local temporary file first"), open(spool, "wb") as out:
            size, digest = stream_hashed(checked, out.write)
        checked.finish()
        check_length(size, url=checked.origin, **lengths)
        step("streamed")
        kept = _kept_or_refused(target, size, digest, overwrite=overwrite)
        if kept is not None:
            return kept
        pending = PendingUpload(target)
        before_publish(pending, WrittenObject(target, size, digest, written=True))
        step("staged")
        with storage_failures(f"writing {uri}"):
            upload = DirectUpload(
                target,
                block_size=WRITE_BLOCK_SIZE,
                content_type=_MP3_TYPE,
                overwrite=overwrite,
                metadata=pending.metadata,
            )
        with _discarded_unless_committed(upload) as committed:
            with storage_failures(f"writing {uri}"), open(spool, "rb") as source:
                while block := source.read(WRITE_BLOCK_SIZE):
                    upload.write(block)
            return _commit(upload, committed, size, digest, overwrite=overwrite, checked_before=True)


@contextlib.contextmanager
def _discarded_unless_committed(upload: DirectUpload) -> Iterator[list[bool]]:
    """Abort ``upload`` on the way out (an error, a kill, an identical object kept) unless it was committed."""
    committed: list[bool] = []
    try:
        yield committed
    finally:
        if not committed:
            upload.discard()


def _commit(
    upload: DirectUpload,
    committed: list[bool],
    size: int,
    digest: str,
    *,
    overwrite: bool,
    checked_before: bool = False,
) -> WrittenObject:
    """Publish ``upload`` unless an object is in the way (see :func:`_kept_or_refused`); also when it came meanwhile."""
    target = upload.target
    if not checked_before:
        kept = _kept_or_refused(target, size, digest, overwrite=overwrite)
        if kept is not None:
            return kept
    try:
        with storage_failures(f"publishing {object_uri(target)}"):
            upload.commit()
    except PixVerseStorageError:
        kept = None if overwrite else _kept_or_refused(target, size, digest, overwrite=False)
        if kept is None:
            raise
        return kept  # another run published the same bytes first (If-None-Match: * refused ours)
    committed.append(True)
    step("published")
    return _landed(target, size, digest)


def _kept_or_refused(target: ObjectStoragePath, size: int, digest: str, *, overwrite: bool) -> WrittenObject | None:
    """The object at ``target`` when it holds these bytes and may not be replaced; refused when it holds others."""
    uri = object_uri(target)
    with storage_failures(f"publishing {uri}"):
        _forget(target)
        if overwrite or not target.exists():
            return None
        if _sha256_of(target) == digest:
            return WrittenObject(target, size, digest, written=False)
    raise DestinationExistsError(
        f"{uri} already exists with other content (the new clip has {size} bytes, SHA-256 {digest[:12]}...); "
        "pass overwrite=True to replace it"
    )


def _landed(target: ObjectStoragePath, size: int, digest: str) -> WrittenObject:
    """What was published at ``target``, once its length is checked."""
    uri = object_uri(target)
    with storage_failures(f"publishing {uri}"):
        _forget(target)
        landed = target.stat().st_size if target.is_file() else None
    if landed != size:
        raise PixVerseStorageError(f"{uri} does not hold the {size} bytes just written (found {landed})")
    return WrittenObject(target, size, digest, written=True)


def _forget(target: ObjectStoragePath) -> None:
    invalidate = getattr(target.fs, "invalidate_cache", None)
    if callable(invalidate):
        invalidate(target.path)


def _publish(
    temporary: ObjectStoragePath,
    target: ObjectStoragePath,
    size: int,
    digest: str,
    *,
    overwrite: bool,
    before_publish: BeforePublish | None,
) -> WrittenObject:
    kept = _kept_or_refused(target, size, digest, overwrite=overwrite)
    if kept is not None:
        return kept
    if before_publish is not None:
        before_publish(temporary, WrittenObject(target, size, digest, written=True))
        step("staged")
    with storage_failures(f"publishing {object_uri(target)}"):
        temporary.rename(target)
    step("published")
    return _landed(target, size, digest)


def _sha256_of(path: ObjectStoragePath) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as existing:
        while block := existing.read(_READ_BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()
