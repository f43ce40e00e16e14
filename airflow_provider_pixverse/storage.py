"""Writing a download into object storage: a hidden temporary object first, published when whole."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse._api.errors import PixVerseError, PixVerseResponseError
from airflow_provider_pixverse._api.media import check_length, check_mp3_start, safe_file_name

if TYPE_CHECKING:
    from airflow_provider_pixverse._api.clip import SpeechClip
    from airflow_provider_pixverse.hooks.pixverse import MediaStream

_SIGNATURE_BYTES = 4
# Buffered per object while writing (an S3 multipart part, a GCS chunk): bounds memory.
WRITE_BLOCK_SIZE = 8 * 1024 * 1024


class DestinationExistsError(PixVerseError):
    """The destination holds a different object and ``overwrite`` is off."""


@dataclass(frozen=True)
class WrittenObject:
    """What a download left in storage."""

    path: ObjectStoragePath
    size: int
    written: bool  # False when an identical object was already there


def resolve_destination(
    destination: str | ObjectStoragePath, clip: SpeechClip, *, conn_id: str | None = None
) -> ObjectStoragePath:
    """The object to write: ``destination`` itself, or a file named after the clip inside it.

    It names a folder when the string ends with ``/`` (``ObjectStoragePath`` drops that), when it
    exists as a folder, or when it has no file suffix.
    """
    given = str(destination)
    path = destination if isinstance(destination, ObjectStoragePath) else ObjectStoragePath(given, conn_id=conn_id)
    is_folder = given.endswith("/") or not path.suffix or path.is_dir()
    if not is_folder:
        return path
    return path / safe_file_name(clip.name, clip.audio_id or "speech")


def object_uri(path: ObjectStoragePath) -> str:
    """The plain URI of ``path`` (``s3://bucket/key``), without the connection id it carries."""
    protocol = path.protocol if isinstance(path.protocol, str) else path.protocol[0]
    return f"{protocol}://{path.path}" if protocol else str(path)


def existing_size(path: ObjectStoragePath) -> int | None:
    """The size of the object at ``path``, or ``None`` when there is none."""
    return path.stat().st_size if path.exists() else None


def write_download(
    media: MediaStream,
    target: ObjectStoragePath,
    *,
    file_size: int | None,
    max_bytes: int | None,
    overwrite: bool,
) -> WrittenObject:
    """Stream ``media`` into a temporary object beside ``target``, check it, then move it into place.

    On any failure the temporary object is removed and ``target`` is left as it was.
    """
    if max_bytes is not None:
        for announced in (media.content_length, file_size):
            if announced is not None and announced > max_bytes:
                raise PixVerseResponseError(f"the clip at {media.url} is {announced} bytes; max_bytes is {max_bytes}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
    try:
        size = _stream_to(temporary, media, max_bytes)
        check_length(size, url=media.url, content_length=media.content_length, file_size=file_size)
        return _publish(temporary, target, size, overwrite=overwrite)
    finally:
        if temporary.exists():
            temporary.unlink()


def _stream_to(temporary: ObjectStoragePath, media: MediaStream, max_bytes: int | None) -> int:
    size = 0
    head = b""
    with temporary.open("wb", block_size=WRITE_BLOCK_SIZE) as out:
        for chunk in media.chunks:
            if len(head) < _SIGNATURE_BYTES:
                head += chunk[: _SIGNATURE_BYTES - len(head)]
                if len(head) >= _SIGNATURE_BYTES:
                    check_mp3_start(head, url=media.url, content_type=media.content_type)
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise PixVerseResponseError(f"the download from {media.url} passed max_bytes ({max_bytes})")
            out.write(chunk)
    if len(head) < _SIGNATURE_BYTES:
        check_mp3_start(head, url=media.url, content_type=media.content_type)
    return size


def _publish(temporary: ObjectStoragePath, target: ObjectStoragePath, size: int, *, overwrite: bool) -> WrittenObject:
    current = existing_size(target)
    if current is not None and not overwrite:
        if current == size:
            return WrittenObject(target, size, written=False)
        raise DestinationExistsError(
            f"{target} already exists with {current} bytes (the new clip has {size}); pass overwrite=True to replace it"
        )
    temporary.rename(target)
    return WrittenObject(target, size, written=True)
