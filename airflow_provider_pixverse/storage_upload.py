"""Publishing once on S3: the bytes go to the destination key by a multipart upload, committed when checked.

An S3 multipart upload (CreateMultipartUpload, UploadPart..., CompleteMultipartUpload) shows
nothing until it is completed, and then the whole object at once: no temporary object is needed
for atomicity, and no copy. :class:`DirectUpload` makes those calls through the s3fs file
system's own client (``fs.call_s3``: its credentials, endpoint and retries). s3fs's ``S3File``
with ``autocommit=False`` could do the same (``commit()`` / ``discard()``, mode ``"xb"`` for the
condition) but sends one part at a time, which leaves the store idle between parts: here several
parts are on their way at once. Parts go up as the bytes come (a body that fits one part stays in
memory and goes as one PutObject at the commit); :meth:`DirectUpload.commit` completes the upload,
:meth:`DirectUpload.discard` aborts it (``AbortMultipartUpload``). Without ``overwrite`` the
completion (or the PutObject) carries ``If-None-Match: *``: an object that appeared meanwhile is
never replaced (S3 answers 412; moto 5.x does the same).

User metadata can only be given to CreateMultipartUpload (or PutObject), never to the completion:
it goes with :class:`DirectUpload`'s ``metadata``, when the upload is created.

A run killed mid-upload leaves an upload that shows no object but holds its parts:
:func:`abort_stale_uploads`, called after each success, aborts the target key's uploads that
have added no part for :data:`STALE_UPLOAD_SECONDS`. For uploads killed with no later success of
the same key, a bucket lifecycle rule (``AbortIncompleteMultipartUpload``, ``DaysAfterInitiation: 1``)
removes them.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

_S3_PROTOCOLS = ("s3", "s3a")
# A live upload adds a part at least every 8 MiB / 64 KiB/s (the slowest rate a download may
# keep, see _api.media.MIN_MEDIA_RATE) = 128 s; one with no new part for longer than this is dead.
STALE_UPLOAD_SECONDS = 300.0
# Each part carries its CRC32 (the SDKs' default checksum), and the upload is created for it: the
# store checks every part and the whole at the completion, which takes moto 0.5 s for 200 MB against 0.8 s without.
CHECKSUM_ALGORITHM = "CRC32"
_CHECKSUM_FIELD = f"Checksum{CHECKSUM_ALGORITHM}"
# Parts of one upload on their way at once (each holds its 8 MiB, and the client copies it once).
PARTS_IN_FLIGHT = 2


@dataclass
class PendingUpload:
    """An object about to be uploaded straight into its key: the user metadata put here is sent when it is created.

    What a write's ``before_publish`` gets on S3 in place of a temporary object (see
    :func:`airflow_provider_pixverse.storage.write_stream`).
    """

    path: ObjectStoragePath
    metadata: dict[str, str] = field(default_factory=dict)


def publishes_on_commit(target: ObjectStoragePath) -> bool:
    """Whether ``target``'s store publishes a multipart upload atomically at its commit (S3 through s3fs)."""
    protocol = target.protocol if isinstance(target.protocol, str) else target.protocol[0]
    return protocol in _S3_PROTOCOLS and callable(getattr(target.fs, "call_s3", None))


class DirectUpload:
    """One object written straight into its key, seen by no one until :meth:`commit` (see the module).

    Parts of ``block_size`` go up as the bytes come, at most :data:`PARTS_IN_FLIGHT` at once (a
    store answers a part faster when the next one is already on its way); a body smaller than one
    part waits in memory and goes as one PutObject at the commit.

    :param target: The object to write.
    :param block_size: The size of each part (at least 5 MiB).
    :param content_type: Its ``Content-Type``.
    :param overwrite: Whether the commit may replace an object (else ``If-None-Match: *``).
    :param metadata: Its user metadata (``x-amz-meta-*``), sent when the upload is created.
    """

    def __init__(
        self,
        target: ObjectStoragePath,
        *,
        block_size: int,
        content_type: str,
        overwrite: bool,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.fs = target.fs
        self.bucket, self.key = _bucket_and_key(target)
        self.block_size = block_size
        self.created: dict[str, Any] = {
            "ContentType": content_type,
            "ChecksumAlgorithm": CHECKSUM_ALGORITHM,
            **({"Metadata": metadata} if metadata else {}),
        }
        self.condition: dict[str, str] = {} if overwrite else {"IfNoneMatch": "*"}
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[Future[dict[str, Any]]] = []
        self._senders: ThreadPoolExecutor | None = None

    def write(self, chunk: bytes) -> None:
        """Add ``chunk``; each full part goes up now (this waits while :data:`PARTS_IN_FLIGHT` are on their way)."""
        self.buffer += chunk
        while len(self.buffer) >= self.block_size:
            with memoryview(self.buffer) as view:
                part = bytes(view[: self.block_size])
            del self.buffer[: self.block_size]
            self._send(part)

    def commit(self) -> None:
        """Send what is left and publish the object (complete the upload, or PutObject a body of one part)."""
        if self.upload_id is None:
            self._call("put_object", Body=bytes(self.buffer), **self.created, **self.condition)
        else:
            if self.buffer:
                self._send(bytes(self.buffer))
            parts = [part.result() for part in self.parts]
            self._call(
                "complete_multipart_upload",
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
                **self.condition,
            )
        self.buffer = bytearray()
        self._stop_senders()
        self.fs.invalidate_cache(self.target.path)

    def discard(self) -> None:
        """Abort: no object is published and the upload's parts are dropped (quietly, whatever failed)."""
        self.buffer = bytearray()
        for part in self.parts:
            part.cancel()
        self._stop_senders()
        if self.upload_id is not None:
            try:
                self._call("abort_multipart_upload", UploadId=self.upload_id)
            except Exception as error:  # the upload stays for abort_stale_uploads or the lifecycle rule
                log.warning("Could not abort the upload of %s: %s", self.target.path, error)

    def _send(self, part: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = str(self._call("create_multipart_upload", **self.created)["UploadId"])
            self._senders = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="pixverse-upload")
        if len(self.parts) >= PARTS_IN_FLIGHT:
            self.parts[-PARTS_IN_FLIGHT].result()  # the bound; a failed part is raised here
        assert self._senders is not None
        self.parts.append(self._senders.submit(self._upload_part, len(self.parts) + 1, part))

    def _upload_part(self, number: int, part: bytes) -> dict[str, Any]:
        answer = self._call(
            "upload_part",
            UploadId=self.upload_id,
            PartNumber=number,
            Body=part,
            ChecksumAlgorithm=CHECKSUM_ALGORITHM,
        )
        sent = {"PartNumber": number, "ETag": answer["ETag"]}
        if _CHECKSUM_FIELD in answer:
            sent[_CHECKSUM_FIELD] = answer[_CHECKSUM_FIELD]
        return sent

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self.fs.call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs)

    def _stop_senders(self) -> None:
        if self._senders is not None:
            self._senders.shutdown(wait=True, cancel_futures=True)
            self._senders = None


def open_uploads(target: ObjectStoragePath) -> list[dict[str, Any]]:
    """The multipart uploads open on ``target``'s key (``Key``, ``UploadId``, ``Initiated``)."""
    bucket, key = _bucket_and_key(target)
    answer = target.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)
    return [upload for upload in answer.get("Uploads", []) if upload.get("Key") == key]


def abort_stale_uploads(target: ObjectStoragePath) -> list[str]:
    """Abort the uploads of ``target``'s key with no part added for :data:`STALE_UPLOAD_SECONDS`.

    A younger one may be another run's, still on its way. Returns the upload ids aborted.
    """
    bucket, key = _bucket_and_key(target)
    now = datetime.now(UTC)
    aborted = []
    for upload in open_uploads(target):
        upload_id = upload["UploadId"]
        if not _idle(target, bucket, key, upload, now):
            continue
        with contextlib.suppress(FileNotFoundError):  # aborted by another run meanwhile
            target.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id)
        aborted.append(upload_id)
    return aborted


def _idle(target: ObjectStoragePath, bucket: str, key: str, upload: dict[str, Any], now: datetime) -> bool:
    """Whether the upload's last sign of life (its newest part, else its creation) is stale."""
    parts = target.fs.call_s3("list_parts", Bucket=bucket, Key=key, UploadId=upload["UploadId"]).get("Parts", [])
    moments = [part["LastModified"] for part in parts if isinstance(part.get("LastModified"), datetime)]
    initiated = upload.get("Initiated")
    if isinstance(initiated, datetime):
        moments.append(initiated)
    if not moments:
        return True
    latest = max(moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in moments)
    return bool((now - latest).total_seconds() >= STALE_UPLOAD_SECONDS)


def _bucket_and_key(target: ObjectStoragePath) -> tuple[str, str]:
    bucket, key, _version = target.fs.split_path(target.path)
    return str(bucket), str(key)
