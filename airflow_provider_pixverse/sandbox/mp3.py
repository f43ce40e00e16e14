"""Playable MP3 files of a chosen length or size: tones like syllables, streamed in bounded memory.

A file is an ID3v2.3 tag, an Info frame, then MPEG-1 Layer III frames (44.1 kHz, 128 kbps, mono).
The Info frame is the Xing/LAME header CBR encoders write: frame and byte counts, and the encoder
delay and end padding, from which players and FFmpeg trim the decoded samples to the exact length.
The audio frames follow a fixed pattern of three buzzing pitches and short silences (see
:mod:`~airflow_provider_pixverse.sandbox.tones`). At 44.1 kHz a frame holds 417 or 418 bytes (the
padding bit spreads the fractional byte); both the padding and the tone pattern repeat every 49
frames, exactly 20,480 bytes, so the frame area is a prefix of one block repeated (the Info frame
standing in for the first frame) and any chunk of it is a slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_pixverse.sandbox.tones import tone_payload

if TYPE_CHECKING:
    from collections.abc import Iterator

SAMPLE_RATE = 44100
BITRATE = 128_000
CHANNELS = 1
SAMPLES_PER_FRAME = 1152
FRAME_SECONDS = SAMPLES_PER_FRAME / SAMPLE_RATE
ENCODER_DELAY = 576  # samples before the audio starts, declared in the Info frame (LAME's value)
DECODER_DELAY = 529  # samples every decoder adds: the declared end padding must cover them
_MAX_PADDING = 4095  # the Info frame's 12-bit field
_HUNDREDTH = SAMPLE_RATE // 100  # 441 samples

_BASE_FRAME = 144 * BITRATE // SAMPLE_RATE  # 417
_REMAINDER = 144 * BITRATE % SAMPLE_RATE  # 42300: padding spreads it over frames
_PERIOD = SAMPLE_RATE // math.gcd(_REMAINDER, SAMPLE_RATE)  # 49 frames
_SIDE_INFO = 17  # bytes of side information in a mono MPEG-1 Layer III frame
_TITLE = b"PixVerse sandbox speech"
_MIN_TAG = 10 + 10 + 1 + len(_TITLE)  # tag header + TIT2 frame header + encoding byte + text

# One block of frames: "words" of one pitch between short silences ("").
_PATTERN: tuple[str, ...] = (
    ("",) + ("low",) * 7 + ("",) * 2 + ("mid",) * 5 + ("",) * 2 + ("high",) * 8 + ("",) * 3
    + ("mid",) * 6 + ("",) * 2 + ("low",) * 9 + ("",) * 4
)  # fmt: skip
assert len(_PATTERN) == _PERIOD and _PATTERN[0] == ""


def _padded(index: int) -> int:
    """1 when frame ``index`` carries the padding byte, else 0."""
    return (index + 1) * _REMAINDER // SAMPLE_RATE - index * _REMAINDER // SAMPLE_RATE


def _header(padding: int) -> bytes:
    """Frame header: MPEG-1, Layer III, no CRC, 128 kbps, 44.1 kHz, mono, original."""
    return bytes((0xFF, 0xFB, 0x90 | (padding << 1), 0xC4))


def _frame(index: int) -> bytes:
    """Frame ``index`` of the block: its pattern's tone, or silence (zero side information)."""
    padding = _padded(index)
    size = _BASE_FRAME + padding - 4
    name = _PATTERN[index]
    return _header(padding) + (tone_payload(name, size) if name else bytes(size))


def frames_size(frames: int) -> int:
    """Byte length of the first ``frames`` frames."""
    return _BASE_FRAME * frames + frames * _REMAINDER // SAMPLE_RATE


_BLOCK = b"".join(_frame(i) for i in range(_PERIOD))
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
    """How a file is made: audio frames, the samples decoded past the end, and tag bytes."""

    frames: int
    end_padding: int = DECODER_DELAY
    tag_size: int = _MIN_TAG

    def __post_init__(self) -> None:
        if self.frames < 1 or self.samples < 0:
            raise ValueError(f"a file needs at least one frame of audio, not {self}")
        if not DECODER_DELAY <= self.end_padding <= _MAX_PADDING:
            raise ValueError(f"end_padding must be {DECODER_DELAY} to {_MAX_PADDING}, not {self.end_padding}")

    @property
    def samples(self) -> int:
        """Samples a player plays: the frames' less the declared delay and padding."""
        return self.frames * SAMPLES_PER_FRAME - ENCODER_DELAY - self.end_padding

    @property
    def duration(self) -> float:
        """Decoded length in seconds."""
        return self.samples / SAMPLE_RATE

    @property
    def stream_size(self) -> int:
        """Bytes of MPEG frames, the Info frame included."""
        return frames_size(self.frames + 1)

    @property
    def size(self) -> int:
        """Exact file length in bytes."""
        return self.tag_size + self.stream_size


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, as the LAME tag's own checksum uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def info_frame(layout: Mp3Layout) -> bytes:
    """The Info frame (a silent frame holding the Xing and LAME headers) for ``layout``."""
    stream = layout.stream_size.to_bytes(4, "big")
    toc = bytes(i * 256 // 100 for i in range(100))  # CBR: byte position grows with time
    xing = b"Info" + (0x0F).to_bytes(4, "big") + layout.frames.to_bytes(4, "big") + stream + toc + bytes(4)
    delays = ((ENCODER_DELAY << 12) | layout.end_padding).to_bytes(3, "big")
    # version, tag revision 0 + CBR, lowpass/100 Hz, replay gain, flags, bitrate, delays, misc, length, CRC.
    lame = b"LAME3.100" + bytes((0x01, 170)) + bytes(8) + bytes((0, BITRATE // 1000)) + delays + bytes(4)
    lame += stream + bytes(2)
    head = _header(0) + bytes(_SIDE_INFO) + xing + lame
    frame = head + bytes(_BASE_FRAME - len(head))
    # The tag's CRC covers the frame's first 190 bytes, its own two counted as zero (as FFmpeg writes it).
    return head + _crc16(frame[:190]).to_bytes(2, "big") + frame[len(head) + 2 :]


def layout_for_duration(duration: float) -> Mp3Layout:
    """The layout that plays for ``duration`` seconds (to the sample)."""
    if duration < 0:
        raise ValueError(f"duration must not be negative, not {duration}")
    samples = round(duration * SAMPLE_RATE)
    frames = max(1, math.ceil((samples + ENCODER_DELAY + DECODER_DELAY) / SAMPLES_PER_FRAME))
    return Mp3Layout(frames=frames, end_padding=frames * SAMPLES_PER_FRAME - ENCODER_DELAY - samples)


def layout_for_size(size_bytes: int) -> Mp3Layout:
    """The layout of exactly ``size_bytes`` bytes (or the smallest file, if that is larger).

    Its length is a whole number of hundredths of a second: the end padding rounds it down.
    """
    frames = max(1, (size_bytes - _MIN_TAG) * SAMPLE_RATE // (144 * BITRATE) - 1)
    while frames > 1 and frames_size(frames + 1) + _MIN_TAG > size_bytes:
        frames -= 1
    spare = (frames * SAMPLES_PER_FRAME - ENCODER_DELAY - DECODER_DELAY) % _HUNDREDTH
    tag_size = max(_MIN_TAG, size_bytes - frames_size(frames + 1))
    return Mp3Layout(frames=frames, end_padding=DECODER_DELAY + spare, tag_size=tag_size)


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
    head = id3_tag(layout.tag_size) + info_frame(layout)
    for start in range(0, len(head), chunk_size):
        yield head[start : start + chunk_size]
    window = _BLOCK * (chunk_size // len(_BLOCK) + 2)
    offset = _BASE_FRAME  # the Info frame took the place of the block's first frame
    remaining = layout.stream_size - _BASE_FRAME
    while remaining > 0:
        take = min(chunk_size, remaining)
        start = offset % len(_BLOCK)
        yield window[start : start + take]
        offset += take
        remaining -= take


def iter_mp3(
    duration: float | None = None, chunk_size: int = 65536, *, size_bytes: int | None = None
) -> Iterator[bytes]:
    """Yield an MP3 of ``duration`` seconds (or of ``size_bytes`` bytes) in chunks."""
    return iter_layout(mp3_layout(duration, size_bytes), chunk_size)


def mp3_bytes(duration: float | None = None, *, size_bytes: int | None = None) -> bytes:
    """The whole file at once: for small files only."""
    return b"".join(iter_mp3(duration, size_bytes=size_bytes))
