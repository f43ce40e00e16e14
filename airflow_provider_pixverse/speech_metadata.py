"""The metadata stored with a spoken object, and what it takes to trust an object found at a destination.

Where it is kept:

- **S3** (``s3://``, through s3fs): as the object's user metadata, ``x-amz-meta-pixverse-speech``
  holding the metadata dict as JSON, when it fits in S3's 2 KB of user metadata;
- **elsewhere** (local files, GCS, Azure, ...), or when it does not fit: in a sidecar object
  ``<name>.json`` beside the object (the JSON dict).

The metadata is published with the object, never after it (see :func:`stage_metadata`): on S3 it
is sent with the upload that creates the object (the object is uploaded once its bytes are
checked and hashed, see :mod:`airflow_provider_pixverse.storage`); a sidecar is written before the
object is moved into place (or, on S3 when it does not fit, before the object is uploaded). A run
killed at any point leaves either no object, or an object with its metadata (a sidecar without
its object is ignored and replaced).

An object found at a destination is the speech a request asks for when its metadata carries the
request's content key, passes the checks of :mod:`airflow_provider_pixverse.speech_record`, and
its bytes are intact: same length and SHA-256 as the metadata records.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_pixverse.speech_record import RecordError, checked_record
from airflow_provider_pixverse.storage import object_uri, storage_failures
from airflow_provider_pixverse.storage_upload import PendingUpload

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

METADATA_FIELD = "pixverse-speech"
SIDECAR_SUFFIX = ".json"
# S3 allows 2 KB of user metadata per object, names and values together.
S3_METADATA_LIMIT = 2048
_OBJECT_METADATA_PROTOCOLS = ("s3", "s3a")
_READ_BLOCK = 1024 * 1024
_MAX_SIDECAR_BYTES = 256 * 1024


def forget_cached(path: ObjectStoragePath) -> ObjectStoragePath:
    """``path``, its file system told to forget what it cached about it (a listing, an ETag).

    File systems are cached per process: a process that runs many tasks (``dag.test()``, a long-lived
    worker) would otherwise see an object as it was when first listed, and fail to read a newer one.
    """
    invalidate = getattr(path.fs, "invalidate_cache", None)
    if callable(invalidate):
        invalidate(path.path)
        invalidate(path.parent.path)
    return path


def sidecar_of(target: ObjectStoragePath) -> ObjectStoragePath:
    """The sidecar object beside ``target``: ``<name>.json``."""
    return target.parent / f"{target.name}{SIDECAR_SUFFIX}"


def uses_object_metadata(target: ObjectStoragePath) -> bool:
    """Whether the store of ``target`` keeps user metadata on objects (S3 through s3fs)."""
    protocol = target.protocol if isinstance(target.protocol, str) else target.protocol[0]
    fs = target.fs
    return protocol in _OBJECT_METADATA_PROTOCOLS and callable(getattr(fs, "setxattr", None))


def write_metadata(target: ObjectStoragePath, metadata: dict[str, Any]) -> str:
    """Store ``metadata`` with ``target`` (see the module); returns where: ``object metadata`` or the sidecar's URI.

    For an object already in place (the same bytes published earlier); a new object gets its
    metadata before it is published, through :func:`stage_metadata`.
    """
    where = stage_metadata(target, target, metadata)
    if where == "object metadata":
        _remove_sidecar(target)
    return where


def stage_metadata(
    source: ObjectStoragePath | PendingUpload, target: ObjectStoragePath, metadata: dict[str, Any]
) -> str:
    """Store ``metadata`` for ``target`` with ``source``: the upload about to create ``target``, or ``target``.

    On S3 (when it fits) the metadata goes on the upload that creates the object, or is set on
    an object already in place; elsewhere the sidecar of ``target`` is written now, before the
    object is moved into place. Returns where: ``object metadata`` or the sidecar's URI.
    """
    document = json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    if uses_object_metadata(target) and len(METADATA_FIELD) + len(document) <= S3_METADATA_LIMIT:
        if isinstance(source, PendingUpload):
            source.metadata[METADATA_FIELD] = document
            return "object metadata"
        with storage_failures(f"setting the metadata of {object_uri(source)}"):
            source.fs.setxattr(source.path, copy_kwargs={"ContentType": "audio/mpeg"}, **{METADATA_FIELD: document})
        return "object metadata"
    sidecar = sidecar_of(target)
    text = json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False)
    with storage_failures(f"writing {object_uri(sidecar)}"):
        if _is_local(target):
            # Written under another name and moved into place: never a half-written sidecar.
            temporary = sidecar.parent / f".{sidecar.name}.{uuid.uuid4().hex}.part"
            temporary.write_text(text)
            temporary.rename(sidecar)
        else:
            sidecar.write_text(text)  # one PUT: an object store shows all of it or none
    return object_uri(sidecar)


def finish_staged(target: ObjectStoragePath, where: str) -> None:
    """After the object staged with :func:`stage_metadata` is in place: drop a sidecar its object metadata replaced."""
    if where == "object metadata":
        _remove_sidecar(target)


def read_metadata(target: ObjectStoragePath) -> dict[str, Any] | None:
    """The metadata stored with ``target``, or ``None`` when there is none (or it is not a JSON object)."""
    uri = object_uri(target)
    with storage_failures(f"reading the metadata of {uri}"):
        if uses_object_metadata(target):
            fields = target.fs.metadata(target.path)
            document = fields.get(METADATA_FIELD)
            if isinstance(document, str):
                return _json_object(document)
        sidecar = sidecar_of(target)
        if not sidecar.is_file() or sidecar.stat().st_size > _MAX_SIDECAR_BYTES:
            return None
        return _json_object(sidecar.read_text())


def stored_speech(
    target: ObjectStoragePath, content_key: str, *, max_parts: int, part: int | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The checked metadata of ``target`` when it holds the speech of ``content_key``, intact; and why, in words.

    Returns ``(metadata, reason)``: ``metadata`` is ``None`` unless the object is there, its
    metadata carries ``content_key`` and passes :func:`~airflow_provider_pixverse.speech_record.checked_record`
    (``max_parts``, ``part``), and its length and SHA-256 are those the metadata records. The
    metadata returned names where the object is (its ``destination``), whatever the record says.
    """
    uri = object_uri(target)
    forget_cached(target)
    with storage_failures(f"checking {uri}"):
        if not target.is_file():
            return None, f"{uri} does not exist"
        size = target.stat().st_size
    found = read_metadata(target)
    if found is None:
        return None, f"{uri} exists with no speech metadata"
    try:
        metadata = checked_record(found, content_key=content_key, uri=uri, max_parts=max_parts, part=part)
    except RecordError as error:
        return None, f"{uri} {error}"
    if size != metadata["bytes"]:
        return None, f"{uri} has this content key but not the {metadata['bytes']} bytes recorded ({size} bytes)"
    size, digest = object_digest(target)
    if size != metadata["bytes"] or digest != metadata["sha256"]:
        return None, f"{uri} has this content key but its bytes are not those recorded ({size} bytes)"
    return metadata, f"{uri} holds this speech ({size} bytes, SHA-256 {digest[:12]}...)"


def same_key_as(target: ObjectStoragePath, content_key: str, *, max_parts: int, part: int | None = None) -> bool:
    """Whether the metadata stored with ``target`` is a valid record of ``content_key`` (whatever its bytes)."""
    metadata = read_metadata(target)
    if metadata is None:
        return False
    try:
        checked_record(metadata, content_key=content_key, uri=object_uri(target), max_parts=max_parts, part=part)
    except RecordError:
        return False
    return True


def object_digest(target: ObjectStoragePath) -> tuple[int, str]:
    """The length and SHA-256 of the object's bytes, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with storage_failures(f"reading {object_uri(target)}"), target.open("rb") as stored:
        while block := stored.read(_READ_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _remove_sidecar(target: ObjectStoragePath) -> None:
    sidecar = sidecar_of(target)
    with storage_failures(f"removing {object_uri(sidecar)}"):
        if sidecar.exists():
            sidecar.unlink()


def _json_object(document: str) -> dict[str, Any] | None:
    try:
        value = json.loads(document)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_local(target: ObjectStoragePath) -> bool:
    protocol = target.protocol if isinstance(target.protocol, str) else target.protocol[0]
    return protocol in ("", "file", "local")
