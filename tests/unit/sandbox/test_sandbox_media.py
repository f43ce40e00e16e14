"""Media files: served without auth, playable, exact length, streamed in bounded memory."""

from __future__ import annotations

import io
import time
import tracemalloc
from typing import TYPE_CHECKING

import requests
from mutagen.mp3 import MP3

from airflow_provider_pixverse.sandbox import mp3

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox


def test_media_is_served_without_auth_and_plays(sandbox: PixVerseSandbox) -> None:
    clip = sandbox.add_clip(status="COMPLETED", duration=4)
    answer = requests.get(clip["url"], timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "audio/mpeg"
    assert int(answer.headers["Content-Length"]) == clip["file_size"] == len(answer.content)
    info = MP3(io.BytesIO(answer.content)).info
    assert abs(info.length - 4) <= mp3.FRAME_SECONDS
    assert (info.sample_rate, info.bitrate) == (clip["sample_rate"], clip["bitrate"])
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
