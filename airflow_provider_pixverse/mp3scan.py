"""Finding the audio frames of one MP3 file: its ID3v2 tag, its frames, its gapless info (see :mod:`.mp3join`).

A frame is taken as one when the next frame starts right after it (or the audio ends there);
bytes that are not frames are skipped by searching for the next frame sync. An ID3v2 tag whose
declared size runs into the audio is found out (a chain of frames crosses its end) and left out,
so no audio hides behind it; a LAME tag that declares more encoder delay and padding than the
frames hold is not believed (the part plays all its frames).
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from airflow_provider_pixverse._api.errors import PixVerseResponseError

if TYPE_CHECKING:
    from pathlib import Path

MPEG1, MPEG2, MPEG25 = 3, 2, 0
LAYER3 = 1
BITRATES_KBPS = {
    MPEG1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    MPEG2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {MPEG1: (44100, 48000, 32000), MPEG2: (22050, 24000, 16000), MPEG25: (11025, 12000, 8000)}
LAME_SIZE = 36
_ENCODERS_WITH_GAPLESS_INFO = (b"LAME", b"Lavf", b"Lavc")  # the tags decoders read delay and padding from
COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class FrameHeader:
    """The fields of one MPEG audio frame header that say how long the frame is and what it holds."""

    raw: bytes
    version: int
    sample_rate: int
    bitrate_index: int
    padding: int
    mono: bool

    @property
    def samples(self) -> int:
        """Samples per frame: 1152 for MPEG-1 Layer III, 576 for MPEG-2 and 2.5."""
        return 1152 if self.version == MPEG1 else 576

    @property
    def length(self) -> int:
        """The frame's length in bytes, header included."""
        return frame_length(self.version, self.bitrate_index, self.sample_rate, self.padding)

    @property
    def side_info(self) -> int:
        """Bytes of side information after the header (where a Xing tag starts)."""
        if self.version == MPEG1:
            return 17 if self.mono else 32
        return 9 if self.mono else 17

    @property
    def format(self) -> tuple[int, int, bool]:
        """What parts must share to be joined: MPEG version, sample rate, mono."""
        return self.version, self.sample_rate, self.mono


def frame_length(version: int, bitrate_index: int, sample_rate: int, padding: int) -> int:
    """Bytes in a Layer III frame."""
    bitrate = BITRATES_KBPS[MPEG1 if version == MPEG1 else MPEG2][bitrate_index] * 1000
    coefficient = 144 if version == MPEG1 else 72
    return coefficient * bitrate // sample_rate + padding


def parse_header(data: bytes) -> FrameHeader | None:
    """The Layer III frame header in the first four bytes of ``data``, or ``None`` when there is none."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[1] >> 3) & 3, (data[1] >> 1) & 3
    bitrate_index, rate_index = data[2] >> 4, (data[2] >> 2) & 3
    if version == 1 or layer != LAYER3 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    return FrameHeader(
        raw=bytes(data[:4]),
        version=version,
        sample_rate=_SAMPLE_RATES[version][rate_index],
        bitrate_index=bitrate_index,
        padding=(data[2] >> 1) & 1,
        mono=data[3] >> 6 == 3,
    )


@dataclass
class Mp3Part:
    """What a scan of one file found: its tag, its audio frames (as runs of bytes) and its gapless info."""

    path: Path
    id3: bytes = b""
    runs: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) of contiguous audio frames
    frame_sizes: array[int] = field(default_factory=lambda: array("I"))
    first: FrameHeader | None = None
    bitrates: set[int] = field(default_factory=set)
    encoder: bytes | None = None  # the LAME tag's 9-byte version string, when the file has one
    delay: int = 0
    padding: int = 0

    @property
    def frames(self) -> int:
        """Audio frames (the Info frame not counted)."""
        return len(self.frame_sizes)

    @property
    def audio_bytes(self) -> int:
        """Bytes of audio frames."""
        return sum(length for _, length in self.runs)

    @property
    def header(self) -> FrameHeader:
        """The first audio frame's header; refused when the scan found none."""
        if self.first is None:
            raise PixVerseResponseError(f"{self.path.name} holds no MPEG Layer III audio frames")
        return self.first

    @property
    def samples(self) -> int:
        """Samples a decoder plays: the frames', less the delay and padding its LAME tag declares."""
        return self.frames * self.header.samples - self.delay - self.padding

    @property
    def duration(self) -> float:
        """Seconds a decoder plays."""
        return self.samples / self.header.sample_rate


def scan_mp3(path: Path) -> Mp3Part:
    """Find the frames of an MP3 file; refuse one with no Layer III audio in it."""
    data = path.read_bytes() if path.stat().st_size <= 4 * COPY_BLOCK else None
    with path.open("rb") as file:
        return _scan(path, data if data is not None else _Reader(file))


class _Reader:
    """Random access to a file by slices, in blocks: a scan of a large file holds one block at a time."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._size = file.seek(0, 2)
        self._start = 0
        self._block = b""

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: slice) -> bytes:
        start, stop = key.start or 0, min(key.stop if key.stop is not None else self._size, self._size)
        if start < self._start or stop > self._start + len(self._block):
            self._file.seek(start)
            self._start, self._block = start, self._file.read(max(COPY_BLOCK, stop - start))
        return self._block[start - self._start : stop - self._start]


def _scan(path: Path, data: bytes | _Reader) -> Mp3Part:
    part = Mp3Part(path)
    size = len(data)
    end = size - _trailing_tags_length(data, size)
    tag_end = _id3v2_length(data[:10])
    pos = _audio_start(data, tag_end, end)
    part.id3 = bytes(data[:tag_end]) if pos >= tag_end else b""  # a tag whose size runs into the audio is left out
    run_start: int | None = None
    run_length = 0
    while pos + 4 <= end:
        header = parse_header(data[pos : pos + 4])
        if header is None or pos + header.length > end or not _confirmed(data, pos + header.length, end, header):
            if run_start is not None:
                part.runs.append((run_start, run_length))
                run_start, run_length = None, 0
            pos = _next_sync(data, pos + 1, end)  # not a frame: on to the next frame sync
            continue
        if part.first is None:
            part.first = header
            if _read_info_frame(part, data[pos : pos + header.length], header):
                pos += header.length
                continue
        elif header.format != part.first.format:
            raise PixVerseResponseError(f"{path.name} changes format mid-stream at byte {pos}")
        if run_start is None:
            run_start = pos
        run_length += header.length
        part.frame_sizes.append(header.length)
        part.bitrates.add(header.bitrate_index)
        pos += header.length
    if run_start is not None:
        part.runs.append((run_start, run_length))
    if part.first is None or not part.frames:
        raise PixVerseResponseError(f"{path.name} holds no MPEG Layer III audio frames")
    if part.delay + part.padding > part.frames * part.first.samples:
        part.delay = part.padding = 0  # the LAME tag declares more than the frames hold: it is not believed
    return part


# A frame sync that can start a Layer III header: 11 bits set, MPEG version 1, 2 or 2.5, layer III.
_SYNC = re.compile(b"\xff[\xe2\xe3\xf2\xf3\xfa\xfb]")


def _next_sync(data: bytes | _Reader, start: int, end: int) -> int:
    """The offset of the first frame sync from ``start`` (``end`` when there is none): a search, not a byte loop."""
    if isinstance(data, bytes):
        found = _SYNC.search(data, start, end)
        return found.start() if found is not None else end
    while end - start >= 2:
        block = data[start : min(end, start + COPY_BLOCK)]
        found = _SYNC.search(block)
        if found is not None:
            return start + found.start()
        start += len(block) - 1  # a sync may straddle two blocks
    return end


def _audio_start(data: bytes | _Reader, tag_end: int, end: int) -> int:
    """Where the scan starts: after the ID3v2 tag, unless the tag's size runs into the audio.

    When the bytes after the tag are not a frame, the tag is searched for a chain of frames that
    runs across its declared end into frames (or to the end of the audio): such a tag's size is
    wrong, and the audio starts where the chain does. Otherwise the scan starts after the tag and
    skips what is not a frame, as anywhere else. Each offset is walked at most once.
    """
    if tag_end == 0 or (tag_end < end and _frame_chain_at(data, tag_end, end, tag_end + 1, set())):
        return tag_end
    reach = min(tag_end, end)  # a tag said to run past the audio: the chain must run to the end
    dead: set[int] = set()  # offsets a failed chain went through: any chain reaching one fails too
    candidate = _next_sync(data, 10, reach)
    while candidate < reach:
        if _frame_chain_at(data, candidate, end, reach, dead):
            return candidate
        candidate = _next_sync(data, candidate + 1, reach)
    return tag_end


def _frame_chain_at(data: bytes | _Reader, pos: int, end: int, reach: int, dead: set[int]) -> bool:
    """Whether frames of one format follow each other from ``pos`` to at least ``reach``, then a frame or the end."""
    first = parse_header(data[pos : pos + 4])
    if first is None:
        return False
    walked: list[int] = []
    while pos < reach:
        header = None if pos in dead else parse_header(data[pos : pos + 4])
        if header is None or header.format != first.format:
            break
        walked.append(pos)
        pos += header.length
    else:
        if pos + 4 > end or _confirmed(data, pos, end, first):
            return True
    dead.update(walked)
    return False


def _confirmed(data: bytes | _Reader, after: int, end: int, header: FrameHeader) -> bool:
    """A frame is taken as one when the next one starts right after it (or the audio ends there)."""
    if after + 4 > end:
        return True
    following = parse_header(data[after : after + 4])
    return following is not None and following.format == header.format


def _id3v2_length(head: bytes) -> int:
    if len(head) < 10 or not head.startswith(b"ID3") or any(b & 0x80 for b in head[6:10]):
        return 0
    size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _trailing_tags_length(data: bytes | _Reader, size: int) -> int:
    """Bytes of ID3v1 and APEv2 tags at the end of the file."""
    length = 0
    if size >= 128 and data[size - 128 : size - 125] == b"TAG":
        length = 128
    footer = data[size - length - 32 : size - length] if size - length >= 32 else b""
    if footer.startswith(b"APETAGEX"):
        tag_size = int.from_bytes(footer[12:16], "little")
        has_header = footer[23] & 0x80
        length += tag_size + (32 if has_header else 0)
    return min(length, size)


def _read_info_frame(part: Mp3Part, frame: bytes, header: FrameHeader) -> bool:
    """Whether ``frame`` is a Xing/Info (or VBRI) frame rather than audio; keeps its delay and padding."""
    offset = 4 + header.side_info
    tag = frame[offset : offset + 4]
    if frame[36:40] == b"VBRI":
        return True
    if tag not in (b"Xing", b"Info"):
        return False
    flags = int.from_bytes(frame[offset + 4 : offset + 8], "big")
    lame = offset + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    encoder = frame[lame : lame + 9]
    if len(frame) >= lame + LAME_SIZE and encoder[:4] in _ENCODERS_WITH_GAPLESS_INFO:
        delays = int.from_bytes(frame[lame + 21 : lame + 24], "big")
        part.encoder, part.delay, part.padding = bytes(encoder), delays >> 12, delays & 0xFFF
    return True
