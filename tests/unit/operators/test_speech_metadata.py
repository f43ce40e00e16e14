"""Where the metadata of spoken objects is kept, and when an object found at a destination is trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse.speech_metadata import (
    read_metadata,
    sidecar_of,
    stored_speech,
    uses_object_metadata,
    write_metadata,
)

S3_CONN_ID = "aws_pixverse_test"


KEY = "a" * 64


def speech(path: ObjectStoragePath, data: bytes = b"ID3 speech") -> dict[str, Any]:
    """Write ``data`` at ``path``; the record a run would store with it."""
    import hashlib

    path.write_bytes(data)
    return {
        "content_key": KEY,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "parts": 1,
        "audio_ids": ["user:1-pixverse:a@b.c-speech:1"],
        "text_sha256": "b" * 64,
        "text_length": 5,
        "voice_id": "v",
        "model": "speech-2.8-hd",
        "settings": {},
        "credits_estimated": 0.5,
        "credits_charged": 0.5,
        "duration": 1.0,
        "created_at": "2026-01-01T00:00:00+00:00",
        "destination": f"{path}",
        "reused": False,
    }


def found(path: ObjectStoragePath, key: str = KEY) -> Any:
    return stored_speech(path, key, max_parts=10)


def test_a_local_file_gets_a_sidecar(tmp_path: Path) -> None:
    target = ObjectStoragePath(f"file://{tmp_path}/a.mp3")
    metadata = speech(target)
    assert not uses_object_metadata(target)
    assert write_metadata(target, metadata) == f"file://{tmp_path}/a.mp3.json"
    assert json.loads((tmp_path / "a.mp3.json").read_text()) == metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp3", "a.mp3.json"]  # no temporary left
    assert found(target)[0] == {**metadata, "destination": f"file://{tmp_path}/a.mp3"}
    assert found(target, "c" * 64)[0] is None


def test_bytes_that_differ_from_the_record_are_not_trusted(tmp_path: Path) -> None:
    target = ObjectStoragePath(f"file://{tmp_path}/a.mp3")
    write_metadata(target, speech(target))
    target.write_bytes(b"ID3 speecH")  # same length, other bytes
    record, why = found(target)
    assert record is None and "not those recorded" in why


def test_a_broken_sidecar_is_no_metadata(tmp_path: Path) -> None:
    target = ObjectStoragePath(f"file://{tmp_path}/a.mp3")
    speech(target)
    sidecar_of(target).write_text("{not json")
    assert read_metadata(target) is None
    assert found(target) == (None, f"file://{tmp_path}/a.mp3 exists with no speech metadata")


def test_s3_keeps_it_on_the_object_unless_it_is_too_large(s3_bucket: Any) -> None:
    small = ObjectStoragePath(f"s3://{s3_bucket.name}/small.mp3", conn_id=S3_CONN_ID)
    metadata = speech(small)
    assert uses_object_metadata(small)
    assert write_metadata(small, metadata) == "object metadata"
    assert json.loads(s3_bucket.Object("small.mp3").metadata["pixverse-speech"]) == metadata
    assert found(small)[0] == {**metadata, "destination": f"s3://{s3_bucket.name}/small.mp3"}

    large = ObjectStoragePath(f"s3://{s3_bucket.name}/large.mp3", conn_id=S3_CONN_ID)
    big = {**speech(large), "audio_ids": [f"user:1234-pixverse:a@b.c-speech:{n}" for n in range(100)]}
    assert write_metadata(large, big) == f"s3://{s3_bucket.name}/large.mp3.json"  # over S3's 2 KB
    assert read_metadata(large) == big
    assert sorted(o.key for o in s3_bucket.objects.all()) == ["large.mp3", "large.mp3.json", "small.mp3"]
