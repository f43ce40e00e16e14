"""Writing downloads into object storage: the rules on destinations, names, identity and leftovers."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError, PixVerseResponseError
from airflow_provider_pixverse.hooks.pixverse import MediaStream
from airflow_provider_pixverse.models import SpeechClip
from airflow_provider_pixverse.storage import (
    PixVerseStorageError,
    object_uri,
    remove_leftovers,
    resolve_destination,
    temporary_name,
    write_download,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

MP3 = b"ID3" + bytes(5000)
CLIP = SpeechClip(audio_id="user:1-pixverse:a@b.c-speech:7", name="PixVerse_Speech_7.mp3")
S3_CONN_ID = "aws_pixverse_test"


def media(chunks: Iterable[bytes], *, content_length: int | None = None) -> MediaStream:
    return MediaStream(
        url="https://media.example/a.mp3",
        status_code=200,
        content_type="audio/mpeg",
        content_length=content_length,
        chunks=iter(list(chunks)),
    )


def write(target: ObjectStoragePath, chunks: Iterable[bytes] = (MP3,), **kwargs: Any) -> Any:
    options = {"file_size": None, "max_bytes": None, "overwrite": False, **kwargs}
    return write_download(media(chunks), target, **options)


def test_max_bytes_holds_while_streaming_when_nothing_announced_the_size(tmp_path: Path) -> None:
    target = ObjectStoragePath(f"file://{tmp_path}/a.mp3")
    with pytest.raises(PixVerseResponseError, match="passed max_bytes"):
        write(target, [MP3[:3000], MP3[3000:]], max_bytes=4000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("body", [b"", b"ab", b"<h"])
def test_a_body_too_short_to_be_mp3_is_refused(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(PixVerseResponseError, match="no MP3"):
        write(ObjectStoragePath(f"file://{tmp_path}/a.mp3"), [body])
    assert list(tmp_path.iterdir()) == []


def test_a_file_uri_with_a_host_part_is_refused() -> None:
    with pytest.raises(PixVerseInvalidInputError, match="three slashes") as info:
        resolve_destination("file://tmp/speech/", CLIP)
    assert "file:///tmp/speech/" in str(info.value)


def test_a_missing_bucket_is_not_created(s3_bucket: Any, moto_endpoint: str) -> None:
    import boto3

    missing = f"missing-{uuid.uuid4().hex[:10]}"
    target = resolve_destination(f"s3://{missing}/speech/", CLIP, conn_id=S3_CONN_ID)
    with pytest.raises(PixVerseStorageError, match=missing):
        write(target)
    buckets = [b["Name"] for b in boto3.client("s3", endpoint_url=moto_endpoint).list_buckets()["Buckets"]]
    assert missing not in buckets


def test_into_s3_creates_no_folder_marker(s3_bucket: Any) -> None:
    target = resolve_destination(f"s3://{s3_bucket.name}/deep/er/", CLIP, conn_id=S3_CONN_ID)
    assert write(target).written
    assert [o.key for o in s3_bucket.objects.all()] == ["deep/er/PixVerse_Speech_7.mp3"]


def test_long_unicode_names_fit_the_file_system_with_the_temporary_name(tmp_path: Path) -> None:
    clip = SpeechClip(audio_id=CLIP.audio_id, name="语" * 72 + ".mp3")  # 220 bytes of UTF-8
    target = resolve_destination(f"file://{tmp_path}/", clip)
    assert len(target.name.encode()) + 39 <= 255
    assert target.name.endswith(".mp3")
    assert len(temporary_name(target.name).encode()) <= 255
    assert write(target).written and target.read_bytes() == MP3


@pytest.mark.parametrize("name", ["a#b.mp3", "a?b.mp3", "a%23b.mp3"])
def test_a_name_cannot_cut_the_uri_short(tmp_path: Path, name: str) -> None:
    target = resolve_destination(f"file://{tmp_path}/", SpeechClip(audio_id=CLIP.audio_id, name=name))
    assert not {"#", "?", "%"} & set(target.name)
    write(target)
    assert Path(ObjectStoragePath(object_uri(target)).path).read_bytes() == MP3


def test_leftovers_of_a_killed_download_are_removed_by_the_next_success(tmp_path: Path) -> None:
    target = resolve_destination(f"file://{tmp_path}/", CLIP)
    stale = tmp_path / temporary_name(target.name)
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))  # killed an hour ago
    running = tmp_path / temporary_name(target.name)
    running.write_bytes(b"another run's, still on its way")
    someone_else = tmp_path / temporary_name("other.mp3")
    someone_else.write_bytes(b"not ours")
    unrelated = tmp_path / f".{target.name}.notes.part"
    unrelated.write_bytes(b"keep")
    write(target)
    assert not stale.exists()
    assert someone_else.exists() and unrelated.exists() and running.exists()
    assert remove_leftovers(target) == []


def test_the_leftovers_search_in_a_local_folder_lists_no_other_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsspec's local glob stats every object of the folder: at 2,000 objects a corpus paid 23 ms a write for it."""
    from fsspec.implementations.local import LocalFileSystem

    folder = tmp_path / "a [corpus]"  # glob's own characters in the folder's name are taken as they are
    folder.mkdir()
    target = resolve_destination(f"file://{folder}/", CLIP)
    stale = folder / temporary_name(target.name)
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    for index in range(50):
        (folder / f"item-{index}.mp3").write_bytes(b"ID3")

    def listing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the whole folder was listed")

    monkeypatch.setattr(LocalFileSystem, "ls", listing)
    assert remove_leftovers(target) == [str(stale)] and not stale.exists()


def test_leftovers_in_s3_are_removed_too(s3_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_pixverse import storage

    monkeypatch.setattr(storage, "LEFTOVER_MIN_AGE_SECONDS", 0.0)  # moto cannot date an object back
    target = resolve_destination(f"s3://{s3_bucket.name}/speech/", CLIP, conn_id=S3_CONN_ID)
    s3_bucket.put_object(Key=f"speech/{temporary_name(target.name)}", Body=b"half")
    write(target)
    assert [o.key for o in s3_bucket.objects.all()] == ["speech/PixVerse_Speech_7.mp3"]


def test_a_file_target_that_is_a_symlink_or_a_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "real"
    folder.mkdir()
    (tmp_path / "link.mp3").symlink_to(folder)
    with pytest.raises(PixVerseInvalidInputError, match="symbolic link"):
        resolve_destination(f"file://{tmp_path}/link.mp3", CLIP)
    (tmp_path / "dir.mp3").mkdir()
    with pytest.raises(PixVerseInvalidInputError, match="is a folder"):
        resolve_destination(f"file://{tmp_path}/dir.mp3", CLIP)
    assert list(folder.iterdir()) == []


def test_a_folder_given_through_a_symlink_gets_the_file_where_the_uri_says(tmp_path: Path) -> None:
    folder = tmp_path / "real"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    target = resolve_destination(f"file://{tmp_path}/link/", CLIP)
    write(target, overwrite=True)
    assert Path(target.path).read_bytes() == MP3 and (folder / CLIP.name).is_file()  # type: ignore[operator]
    assert sorted(os.listdir(folder)) == [CLIP.name]


def test_a_store_failure_is_a_storage_error_naming_the_object(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    target = resolve_destination(f"file://{tmp_path}/blocker/sub/", CLIP)
    with pytest.raises(PixVerseStorageError, match="blocker/sub"):
        write(target)
