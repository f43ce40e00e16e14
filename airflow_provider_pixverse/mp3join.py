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
Memory stays bounded: parts are read twice (once to count, once to copy) in blocks. How a part
is scanned (its tags, its frames, junk between them) is :mod:`airflow_provider_pixverse.mp3scan`.
"""

from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_pixverse._api.errors import PixVerseResponseError
from airflow_provider_pixverse.mp3scan import (
    BITRATES_KBPS,
    COPY_BLOCK,
    LAME_SIZE,
    MPEG1,
    MPEG2,
    MPEG25,
    FrameHeader,
    Mp3Part,
    frame_length,
    parse_header,
    scan_mp3,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

__all__ = ["FrameHeader", "JoinedMp3", "Mp3Part", "info_frame", "join_mp3", "parse_header", "scan_mp3"]

_XING_FLAGS = 0x0F  # frames, bytes, seek table, quality
_XING_SIZE = 4 + 4 + 4 + 4 + 100 + 4
_LAME_CRC_SPAN = 190  # the LAME tag's CRC covers the Info frame's first 190 bytes


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
    first = scanned[0].header
    for part in scanned[1:]:
        if part.header.format != first.format:
            raise PixVerseResponseError(
                f"cannot join {part.path.name} to {scanned[0].path.name} frame by frame: "
                f"{_describe(part.header)} after {_describe(first)} (split='parts' keeps them apart)"
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
                        block = source.read(min(left, COPY_BLOCK))
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
    needed = 4 + first.side_info + _XING_SIZE + (LAME_SIZE if encoder else 0)
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
        tag = bytearray(LAME_SIZE)
        tag[0:9] = encoder.ljust(9, b" ")[:9]
        tag[9] = 0x01 if constant else 0x04  # tag revision 0; CBR or VBR (method 4)
        tag[20] = min(255, BITRATES_KBPS[MPEG1 if first.version == MPEG1 else MPEG2][first.bitrate_index])
        tag[21:24] = ((min(delay, 0xFFF) << 12) | min(padding, 0xFFF)).to_bytes(3, "big")
        tag[28:32] = stream_bytes.to_bytes(4, "big")
        frame[lame : lame + LAME_SIZE] = tag
        crc_at = lame + LAME_SIZE - 2
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
