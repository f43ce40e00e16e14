"""Silent, playable MP3 files of a chosen length or size, streamed in bounded memory.

The file is an optional ID3v2.3 tag followed by MPEG-1 Layer III frames (44.1 kHz,
128 kbps, mono). Each frame is a header, zeroed side information and zeroed main
data, which every decoder plays as silence. At 44.1 kHz a frame holds 417 or 418
bytes (the padding bit spreads the fractional byte); the padding pattern repeats
every 49 frames, which are exactly 20,480 bytes, so the frame area of any file is
a prefix of that block repeated, and any chunk of it is a slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

SAMPLE_RATE = 44100
BITRATE = 128_000
CHANNELS = 1
SAMPLES_PER_FRAME = 1152
FRAME_SECONDS = SAMPLES_PER_FRAME / SAMPLE_RATE

_BASE_FRAME = 144 * BITRATE // SAMPLE_RATE  # 417
_REMAINDER = 144 * BITRATE % SAMPLE_RATE  # 42300: padding spreads it over frames
_PERIOD = SAMPLE_RATE // math.gcd(_REMAINDER, SAMPLE_RATE)  # 49 frames
_TITLE = b"PixVerse sandbox speech"
_MIN_TAG = 10 + 10 + 1 + len(_TITLE)  # tag header + TIT2 frame header + encoding byte + text


def _padded(index: int) -> int:
    """1 when frame ``index`` carries the padding byte, else 0."""
    return (index + 1) * _REMAINDER // SAMPLE_RATE - index * _REMAINDER // SAMPLE_RATE


def _frame(padding: int) -> bytes:
    """One silent frame: header (MPEG-1, Layer III, no CRC, 128 kbps, 44.1 kHz, mono)."""
    header = bytes((0xFF, 0xFB, 0x90 | (padding << 1), 0xC4))
    return header + bytes(_BASE_FRAME + padding - len(header))


def frames_size(frames: int) -> int:
    """Byte length of the first ``frames`` frames."""
    return _BASE_FRAME * frames + frames * _REMAINDER // SAMPLE_RATE


_BLOCK = b"".join(_frame(_padded(i)) for i in range(_PERIOD))
assert len(_BLOCK) == frames_size(_PERIOD)


def _syncsafe(value: int) -> bytes:
    """ID3v2 size: four 7-bit bytes."""
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3_tag(size: int) -> bytes:
    """An ID3v2.3 tag of exactly ``size`` bytes (title frame, then zero padding)."""
    if size == 0:
        return b""
    if size < _MIN_TAG:
        raise ValueError(f"an ID3 tag needs at least {_MIN_TAG} bytes, not {size}")
    text = b"\x00" + _TITLE
    frame = b"TIT2" + len(text).to_bytes(4, "big") + b"\x00\x00" + text
    body = frame + bytes(size - 10 - len(frame))
    return b"ID3\x03\x00\x00" + _syncsafe(len(body)) + body


@dataclass(frozen=True)
class Mp3Layout:
    """How a file is made: tag bytes and frame count."""

    frames: int
    tag_size: int = _MIN_TAG

    @property
    def size(self) -> int:
        """Exact file length in bytes."""
        return self.tag_size + frames_size(self.frames)

    @property
    def duration(self) -> float:
        """Decoded length in seconds."""
        return self.frames * FRAME_SECONDS


def layout_for_duration(duration: float) -> Mp3Layout:
    """The layout whose decoded length is ``duration`` seconds, rounded up to a frame."""
    if duration < 0:
        raise ValueError(f"duration must not be negative, not {duration}")
    return Mp3Layout(frames=max(1, math.ceil(duration / FRAME_SECONDS - 1e-9)))


def layout_for_size(size_bytes: int) -> Mp3Layout:
    """The layout of exactly ``size_bytes`` bytes (or the smallest file, if that is larger)."""
    frames = max(1, (size_bytes - _MIN_TAG) * SAMPLE_RATE // (144 * BITRATE))
    while frames > 1 and frames_size(frames) + _MIN_TAG > size_bytes:
        frames -= 1
    return Mp3Layout(frames=frames, tag_size=max(_MIN_TAG, size_bytes - frames_size(frames)))


def mp3_layout(duration: float | None = None, size_bytes: int | None = None) -> Mp3Layout:
    """The layout for a target size when given, else for a duration."""
    if size_bytes is not None:
        return layout_for_size(size_bytes)
    return layout_for_duration(3 if duration is None else duration)


def mp3_size(duration: float | None = None, *, size_bytes: int | None = None) -> int:
    """Exact length in bytes of the file :func:`iter_mp3` yields for the same arguments."""
    return mp3_layout(duration, size_bytes).size


def iter_layout(layout: Mp3Layout, chunk_size: int = 65536) -> Iterator[bytes]:
    """Yield the file of ``layout`` in chunks of at most ``chunk_size`` bytes."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    tag = id3_tag(layout.tag_size)
    for start in range(0, len(tag), chunk_size):
        yield tag[start : start + chunk_size]
    window = _BLOCK * (chunk_size // len(_BLOCK) + 2)
    remaining = frames_size(layout.frames)
    offset = 0
    while remaining > 0:
        take = min(chunk_size, remaining)
        start = offset % len(_BLOCK)
        yield window[start : start + take]
        offset += take
        remaining -= take


def iter_mp3(
    duration: float | None = None, chunk_size: int = 65536, *, size_bytes: int | None = None
) -> Iterator[bytes]:
    """Yield a silent MP3 of ``duration`` seconds (or of ``size_bytes`` bytes) in chunks."""
    return iter_layout(mp3_layout(duration, size_bytes), chunk_size)


def mp3_bytes(duration: float | None = None, *, size_bytes: int | None = None) -> bytes:
    """The whole file at once: for small files only."""
    return b"".join(iter_mp3(duration, size_bytes=size_bytes))
