"""Joining MP3 files frame by frame, checked with a real decoder (FFmpeg through PyAV) on real LAME output."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import av
import pytest
from mutagen.mp3 import MP3

from airflow_provider_pixverse.exceptions import PixVerseResponseError
from airflow_provider_pixverse.mp3join import join_mp3, scan_mp3
from airflow_provider_pixverse.sandbox import mp3


def encode(path: Path, seconds: float, *, rate: int = 44100, layout: str = "mono", bit_rate: int = 128_000) -> Path:
    """An MP3 of a 440 Hz tone, encoded by LAME (libmp3lame through PyAV)."""
    channels = 1 if layout == "mono" else 2
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout=layout)
        stream.bit_rate = bit_rate
        total, done = round(seconds * rate), 0
        while done < total:
            n = min(1152, total - done)
            frame = av.AudioFrame(format="s16", layout=layout, samples=n)
            tone = (int(8000 * math.sin(2 * math.pi * 440 * (done + i) / rate)) for i in range(n))
            data = b"".join(struct.pack("<h", value) * channels for value in tone)
            plane = frame.planes[0]
            plane.update(data + bytes(plane.buffer_size - len(data)))
            frame.sample_rate, frame.pts = rate, done
            for packet in stream.encode(frame):
                out.mux(packet)
            done += n
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def decoded_samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


@pytest.mark.parametrize(("rate", "layout"), [(44100, "stereo"), (24000, "mono")])
def test_lame_parts_join_into_one_stream_as_long_as_their_sum(tmp_path: Path, rate: int, layout: str) -> None:
    seconds = (1.3, 2.71, 0.5)
    parts = [encode(tmp_path / f"part{i}.mp3", s, rate=rate, layout=layout) for i, s in enumerate(seconds)]
    played = [decoded_samples(part) for part in parts]
    assert played == [round(s * rate) for s in seconds]  # LAME's delay and padding trimmed by the decoder

    joined = join_mp3(parts, tmp_path / "joined.mp3")

    data = (tmp_path / "joined.mp3").read_bytes()
    assert data.startswith(b"ID3") and data.count(b"ID3") == 1  # the later parts' tags are gone
    assert data.count(b"Info") + data.count(b"Xing") == 1  # one header, for the whole stream
    assert decoded_samples(tmp_path / "joined.mp3") == joined.samples
    frame = 1152 if rate > 24000 else 576
    # Every frame of every part is kept: the sum, plus what trimming took off the inner ends (LAME's
    # delay, 576 samples, and its end padding, less than the decoder's delay, 529, and a frame).
    assert joined.samples - sum(played) == joined.join_gap_samples
    assert 0 < joined.join_gap_samples < (len(parts) - 1) * (576 + 529 + frame)
    assert joined.frames == sum(scan_mp3(part).frames for part in parts)


def test_sandbox_parts_and_variable_bit_rates(tmp_path: Path) -> None:
    first = tmp_path / "a.mp3"
    first.write_bytes(mp3.mp3_bytes(2.5))
    second = encode(tmp_path / "b.mp3", 1.0, bit_rate=64_000)  # another encoder, another bit rate
    joined = join_mp3([first, second], tmp_path / "joined.mp3")
    data = (tmp_path / "joined.mp3").read_bytes()
    assert b"Xing" in data and b"Info" not in data[:2000]  # the bit rate varies now
    assert decoded_samples(tmp_path / "joined.mp3") == joined.samples
    assert joined.samples - round(2.5 * 44100) - 44100 == joined.join_gap_samples
    assert abs(MP3(tmp_path / "joined.mp3").info.length - joined.duration) < 0.001  # its LAME tag is read too


def test_tags_and_junk_around_the_frames_are_left_out(tmp_path: Path) -> None:
    clean = encode(tmp_path / "clean.mp3", 1.0)
    noisy = tmp_path / "noisy.mp3"
    body = clean.read_bytes()
    ape = b"APETAGEX" + (2000).to_bytes(4, "little") + (32).to_bytes(4, "little") + bytes(16)
    noisy.write_bytes(body + ape + b"TAG" + bytes(125))  # an APEv2 tag and an ID3v1 tag at the end
    assert scan_mp3(noisy).frames == scan_mp3(clean).frames
    joined = join_mp3([clean, noisy], tmp_path / "joined.mp3")
    assert decoded_samples(tmp_path / "joined.mp3") == joined.samples == 2 * 44100 + joined.join_gap_samples


def test_parts_of_different_formats_are_refused(tmp_path: Path) -> None:
    mono = encode(tmp_path / "mono.mp3", 0.5)
    stereo = encode(tmp_path / "stereo.mp3", 0.5, layout="stereo")
    with pytest.raises(PixVerseResponseError, match="frame by frame.*split='parts'"):
        join_mp3([mono, stereo], tmp_path / "joined.mp3")
    not_mp3 = tmp_path / "page.mp3"
    not_mp3.write_bytes(b"<html>no audio here</html>")
    with pytest.raises(PixVerseResponseError, match="no MPEG Layer III audio"):
        join_mp3([mono, not_mp3], tmp_path / "joined.mp3")
