"""Stored metadata is input: a reused object is named where it is, and a record that does not pass its checks is
not this speech (and then the no-overwrite rule holds)."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, api_requests

from airflow_provider_pixverse.exceptions import DestinationExistsError
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
TEXT = "Stored metadata is input."
S3_CONN_ID = "aws_pixverse_test"


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def run(destination: str, **kwargs: Any) -> tuple[Any, RecordingTaskInstance]:
    operator = PixVerseTextToSpeechOperator(
        task_id="speak",
        text=TEXT,
        voice_id=VOICE,
        destination=destination,
        deferrable=False,
        poll_interval=0.05,
        **kwargs,
    )
    ti = RecordingTaskInstance()
    return operator.execute({"ti": ti, "task_state_store": MemoryStateStore()}), ti


def creates(sandbox: PixVerseSandbox) -> int:
    return sum(r.method == "POST" for r in api_requests(sandbox))


def test_a_moved_folder_is_reused_under_its_new_name(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    run(f"file://{tmp_path}/a/talk.mp3")
    shutil.move(tmp_path / "a", tmp_path / "b")
    uri, ti = run(f"file://{tmp_path}/b/talk.mp3")
    assert uri == f"file://{tmp_path}/b/talk.mp3"
    assert ti.xcoms["pixverse_speech"]["destination"] == uri and ti.xcoms["pixverse_speech"]["reused"] is True
    assert creates(pixverse_sandbox) == 1


def test_an_object_copied_to_another_bucket_is_reused_under_its_new_uri(
    pixverse_sandbox: PixVerseSandbox, s3_bucket: Any, moto_endpoint: str
) -> None:
    run(f"s3://{s3_bucket.name}/a/talk.mp3", storage_conn_id=S3_CONN_ID)
    other = boto3.resource("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=f"copied-{uuid.uuid4().hex[:12]}"
    )
    other.copy({"Bucket": s3_bucket.name, "Key": "a/talk.mp3"}, "b/talk.mp3")  # keeps the user metadata
    assert "pixverse-speech" in other.Object("b/talk.mp3").metadata
    uri, ti = run(f"s3://{other.name}/b/talk.mp3", storage_conn_id=S3_CONN_ID)
    assert uri == f"s3://{other.name}/b/talk.mp3" == ti.xcoms["pixverse_speech"]["destination"]
    assert creates(pixverse_sandbox) == 1


def edit_sidecar(mp3: Path, **changes: Any) -> None:
    sidecar = mp3.with_name(mp3.name + ".json")
    record = json.loads(sidecar.read_text())
    for name, value in changes.items():
        if value is ...:
            record.pop(name)
        else:
            record[name] = value
    sidecar.write_text(json.dumps(record))


def test_a_record_without_its_destination_is_still_this_speech(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    run(f"file://{tmp_path}/talk.mp3")
    edit_sidecar(tmp_path / "talk.mp3", destination=...)
    uri, ti = run(f"file://{tmp_path}/talk.mp3")
    assert uri == f"file://{tmp_path}/talk.mp3" and ti.xcoms["pixverse_speech"]["reused"] is True
    assert creates(pixverse_sandbox) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"parts": 0},
        {"parts": 200_000},
        {"parts": "1"},
        {"bytes": "12345"},
        {"sha256": "not hex"},
        {"audio_ids": "user:1-pixverse:a@b.c-speech:1"},
        {"audio_ids": []},
        {"credits_charged": -1},
        {"settings": {"speed": {"nested": True}}},
        {"content_key": ...},
    ],
    ids=repr,
)
def test_a_record_that_does_not_pass_its_checks_is_other_content(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, changes: dict[str, Any]
) -> None:
    run(f"file://{tmp_path}/talk.mp3")
    mp3 = tmp_path / "talk.mp3"
    before = mp3.read_bytes()
    edit_sidecar(mp3, **changes)
    started = time.monotonic()
    with pytest.raises(DestinationExistsError, match="other content"):
        run(f"file://{tmp_path}/talk.mp3")
    assert time.monotonic() - started < 5  # refused from the record, not after walking 200,000 objects
    assert creates(pixverse_sandbox) == 1 and mp3.read_bytes() == before
    _, ti = run(f"file://{tmp_path}/talk.mp3", overwrite=True)  # the only way out, as for any other object
    assert creates(pixverse_sandbox) == 2 and ti.xcoms["pixverse_speech"]["parts"] == 1


def test_a_parts_record_counting_more_parts_than_the_text_can_have_is_not_reused(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    uris, _ = run(f"file://{tmp_path}/talk.mp3", split="parts")
    assert uris == [f"file://{tmp_path}/talk-001.mp3"]
    edit_sidecar(tmp_path / "talk-001.mp3", parts=200_000)
    started = time.monotonic()
    with pytest.raises(DestinationExistsError, match="other content"):
        run(f"file://{tmp_path}/talk.mp3", split="parts")
    assert time.monotonic() - started < 5
    assert creates(pixverse_sandbox) == 1
