"""Joining MP3 files into one, frame by frame: no decoding, no re-encoding.

The joined file is the first part's ID3v2 tag (if any; tags of later parts are dropped, so ID3
is only at the start), a new Xing/Info frame describing the whole stream (frame and byte counts,
seek table, and the LAME tag's encoder delay and end padding: the first part's delay and the last
part's padding, so players trim the joined file as they trimmed its ends), then every audio frame
of every part, in order. Each part's own Info frame, trailing ID3v1 and APE tags, and any bytes
between frames that are not frames are left out.

Only MPEG Layer III parts of one format (MPEG version, sample rate, mono or not) are joined; the
bit rate may differ (the header then says ``Xing``, variable, instead of ``Info``).

Length: every part keeps all its frames, so the joined audio is the sum of the parts' plus, at
each join, the encoder delay and end padding that trimming removed from the parts' inner ends
(:attr:`JoinedMp3.join_gap_seconds`: silence the encoder added, under 2,257 samples, 51 ms at
44.1 kHz, per join with LAME's delay of 576 samples). Frames are never dropped, so no audio is
lost. :attr:`JoinedMp3.duration` is the length a decoder plays, to the sample.
Memory stays bounded: parts are read twice (once to count, once to copy) in blocks.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from airflow_provider_pixverse._api.errors import PixVerseResponseError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

MPEG1, MPEG2, MPEG25 = 3, 2, 0
LAYER3 = 1
_BITRATES_KBPS = {
    MPEG1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    MPEG2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {MPEG1: (44100, 48000, 32000), MPEG2: (22050, 24000, 16000), MPEG25: (11025, 12000, 8000)}
_XING_FLAGS = 0x0F  # frames, bytes, seek table, quality
_XING_SIZE = 4 + 4 + 4 + 4 + 100 + 4
_LAME_SIZE = 36
_LAME_CRC_SPAN = 190  # the LAME tag's CRC covers the Info frame's first 190 bytes
_ENCODERS_WITH_GAPLESS_INFO = (b"LAME", b"Lavf", b"Lavc")  # the tags decoders read delay and padding from
_COPY_BLOCK = 1024 * 1024


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
    bitrate = _BITRATES_KBPS[MPEG1 if version == MPEG1 else MPEG2][bitrate_index] * 1000
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
    def samples(self) -> int:
        """Samples a decoder plays: the frames', less the delay and padding its LAME tag declares."""
        assert self.first is not None
        return self.frames * self.first.samples - self.delay - self.padding

    @property
    def duration(self) -> float:
        """Seconds a decoder plays."""
        assert self.first is not None
        return self.samples / self.first.sample_rate


def scan_mp3(path: Path) -> Mp3Part:
    """Find the frames of an MP3 file; refuse one with no Layer III audio in it."""
    data = path.read_bytes() if path.stat().st_size <= 4 * _COPY_BLOCK else None
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
            self._start, self._block = start, self._file.read(max(_COPY_BLOCK, stop - start))
        return self._block[start - self._start : stop - self._start]


def _scan(path: Path, data: bytes | _Reader) -> Mp3Part:
    part = Mp3Part(path)
    size = len(data)
    pos = _id3v2_length(data[:10])
    part.id3 = bytes(data[:pos])
    end = size - _trailing_tags_length(data, size)
    run_start: int | None = None
    run_length = 0
    while pos + 4 <= end:
        header = parse_header(data[pos : pos + 4])
        if header is None or pos + header.length > end or not _confirmed(data, pos + header.length, end, header):
            if run_start is not None:
                part.runs.append((run_start, run_length))
                run_start, run_length = None, 0
            pos += 1  # not a frame: look for the next one
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
    return part


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
    if len(frame) >= lame + _LAME_SIZE and encoder[:4] in _ENCODERS_WITH_GAPLESS_INFO:
        delays = int.from_bytes(frame[lame + 21 : lame + 24], "big")
        part.encoder, part.delay, part.padding = bytes(encoder), delays >> 12, delays & 0xFFF
    return True


@dataclass(frozen=True)
class JoinedMp3:
    """What :func:`join_mp3` wrote."""

    size: int
    sha256: str
    frames: int
    sample_rate: int
    samples: int
    join_gap_samples: int

    @property
    def duration(self) -> float:
        """Seconds a decoder plays."""
        return self.samples / self.sample_rate

    @property
    def join_gap_seconds(self) -> float:
        """The encoder's silence kept at the joins (see the module)."""
        return self.join_gap_samples / self.sample_rate


def join_mp3(parts: Sequence[Path], out: Path) -> JoinedMp3:
    """Join the MP3 files ``parts``, in order, into ``out`` (see the module)."""
    if not parts:
        raise ValueError("nothing to join")
    scanned = [scan_mp3(path) for path in parts]
    first = scanned[0].first
    assert first is not None
    for part in scanned[1:]:
        assert part.first is not None
        if part.first.format != first.format:
            raise PixVerseResponseError(
                f"cannot join {part.path.name} to {scanned[0].path.name} frame by frame: "
                f"{_describe(part.first)} after {_describe(first)} (split='parts' keeps them apart)"
            )
    gapless = scanned[0].encoder is not None
    delay, padding = (scanned[0].delay, scanned[-1].padding) if gapless else (0, 0)
    frames = sum(part.frames for part in scanned)
    frame_sizes = array("I")
    for part in scanned:
        frame_sizes.extend(part.frame_sizes)
    bitrates = set().union(*(part.bitrates for part in scanned))
    info = info_frame(first, frame_sizes, bitrates, encoder=scanned[0].encoder, delay=delay, padding=padding)
    digest = hashlib.sha256()
    size = 0
    with out.open("wb") as sink:
        for chunk in (scanned[0].id3, info):
            sink.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        for part in scanned:
            with part.path.open("rb") as source:
                for offset, length in part.runs:
                    source.seek(offset)
                    left = length
                    while left:
                        block = source.read(min(left, _COPY_BLOCK))
                        if not block:
                            raise PixVerseResponseError(f"{part.path.name} ended while it was being joined")
                        sink.write(block)
                        digest.update(block)
                        size += len(block)
                        left -= len(block)
    samples = frames * first.samples - delay - padding
    played = sum(part.samples for part in scanned)
    return JoinedMp3(size, digest.hexdigest(), frames, first.sample_rate, samples, samples - played)


def info_frame(
    first: FrameHeader,
    frame_sizes: Sequence[int],
    bitrates: set[int],
    *,
    encoder: bytes | None,
    delay: int,
    padding: int,
) -> bytes:
    """A Xing/Info frame for a stream of ``frame_sizes`` audio frames in the format of ``first``."""
    needed = 4 + first.side_info + _XING_SIZE + (_LAME_SIZE if encoder else 0)
    bitrate_index = first.bitrate_index
    while frame_length(first.version, bitrate_index, first.sample_rate, 0) < max(needed, _LAME_CRC_SPAN + 2):
        bitrate_index += 1
        if bitrate_index == 15:
            raise PixVerseResponseError("no MPEG bit rate makes a frame large enough for the Info header")
    length = frame_length(first.version, bitrate_index, first.sample_rate, 0)
    constant = bitrates == {bitrate_index}
    header = bytes(
        (
            0xFF,
            first.raw[1] | 0x01,  # no CRC
            (bitrate_index << 4) | (first.raw[2] & 0x0C),  # same sample rate, no padding, private bit clear
            first.raw[3],
        )
    )
    stream_bytes = length + sum(frame_sizes)
    xing = (b"Info" if constant else b"Xing") + _XING_FLAGS.to_bytes(4, "big")
    xing += len(frame_sizes).to_bytes(4, "big") + stream_bytes.to_bytes(4, "big")
    xing += _seek_table(length, frame_sizes, stream_bytes) + bytes(4)
    frame = bytearray(length)
    frame[:4] = header
    offset = 4 + first.side_info
    frame[offset : offset + len(xing)] = xing
    if encoder:
        lame = offset + len(xing)
        tag = bytearray(_LAME_SIZE)
        tag[0:9] = encoder.ljust(9, b" ")[:9]
        tag[9] = 0x01 if constant else 0x04  # tag revision 0; CBR or VBR (method 4)
        tag[20] = min(255, _BITRATES_KBPS[MPEG1 if first.version == MPEG1 else MPEG2][first.bitrate_index])
        tag[21:24] = ((min(delay, 0xFFF) << 12) | min(padding, 0xFFF)).to_bytes(3, "big")
        tag[28:32] = stream_bytes.to_bytes(4, "big")
        frame[lame : lame + _LAME_SIZE] = tag
        crc_at = lame + _LAME_SIZE - 2
        frame[crc_at : crc_at + 2] = _crc16(bytes(frame[:_LAME_CRC_SPAN])).to_bytes(2, "big")
    return bytes(frame)


def _seek_table(info_length: int, frame_sizes: Sequence[int], stream_bytes: int) -> bytes:
    """The Xing TOC: for each percent of the playing time, where in the stream (in 256ths) it starts."""
    count = len(frame_sizes)
    table = bytearray(100)
    position = info_length
    frame = 0
    for percent in range(100):
        target = percent * count // 100
        while frame < target:
            position += frame_sizes[frame]
            frame += 1
        table[percent] = min(255, position * 256 // stream_bytes)
    return bytes(table)


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, the LAME tag's checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _describe(header: FrameHeader) -> str:
    version = {MPEG1: "MPEG-1", MPEG2: "MPEG-2", MPEG25: "MPEG-2.5"}[header.version]
    return f"{version} {header.sample_rate} Hz {'mono' if header.mono else 'stereo'}"
