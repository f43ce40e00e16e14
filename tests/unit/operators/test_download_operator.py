from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath, TaskDeferred
from mutagen.mp3 import MP3
from pixverse_testing import RecordingTaskInstance, api_requests

from airflow_provider_pixverse._api import PixVerseConnectionError, PixVerseJobFailedError, PixVerseResponseError
from airflow_provider_pixverse.exceptions import DestinationExistsError
from airflow_provider_pixverse.operators.pixverse import PixVerseDownloadSpeechOperator
from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"
S3_CONN_ID = "aws_pixverse_test"


def completed(sandbox: PixVerseSandbox, **kwargs: Any) -> dict[str, Any]:
    return sandbox.add_clip(text="Hello from the tests", voice_id=VOICE, status="COMPLETED", **kwargs)


def download(audio_id: str, destination: Any, **kwargs: Any) -> tuple[str, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    operator = PixVerseDownloadSpeechOperator(task_id="download", audio_id=audio_id, destination=destination, **kwargs)
    return operator.execute({"ti": ti}), ti


def media_requests(sandbox: PixVerseSandbox) -> list[Any]:
    return [r for r in sandbox.requests if r.kind == "media"]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_into_a_local_folder(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox, duration=4)
    uri, ti = download(clip["audio_id"], f"file://{tmp_path}/speech/")
    written = tmp_path / "speech" / clip["name"]
    assert uri == f"file://{written}"
    assert written.stat().st_size == clip["file_size"]
    assert abs(MP3(written).info.length - 4) < 0.05
    assert ti.xcoms["pixverse_speech"] == {
        "audio_id": clip["audio_id"],
        "url": clip["url"],
        "duration": 4,
        "bytes": clip["file_size"],
        "sha256": hashlib.sha256(written.read_bytes()).hexdigest(),
        "destination": uri,
    }
    assert ti.xcoms["pixverse_audio_url"] == clip["url"]
    assert files_in(tmp_path) == [clip["name"]]
    (media,) = media_requests(pixverse_sandbox)
    assert "authorization" not in {name.lower() for name in media.headers}
    assert pixverse_sandbox.token not in repr(media)


@pytest.mark.parametrize("suffix", ["out", "nested/deeper"])
def test_a_path_without_suffix_is_a_folder(pixverse_sandbox: PixVerseSandbox, tmp_path: Path, suffix: str) -> None:
    clip = completed(pixverse_sandbox)
    uri, _ = download(clip["audio_id"], ObjectStoragePath(f"file://{tmp_path}/{suffix}"))
    assert uri.endswith(f"{suffix}/{clip['name']}")


def test_an_explicit_file_name(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox)
    uri, _ = download(clip["audio_id"], f"file://{tmp_path}/greeting.mp3")
    assert uri == f"file://{tmp_path}/greeting.mp3"
    assert files_in(tmp_path) == ["greeting.mp3"]


def test_into_s3(pixverse_sandbox: PixVerseSandbox, s3_bucket: Any, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox, duration=2)
    uri, _ = download(clip["audio_id"], f"s3://{s3_bucket.name}/speech/", storage_conn_id=S3_CONN_ID)
    assert uri == f"s3://{s3_bucket.name}/speech/{clip['name']}"
    (stored,) = list(s3_bucket.objects.all())
    assert stored.key == f"speech/{clip['name']}" and stored.size == clip["file_size"]
    local = tmp_path / "copy.mp3"
    s3_bucket.download_file(stored.key, str(local))
    assert abs(MP3(local).info.length - 2) < 0.05


def test_cut_mid_stream_leaves_nothing_in_s3(pixverse_sandbox: PixVerseSandbox, s3_bucket: Any) -> None:
    clip = completed(pixverse_sandbox, duration=60)
    pixverse_sandbox.add_fault("truncate", after_bytes=100_000, count=1)
    with pytest.raises(PixVerseConnectionError, match="failed: ProtocolError|ended after"):
        download(clip["audio_id"], f"s3://{s3_bucket.name}/speech/", storage_conn_id=S3_CONN_ID)
    assert list(s3_bucket.objects.all()) == []


@pytest.mark.parametrize(
    ("fault", "params", "error", "message"),
    [
        (
            "truncate",
            {"after_bytes": 50_000},
            (PixVerseConnectionError, PixVerseResponseError),
            "failed: ProtocolError|ended after",
        ),
        ("wrong_length", {"delta": -1000}, PixVerseResponseError, "file_size"),
        ("media_html", {}, PixVerseResponseError, "text/html|no MP3"),
        ("media_json", {}, PixVerseResponseError, "application/json|no MP3"),
    ],
)
def test_a_bad_download_leaves_nothing_behind(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path, fault: str, params: dict[str, Any], error: Any, message: str
) -> None:
    clip = completed(pixverse_sandbox, duration=30)
    pixverse_sandbox.add_fault(fault, count=1, **params)
    with pytest.raises(error, match=message):
        download(clip["audio_id"], f"file://{tmp_path}/out/")
    assert files_in(tmp_path) == []


def test_too_large_is_refused(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox, duration=30)
    with pytest.raises(PixVerseResponseError, match="max_bytes"):
        download(clip["audio_id"], f"file://{tmp_path}/out/", max_bytes=10_000)
    assert files_in(tmp_path) == []


def test_a_hostile_name_lands_inside_the_folder(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox)
    hostile = {**clip, "name": "../../etc/evil\x07.mp3"}
    pixverse_sandbox.add_fault("status", code=200, body=hostile, count=-1, path_contains="/speech/user:")
    uri, _ = download(clip["audio_id"], f"file://{tmp_path}/out/")
    assert uri == f"file://{tmp_path}/out/evil_.mp3"
    assert files_in(tmp_path) == ["evil_.mp3"]


def test_overwrite_rules(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox)
    destination = f"file://{tmp_path}/"
    download(clip["audio_id"], destination)
    target = tmp_path / clip["name"]
    first = target.stat()
    download(clip["audio_id"], destination)  # the same bytes (same SHA-256): the object is kept as it is
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    target.write_bytes(b"something else")
    with pytest.raises(DestinationExistsError, match="overwrite=True"):
        download(clip["audio_id"], destination)
    assert target.read_bytes() == b"something else"
    download(clip["audio_id"], destination, overwrite=True)
    assert target.stat().st_size == clip["file_size"]
    assert files_in(tmp_path) == [clip["name"]]


def test_waits_in_the_triggerer_for_an_unfinished_clip(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.set_clock(queued_seconds=60, generating_seconds=60)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    with pytest.raises(TaskDeferred) as deferred:
        download(audio_id, f"file://{tmp_path}/", poll_interval=2)
    assert isinstance(deferred.value.trigger, PixVerseSpeechTrigger)
    assert files_in(tmp_path) == []


def test_polls_from_the_worker_when_not_deferrable(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    pixverse_sandbox.set_clock(queued_seconds=0.2, generating_seconds=0.2)
    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE)["audio_id"]
    download(audio_id, f"file://{tmp_path}/", deferrable=False, poll_interval=0.1)
    assert len(files_in(tmp_path)) == 1
    assert len([r for r in api_requests(pixverse_sandbox) if audio_id in r.raw_path]) >= 3


def test_resumes_from_the_trigger_event(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox)
    operator = PixVerseDownloadSpeechOperator(task_id="d", audio_id=clip["audio_id"], destination=f"file://{tmp_path}/")
    event = {"status": "success", "audio_id": clip["audio_id"], "clip": clip, "message": "", "error_type": None}
    assert operator.execute_complete({"ti": RecordingTaskInstance()}, event).endswith(clip["name"])


def test_failed_clip_fails_with_the_reason(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="FAILED", fail_code="E9", fail_reason="tts down")
    with pytest.raises(PixVerseJobFailedError, match="tts down"):
        download(clip["audio_id"], f"file://{tmp_path}/")
    assert files_in(tmp_path) == []


def test_media_redirect_to_another_host_carries_no_token(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    clip = completed(pixverse_sandbox)
    pixverse_sandbox.add_fault("redirect", target="media", count=1)
    download(clip["audio_id"], f"file://{tmp_path}/")
    hops = media_requests(pixverse_sandbox)
    assert len(hops) == 2 and hops[0].host_header != hops[1].host_header
    for hop in hops:
        assert "authorization" not in {name.lower() for name in hop.headers}


def test_a_different_file_of_the_same_size_is_not_taken_for_the_clip(
    pixverse_sandbox: PixVerseSandbox, tmp_path: Path
) -> None:
    """Equal sizes are common (constant bitrate): identity is checked on the content."""
    clip = completed(pixverse_sandbox)
    target = tmp_path / clip["name"]
    target.write_bytes(b"\xff\xfb" + bytes(clip["file_size"] - 2))
    with pytest.raises(DestinationExistsError, match="other content"):
        download(clip["audio_id"], f"file://{tmp_path}/")
    assert target.read_bytes()[2:] == bytes(clip["file_size"] - 2)
    assert len(media_requests(pixverse_sandbox)) == 1
    assert files_in(tmp_path) == [clip["name"]]


def test_rate_limits_spend_from_the_wait_timeout(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    """Facing 429s with a 5 s Retry-After, a 3 s wait ends as a timeout at 3 s, not as a rate-limit error later."""
    from airflow.providers.common.compat.sdk import AirflowTaskTimeout

    audio_id = pixverse_sandbox.add_clip(text="Hi", voice_id=VOICE, status="COMPLETED")["audio_id"]
    pixverse_sandbox.add_fault("status", code=429, retry_after="5", count=-1)
    started = time.monotonic()
    with pytest.raises(AirflowTaskTimeout, match="at the deadline"):
        download(audio_id, f"file://{tmp_path}/", deferrable=False, wait_timeout=3)
    assert 2.5 < time.monotonic() - started < 4.5
    assert files_in(tmp_path) == []
