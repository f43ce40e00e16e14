"""The generated MP3 files: valid, of the asked length or size, streamed in chunks."""

from __future__ import annotations

import io

import av
import pytest
from mutagen.mp3 import MP3

from airflow_provider_pixverse.sandbox import mp3


@pytest.mark.parametrize("duration", [1, 3, 7.5, 61])
def test_mutagen_reads_length_bitrate_and_rate(duration: float) -> None:
    data = mp3.mp3_bytes(duration)
    info = MP3(io.BytesIO(data)).info
    assert abs(info.length - duration) <= mp3.FRAME_SECONDS
    assert info.bitrate == mp3.BITRATE
    assert info.sample_rate == mp3.SAMPLE_RATE
    assert info.channels == mp3.CHANNELS
    assert len(data) == mp3.mp3_size(duration)


def test_file_starts_with_an_id3_tag_then_a_frame_sync() -> None:
    data = mp3.mp3_bytes(1)
    assert data.startswith(b"ID3")
    tag_size = mp3.mp3_layout(1).tag_size
    assert data[tag_size] == 0xFF and data[tag_size + 1] & 0xE0 == 0xE0


@pytest.mark.parametrize("size", [1_000, 200_000, 5_000_001])
def test_target_size_is_exact(size: int) -> None:
    assert mp3.mp3_size(size_bytes=size) == size
    assert sum(len(chunk) for chunk in mp3.iter_mp3(size_bytes=size, chunk_size=7_777)) == size


def test_chunks_are_bounded_and_join_to_the_whole_file() -> None:
    chunks = list(mp3.iter_mp3(20, chunk_size=4096))
    assert max(len(c) for c in chunks) <= 4096
    assert b"".join(chunks) == b"".join(mp3.iter_mp3(20, chunk_size=1 << 20))


def test_size_for_a_large_file_is_computed_without_building_it() -> None:
    layout = mp3.mp3_layout(size_bytes=200_000_000)
    assert layout.size == 200_000_000
    assert abs(layout.duration - 200_000_000 * 8 / mp3.BITRATE) < 1


def test_a_real_decoder_plays_it() -> None:
    """FFmpeg's MP3 decoder (through PyAV) decodes every frame: the samples add up to the duration."""
    container = av.open(io.BytesIO(mp3.mp3_bytes(3)))
    stream = container.streams.audio[0]
    samples = sum(frame.samples for frame in container.decode(stream))
    assert stream.codec_context.name.startswith("mp3")
    assert abs(samples / stream.rate - 3) <= 1152 / stream.rate
