"""S3 written once: straight into the key by a multipart upload, completed only when the bytes are checked.

What the store is asked to write is counted as the S3 client sends it (botocore's parameter events
on the file system's own client): the bodies of PutObject and UploadPart, and the bytes a
CopyObject or UploadPartCopy makes the store copy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
import zlib
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from pixverse_testing import MemoryStateStore, RecordingTaskInstance

from airflow_provider_pixverse import storage_upload
from airflow_provider_pixverse.exceptions import DestinationExistsError, PixVerseResponseError
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator
from airflow_provider_pixverse.storage import write_stream

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_provider_pixverse.sandbox import PixVerseSandbox

S3_CONN_ID = "aws_pixverse_test"
MIB = 1024 * 1024
BIG = b"ID3" + os.urandom(9 * MIB)  # more than one 8 MiB part: a multipart upload
SMALL = b"ID3" + bytes(5000)  # one part: one PutObject at the commit
_COPIES = ("CopyObject", "UploadPartCopy")


class StoreWrites:
    """The S3 calls of one file system's client, and the bytes they asked the store to write."""

    def __init__(self, fs: Any, client: Any) -> None:
        self.fs, self.client = fs, client
        self.calls: list[tuple[str, str | None, int]] = []
        fs.s3.meta.events.register("before-parameter-build.s3", self.seen)

    def seen(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        body = params.get("Body")
        size = len(body.getbuffer()) if hasattr(body, "getbuffer") else len(body) if body else 0
        if model.name in _COPIES:
            source = params["CopySource"]
            bucket, _, key = (source if isinstance(source, str) else f"{source['Bucket']}/{source['Key']}").partition(
                "/"
            )
            size = self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        self.calls.append((model.name, params.get("Key"), size))

    def written(self) -> int:
        return sum(size for name, _, size in self.calls if name in ("PutObject", "UploadPart", *_COPIES))

    def named(self, *names: str) -> list[tuple[str, str | None, int]]:
        return [call for call in self.calls if call[0] in names]

    def close(self) -> None:
        self.fs.s3.meta.events.unregister("before-parameter-build.s3", self.seen)


@pytest.fixture
def client(moto_endpoint: str, s3_bucket: Any) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def writes(s3_bucket: Any, client: Any) -> Iterator[StoreWrites]:
    counter = StoreWrites(ObjectStoragePath(f"s3://{s3_bucket.name}/", conn_id=S3_CONN_ID).fs, client)
    yield counter
    counter.close()


def target_in(bucket: Any, key: str = "speech/talk.mp3") -> ObjectStoragePath:
    return ObjectStoragePath(f"s3://{bucket.name}/{key}", conn_id=S3_CONN_ID)


def write(target: ObjectStoragePath, chunks: Iterable[bytes], **kwargs: Any) -> Any:
    return write_stream(iter(chunks), target, origin="https://media.example/a.mp3", **{"overwrite": False, **kwargs})


def in_chunks(body: bytes, size: int = MIB) -> list[bytes]:
    return [body[start : start + size] for start in range(0, len(body), size)]


def open_uploads(client: Any, bucket: Any) -> list[dict[str, Any]]:
    return list(client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []))


@pytest.mark.parametrize("body", [BIG, SMALL], ids=["multipart", "one-put"])
def test_s3_is_written_once_straight_into_the_key(s3_bucket: Any, writes: StoreWrites, body: bytes) -> None:
    target = target_in(s3_bucket)
    written = write(target, in_chunks(body), file_size=len(body))
    assert written.written and written.sha256 == hashlib.sha256(body).hexdigest()
    assert writes.written() == len(body)  # bytes written to the store per byte of MP3: 1.0
    assert not writes.named(*_COPIES, "DeleteObject")
    assert {key for _, key, size in writes.calls if size} == {"speech/talk.mp3"}  # no temporary object
    stored = s3_bucket.Object("speech/talk.mp3")
    assert stored.get()["Body"].read() == body and stored.content_type == "audio/mpeg"


@pytest.mark.parametrize("body", [BIG, SMALL], ids=["multipart", "one-put"])
def test_the_store_checks_each_part_and_keeps_the_objects_crc32(s3_bucket: Any, client: Any, body: bytes) -> None:
    write(target_in(s3_bucket), in_chunks(body), file_size=len(body))
    head = client.head_object(Bucket=s3_bucket.name, Key="speech/talk.mp3", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32"), head  # the upload was made for CRC32, and every part carried one
    if body is SMALL:
        assert base64.b64decode(head["ChecksumCRC32"]) == zlib.crc32(body).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("chunks", "options", "error"),
    [
        (in_chunks(BIG), {"file_size": len(BIG) + 1}, "bytes"),  # the length checked at the end: parts sent
        (in_chunks(BIG), {"max_bytes": 9 * MIB}, "passed max_bytes"),  # refused mid-stream, after one part
        ([b"<html>" + bytes(9 * MIB)], {}, "no MP3"),  # refused at its first bytes
    ],
    ids=["wrong-length", "over-max-bytes", "not-mp3"],
)
def test_a_bad_body_is_aborted_leaving_no_object_and_no_open_upload(
    s3_bucket: Any, client: Any, writes: StoreWrites, chunks: list[bytes], options: dict[str, Any], error: str
) -> None:
    with pytest.raises(PixVerseResponseError, match=error):
        write(target_in(s3_bucket), chunks, **options)
    assert list(s3_bucket.objects.all()) == []
    assert open_uploads(client, s3_bucket) == []
    assert not writes.named("CompleteMultipartUpload", "PutObject", *_COPIES)  # nothing ever published


def test_an_object_that_appears_just_before_the_commit_is_not_replaced(
    s3_bucket: Any, client: Any, writes: StoreWrites
) -> None:
    """Without overwrite the completion carries If-None-Match: *: another run's object, put meanwhile, stays."""
    target = target_in(s3_bucket)
    other = b"ID3 another run's speech"

    def put_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == "speech/talk.mp3":
            client.put_object(Bucket=s3_bucket.name, Key="speech/talk.mp3", Body=other)

    writes.fs.s3.meta.events.register("before-parameter-build.s3.CompleteMultipartUpload", put_first)
    try:
        with pytest.raises(DestinationExistsError, match="already exists with other content"):
            write(target, in_chunks(BIG))
    finally:
        writes.fs.s3.meta.events.unregister("before-parameter-build.s3.CompleteMultipartUpload", put_first)
    assert s3_bucket.Object("speech/talk.mp3").get()["Body"].read() == other
    assert open_uploads(client, s3_bucket) == []


def test_overwrite_replaces_the_object_in_one_upload(s3_bucket: Any, writes: StoreWrites) -> None:
    s3_bucket.put_object(Key="speech/talk.mp3", Body=b"ID3 older")
    written = write(target_in(s3_bucket), in_chunks(BIG), overwrite=True)
    assert written.written and s3_bucket.Object("speech/talk.mp3").get()["Body"].read() == BIG
    assert writes.written() == len(BIG)


def test_an_identical_object_is_kept_and_nothing_is_published(s3_bucket: Any, client: Any, writes: StoreWrites) -> None:
    s3_bucket.put_object(Key="speech/talk.mp3", Body=BIG)
    written = write(target_in(s3_bucket), in_chunks(BIG))
    assert not written.written
    assert not writes.named("CompleteMultipartUpload", "PutObject") and open_uploads(client, s3_bucket) == []


_KILLED_CHILD = r"""
import sys, time
from airflow.providers.common.compat.sdk import ObjectStoragePath
from airflow_provider_pixverse.storage import write_stream

def chunks():
    yield b"ID3" + bytes(1024 * 1024 - 3)
    for _ in range(9):
        yield bytes(1024 * 1024)
    print("sent", flush=True)
    time.sleep(600)  # the process is killed here, one part sent

write_stream(chunks(), ObjectStoragePath(sys.argv[1], conn_id=sys.argv[2]), origin="child", overwrite=False)
"""


def wait_for_a_part(client: Any, bucket: Any, child: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        for upload in open_uploads(client, bucket):
            if client.list_parts(Bucket=bucket.name, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts"):
                return
        time.sleep(0.2)
    raise AssertionError(f"the child sent no part (exit code {child.poll()})")


def test_a_killed_upload_is_aborted_by_the_next_success(
    s3_bucket: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"s3://{s3_bucket.name}/speech/talk.mp3"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CHILD, uri, S3_CONN_ID], stdout=subprocess.PIPE, text=True)
    try:
        wait_for_a_part(client, s3_bucket, child)
    finally:
        child.send_signal(signal.SIGKILL)  # no handler runs: the upload stays open
        child.wait(timeout=30)
    assert len(open_uploads(client, s3_bucket)) == 1 and list(s3_bucket.objects.all()) == []
    monkeypatch.setattr(storage_upload, "STALE_UPLOAD_SECONDS", 0.0)  # moto cannot date an upload back
    assert write(target_in(s3_bucket), [SMALL]).written
    assert open_uploads(client, s3_bucket) == []
    assert [o.key for o in s3_bucket.objects.all()] == ["speech/talk.mp3"]


def test_an_upload_still_on_its_way_is_left_alone(s3_bucket: Any, client: Any) -> None:
    running = client.create_multipart_upload(Bucket=s3_bucket.name, Key="speech/talk.mp3")["UploadId"]
    client.upload_part(Bucket=s3_bucket.name, Key="speech/talk.mp3", UploadId=running, PartNumber=1, Body=b"x")
    assert write(target_in(s3_bucket), [SMALL], overwrite=True).written
    assert [upload["UploadId"] for upload in open_uploads(client, s3_bucket)] == [running]


def test_text_to_speech_into_s3_writes_the_mp3_once_with_its_metadata(
    pixverse_sandbox: PixVerseSandbox, s3_bucket: Any, writes: StoreWrites
) -> None:
    forget_model_lists()
    operator = PixVerseTextToSpeechOperator(
        task_id="speak",
        text="Written once.",
        voice_id="minimax_english_radiant_girl",
        destination=f"s3://{s3_bucket.name}/speech/talk.mp3",
        storage_conn_id=S3_CONN_ID,
        deferrable=False,
        poll_interval=0.05,
    )
    ti = RecordingTaskInstance()
    operator.execute({"ti": ti, "task_state_store": MemoryStateStore()})
    stored = s3_bucket.Object("speech/talk.mp3")
    mp3 = stored.get()["Body"].read()
    assert (
        "pixverse-speech" in stored.metadata
        and ti.xcoms["pixverse_speech"]["sha256"] == hashlib.sha256(mp3).hexdigest()
    )
    mp3_writes = [call for call in writes.calls if call[1] == "speech/talk.mp3" or call[0] in _COPIES]
    assert sum(size for _, _, size in mp3_writes) == len(mp3)  # no copy to set the metadata, none to rename


def test_a_store_that_refuses_to_list_uploads_still_publishes(
    s3_bucket: Any, writes: StoreWrites, caplog: pytest.LogCaptureFixture
) -> None:
    """Without s3:ListBucketMultipartUploads the clean-up after a success is skipped with a warning."""
    from botocore.exceptions import ClientError

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "ListMultipartUploads")

    event = "before-parameter-build.s3.ListMultipartUploads"
    writes.fs.s3.meta.events.register(event, refuse)
    try:
        assert write(target_in(s3_bucket), [SMALL]).written
    finally:
        writes.fs.s3.meta.events.unregister(event, refuse)
    assert s3_bucket.Object("speech/talk.mp3").get()["Body"].read() == SMALL
    assert "AbortIncompleteMultipartUpload" in caplog.text
