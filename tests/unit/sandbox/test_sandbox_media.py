"""Media files: served without auth, playable, exact length, streamed in bounded memory."""

from __future__ import annotations

import io
import time
import tracemalloc
from typing import TYPE_CHECKING

import pytest
import requests
from mutagen.mp3 import MP3

if TYPE_CHECKING:
    from conftest import Api

    from airflow_provider_pixverse.sandbox import PixVerseSandbox


def test_media_is_served_without_auth_and_plays(sandbox: PixVerseSandbox) -> None:
    clip = sandbox.add_clip(status="COMPLETED", duration=4)
    answer = requests.get(clip["url"], timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "audio/mpeg"
    assert int(answer.headers["Content-Length"]) == clip["file_size"] == len(answer.content)
    info = MP3(io.BytesIO(answer.content)).info
    assert info.length == clip["duration"] == 4
    assert info.sample_rate == clip["sample_rate"]
    # mutagen averages the frames' bytes: 417 or 418 a frame make 128 kbps to within a byte per file.
    assert abs(info.bitrate - clip["bitrate"]) < clip["bitrate"] / 1000
    media = [r for r in sandbox.requests if r.kind == "media"]
    assert len(media) == 1
    assert "Authorization" not in media[0].headers


def test_head_gives_the_length_without_a_body(sandbox: PixVerseSandbox) -> None:
    clip = sandbox.add_clip(status="COMPLETED")
    answer = requests.head(clip["url"], timeout=10)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == clip["file_size"]
    assert answer.content == b""
    assert requests.get(clip["url"], timeout=10).status_code == 200  # the connection stayed usable


def test_media_of_unknown_or_unfinished_clips_is_404(sandbox: PixVerseSandbox) -> None:
    pending = sandbox.add_clip(status="QUEUED")
    url = f"{sandbox.url}/media/pixverse/audio/speech/{pending['asset_id']}.mp3"
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(f"{sandbox.url}/media/pixverse/audio/speech/1.mp3", timeout=10).status_code == 404


def test_large_clip_is_streamed_in_bounded_memory(sandbox: PixVerseSandbox) -> None:
    size = 50_000_000
    clip = sandbox.add_clip(status="COMPLETED", size_bytes=size)
    assert clip["file_size"] == size
    tracemalloc.start()
    try:
        received = 0
        with requests.get(clip["url"], stream=True, timeout=30) as answer:
            assert int(answer.headers["Content-Length"]) == size
            for chunk in answer.iter_content(chunk_size=1 << 16):
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while streaming {size}"
    # The server counts a chunk once it is sent, which can be just after the client has read it.
    deadline = time.monotonic() + 5
    while sandbox.stats()["media_bytes"] != size and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.stats()["media_bytes"] == size


def test_media_host_can_differ_from_the_api_host() -> None:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

    with PixVerseSandbox(media_host="localhost") as sandbox:
        clip = sandbox.add_clip(status="COMPLETED")
        assert clip["url"].startswith(f"http://localhost:{sandbox.port}/media/")
        assert requests.get(clip["url"], timeout=10).status_code == 200


@pytest.mark.parametrize(("length", "seconds"), [(5, 1), (150, 10), (232, 15.47)])
def test_the_speech_lasts_as_long_as_its_text_takes_to_say(
    sandbox: PixVerseSandbox, api: Api, length: int, seconds: float
) -> None:
    """About 15 characters a second, at least one second; the file plays exactly what the clip says."""
    sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    audio_id = api.create(text="x" * length).json()["audio_id"]
    clip = api.get(f"/speech/{audio_id}").json()
    assert clip["duration"] == seconds
    audio = requests.get(clip["url"], timeout=10).content
    assert len(audio) == clip["file_size"]
    info = MP3(io.BytesIO(audio)).info
    assert info is not None and info.length == seconds


def test_a_very_long_text_makes_ten_minutes_at_most(sandbox: PixVerseSandbox, api: Api) -> None:
    sandbox.set_clock(queued_seconds=0, generating_seconds=0)
    audio_id = api.create(text="x" * 40_000, model="eleven-turbo-v2.5").json()["audio_id"]
    clip = api.get(f"/speech/{audio_id}").json()
    assert clip["duration"] == 600
    assert int(requests.head(clip["url"], timeout=10).headers["Content-Length"]) == clip["file_size"]
