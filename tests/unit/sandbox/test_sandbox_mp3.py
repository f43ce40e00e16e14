"""The generated MP3 files: valid, audible, of the asked length or size, streamed in chunks."""

from __future__ import annotations

import io
import math
import struct

import av
import pytest
from mutagen.mp3 import MP3, BitrateMode

from airflow_provider_pixverse.sandbox import mp3
from airflow_provider_pixverse.sandbox.tones import PITCHES_HZ


def decode(data: bytes) -> tuple[list[float], str]:
    """FFmpeg's decoding of ``data`` (through PyAV): the mono samples and the codec's name."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        samples: list[float] = []
        for frame in container.decode(stream):
            assert frame.format.name == "fltp" and frame.sample_rate == mp3.SAMPLE_RATE
            samples.extend(struct.unpack(f"<{frame.samples}f", bytes(frame.planes[0])[: 4 * frame.samples]))
        return samples, stream.codec_context.name


def level(samples: list[float], hz: float) -> float:
    """Amplitude of the ``hz`` component of ``samples`` (Goertzel)."""
    coefficient = 2 * math.cos(2 * math.pi * hz / mp3.SAMPLE_RATE)
    previous = before = 0.0
    for value in samples:
        previous, before = value + coefficient * previous - before, previous
    power = previous * previous + before * before - coefficient * previous * before
    return 2 * math.sqrt(max(power, 0.0)) / len(samples)


@pytest.mark.parametrize("duration", [1, 1.87, 3, 7.5, 61])
def test_mutagen_reads_the_exact_length_bitrate_and_rate(duration: float) -> None:
    data = mp3.mp3_bytes(duration)
    info = MP3(io.BytesIO(data)).info
    assert info is not None
    assert info.length == duration  # from the Info frame: frames less the declared delay and padding
    assert info.bitrate_mode == BitrateMode.CBR
    assert abs(info.bitrate - mp3.BITRATE) < mp3.BITRATE / 1000  # 417 or 418 bytes a frame average out
    assert (info.sample_rate, info.channels) == (mp3.SAMPLE_RATE, mp3.CHANNELS)
    assert len(data) == mp3.mp3_size(duration)


@pytest.mark.parametrize(("duration", "size"), [(1, None), (2.5, None), (61.37, None), (None, 200_000)])
def test_ffmpeg_decodes_exactly_the_declared_samples(duration: float | None, size: int | None) -> None:
    """FFmpeg's MP3 decoder (through PyAV) plays every frame and trims to the Info frame's length."""
    layout = mp3.mp3_layout(duration, size)
    samples, codec = decode(mp3.mp3_bytes(duration, size_bytes=size))
    assert codec.startswith("mp3")
    assert len(samples) == layout.samples
    if duration is not None:
        assert len(samples) == round(duration * mp3.SAMPLE_RATE)


def test_it_is_audible_tones_not_silence() -> None:
    """Loud enough to hear, and each frame-long stretch of sound is one of the three pitches."""
    samples, _ = decode(mp3.mp3_bytes(3))
    rms = math.sqrt(sum(v * v for v in samples) / len(samples))
    assert rms > 0.1, f"RMS {rms:.4f}: too quiet"
    heard = []
    for start in range(0, len(samples) - 1152, 1152):
        stretch = samples[start : start + 1152]
        levels = {name: level(stretch, hz) for name, hz in PITCHES_HZ.items()}
        loudest = max(levels, key=lambda name: levels[name])
        if levels[loudest] > 0.2:
            others = [value for name, value in levels.items() if name != loudest]
            assert max(others) < 0.01, f"frame at {start}: {levels}"
            heard.append(loudest)
    assert set(heard) == set(PITCHES_HZ)
    assert len(heard) > len(samples) / 1152 / 2, "more silence than sound"


def test_the_info_frame_crc_is_the_one_ffmpeg_writes() -> None:
    """FFmpeg's own MP3 muxer writes an Info frame: our CRC of its first 190 bytes gives its tag CRC."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=mp3.SAMPLE_RATE, layout="mono")
        stream.bit_rate = mp3.BITRATE
        frame = av.AudioFrame(format="s16", layout="mono", samples=4410)
        frame.sample_rate = mp3.SAMPLE_RATE
        frame.planes[0].update(bytes(2 * 4410))
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    data = out.getvalue()
    info = data.index(b"Info") - 4 - 17  # the frame header and mono side information come first
    crc_at = info + 4 + 17 + 120 + 34
    written = bytearray(data[info : info + 190])
    stored = int.from_bytes(written[crc_at - info : crc_at - info + 2], "big")
    written[crc_at - info : crc_at - info + 2] = b"\0\0"
    assert mp3._crc16(bytes(written)) == stored
    ours = mp3.info_frame(mp3.mp3_layout(2))
    assert ours[:4] == bytes((0xFF, 0xFB, 0x90, 0xC4)) and ours[21:25] == b"Info"
    zeroed = ours[:175] + b"\0\0" + ours[177:190]
    assert int.from_bytes(ours[175:177], "big") == mp3._crc16(zeroed)


def test_file_starts_with_an_id3_tag_then_a_frame_sync() -> None:
    data = mp3.mp3_bytes(1)
    assert data.startswith(b"ID3")
    tag_size = mp3.mp3_layout(1).tag_size
    assert data[tag_size] == 0xFF and data[tag_size + 1] & 0xE0 == 0xE0


@pytest.mark.parametrize("size", [1_000, 200_000, 5_000_001])
def test_target_size_is_exact(size: int) -> None:
    assert mp3.mp3_size(size_bytes=size) == size
    assert sum(len(chunk) for chunk in mp3.iter_mp3(size_bytes=size, chunk_size=7_777)) == size
    # The length is whole hundredths of a second, so the clip's duration is exact too.
    assert mp3.mp3_layout(size_bytes=size).samples % (mp3.SAMPLE_RATE // 100) == 0


def test_chunks_are_bounded_and_join_to_the_whole_file() -> None:
    chunks = list(mp3.iter_mp3(20, chunk_size=4096))
    assert max(len(c) for c in chunks) <= 4096
    assert b"".join(chunks) == b"".join(mp3.iter_mp3(20, chunk_size=1 << 20))
    assert b"".join(mp3.iter_mp3(20, chunk_size=100)) == b"".join(chunks)


def test_size_for_a_large_file_is_computed_without_building_it() -> None:
    layout = mp3.mp3_layout(size_bytes=200_000_000)
    assert layout.size == 200_000_000
    assert abs(layout.duration - 200_000_000 * 8 / mp3.BITRATE) < 1


@pytest.mark.parametrize("end_padding", [mp3.DECODER_DELAY - 1, 4096])
def test_a_layout_a_decoder_would_cut_short_is_refused(end_padding: int) -> None:
    with pytest.raises(ValueError, match="end_padding"):
        mp3.Mp3Layout(frames=10, end_padding=end_padding)
