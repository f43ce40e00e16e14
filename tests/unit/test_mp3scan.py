"""Scanning one MP3 for its frames when its tags lie or junk sits between frames (checked with a real decoder)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import av
import pytest

from airflow_provider_pixverse import mp3scan
from airflow_provider_pixverse.exceptions import PixVerseResponseError
from airflow_provider_pixverse.mp3join import join_mp3, scan_mp3
from airflow_provider_pixverse.sandbox import mp3


def decoded_samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def syncsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def tag_size(data: bytes) -> int:
    return sum(b << (7 * (3 - i)) for i, b in enumerate(data[6:10]))


def test_an_id3_size_that_runs_into_the_audio_hides_none_of_it(tmp_path: Path) -> None:
    clean = tmp_path / "clean.mp3"
    clean.write_bytes(mp3.mp3_bytes(3.0))
    data = clean.read_bytes()
    lying = tmp_path / "lying.mp3"
    hidden = 24_000 + 7  # about 1.5 s of 128 kbps audio, and not on a frame boundary
    lying.write_bytes(data[:6] + syncsafe(tag_size(data) + hidden) + data[10:])
    reference = scan_mp3(clean)
    found = scan_mp3(lying)
    assert found.frames == reference.frames and found.runs == reference.runs
    assert found.id3 == b""  # a tag whose size is wrong is left out, or it would hide the audio of the join
    assert found.delay == reference.delay and found.samples == reference.samples
    joined = join_mp3([lying, clean], tmp_path / "joined.mp3")
    assert joined.frames == 2 * reference.frames
    assert decoded_samples(tmp_path / "joined.mp3") == joined.samples


def test_an_id3_size_past_the_end_of_the_file(tmp_path: Path) -> None:
    data = mp3.mp3_bytes(1.0)
    lying = tmp_path / "lying.mp3"
    lying.write_bytes(data[:6] + syncsafe(len(data) * 4) + data[10:])
    clean = tmp_path / "clean.mp3"
    clean.write_bytes(data)
    assert scan_mp3(lying).frames == scan_mp3(clean).frames
    no_audio = tmp_path / "tag-only.mp3"
    no_audio.write_bytes(b"ID3\x03\x00\x00" + syncsafe(5_000) + bytes(100))
    with pytest.raises(PixVerseResponseError, match="tag-only.mp3 holds no MPEG Layer III audio"):
        join_mp3([no_audio], tmp_path / "joined.mp3")


def test_junk_after_a_true_tag_is_skipped_and_the_tag_kept(tmp_path: Path) -> None:
    data = mp3.mp3_bytes(1.0)
    tag_end = 10 + tag_size(data)
    padded = tmp_path / "padded.mp3"
    padded.write_bytes(data[:tag_end] + bytes(3_000) + data[tag_end:])
    clean = tmp_path / "clean.mp3"
    clean.write_bytes(data)
    found = scan_mp3(padded)
    assert found.id3 == data[:tag_end] and found.frames == scan_mp3(clean).frames


def test_a_lame_tag_declaring_more_delay_and_padding_than_the_frames_hold_is_not_believed(tmp_path: Path) -> None:
    data = bytearray(mp3.mp3_bytes(0.05))  # a few frames
    lame = data.index(b"LAME3.100")
    data[lame + 21 : lame + 24] = ((0xFFF << 12) | 0xFFF).to_bytes(3, "big")  # 8,190 samples of delay and padding
    short = tmp_path / "short.mp3"
    short.write_bytes(bytes(data))
    part = scan_mp3(short)
    assert part.frames * 1152 < 8_190
    assert (part.delay, part.padding) == (0, 0) and part.samples == part.frames * 1152 and part.duration > 0
    joined = join_mp3([short, short], tmp_path / "joined.mp3")
    assert joined.samples == 2 * part.frames * 1152 and joined.duration > 0


def count_header_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the frame headers the scan parses (wherever the scan lives)."""
    scanning = sys.modules[scan_mp3.__module__]
    parse = scanning.parse_header
    calls = [0]

    def counting(data: Any) -> Any:
        calls[0] += 1
        return parse(data)

    monkeypatch.setattr(scanning, "parse_header", counting)
    return calls


@pytest.mark.parametrize("block", [None, 4096])  # the whole file in memory, or read block by block
def test_junk_between_frames_is_searched_not_walked_byte_by_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int | None
) -> None:
    clean = tmp_path / "clean.mp3"
    clean.write_bytes(mp3.mp3_bytes(2.0))
    reference = scan_mp3(clean)
    offset, _ = reference.runs[0]
    middle = offset + sum(reference.frame_sizes[:20])
    junk = random.Random(5).randbytes(300_000) + b"\xff" * 50_000 + bytes(50_000)
    noisy = tmp_path / "noisy.mp3"
    data = clean.read_bytes()
    noisy.write_bytes(data[:middle] + junk + data[middle:])
    if block is not None:
        monkeypatch.setattr(mp3scan, "COPY_BLOCK", block)  # a file over 4 blocks is read block by block
    parses = count_header_parses(monkeypatch)
    found = scan_mp3(noisy)
    # The frame just before the junk has no frame after it to confirm it, and is left out.
    assert found.frames == reference.frames - 1 and len(found.runs) == 2
    assert found.runs[1][0] == middle + len(junk)
    assert parses[0] < 3 * reference.frames + 500  # not one parse per byte of junk (400,000 of them)


def test_a_part_without_frames_is_refused_by_a_raise_not_an_assert(tmp_path: Path) -> None:
    empty = mp3scan.Mp3Part(tmp_path / "empty.mp3")
    with pytest.raises(PixVerseResponseError, match="empty.mp3 holds no MPEG Layer III audio"):
        _ = empty.samples  # an assert here vanished under python -O
    with pytest.raises(PixVerseResponseError, match="empty.mp3 holds no MPEG Layer III audio"):
        _ = empty.duration
