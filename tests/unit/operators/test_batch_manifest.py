"""The manifest of a corpus: streamed, published whole, read back tolerantly; the result stays small."""

from __future__ import annotations

import json
import tracemalloc
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError
from airflow_provider_pixverse.operators import batch_manifest
from airflow_provider_pixverse.operators.batch_manifest import (
    MANIFEST_NAME,
    MAX_FAILED_NAMES,
    MAX_LINE_BYTES,
    BatchResult,
    ManifestEntry,
    manifest_path,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEY = "ab" * 32


def entry(number: int, status: str = "done", **fields: Any) -> ManifestEntry:
    values: dict[str, Any] = {
        "audio_ids": (f"user:1-pixverse:a@b.c-speech:{number}",),
        "credits": 2,
        "duration": 1.5,
        "uri": f"file:///speech/item-{number}.mp3",
        **fields,
    }
    return ManifestEntry(name=f"item-{number}", content_key=KEY, status=status, **values)


def entries(count: int, status: str = "done") -> Iterator[ManifestEntry]:
    return (entry(number, status) for number in range(count))


def test_written_beside_the_mp3s_and_read_back(tmp_path: Path) -> None:
    target = manifest_path(f"{tmp_path.as_uri()}/speech/")
    assert target.name == MANIFEST_NAME and str(target).endswith("/speech/manifest.jsonl")
    written = [
        entry(1),
        entry(2, "reused", credits=0),
        entry(3, "failed", audio_ids=(), credits=None, duration=None, uri=None, reason="FAILED: fail_code='x'"),
        entry(4, "pending", audio_ids=(), credits=None),
        ManifestEntry(name="名前 ü", content_key=KEY, status="done"),
    ]
    result = BatchResult(credits_estimated=10)
    uri = write_manifest(target, written, result=result)
    assert uri == f"file://{tmp_path}/speech/manifest.jsonl" and result.manifest == uri
    lines = (tmp_path / "speech" / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    assert json.loads(lines[0]) == {
        "name": "item-1",
        "content_key": KEY,
        "audio_ids": ["user:1-pixverse:a@b.c-speech:1"],
        "credits": 2,
        "duration": 1.5,
        "uri": "file:///speech/item-1.mp3",
        "status": "done",
        "reason": None,
    }
    reading = read_manifest(target)
    assert list(reading) == written
    assert (reading.found, reading.skipped) == (True, 0)
    assert result.to_json() == {
        "items": 5,
        "counts": {"done": 2, "reused": 1, "failed": 1, "pending": 1},
        "credits_estimated": 10,
        "credits_charged": 2,
        "failed": ["item-3"],
        "failed_more": 0,
        "manifest": uri,
    }
    assert [path.name for path in (tmp_path / "speech").iterdir()] == [MANIFEST_NAME]  # no temporary left


def test_a_failed_write_leaves_the_earlier_manifest(tmp_path: Path) -> None:
    target = manifest_path(tmp_path.as_uri())
    write_manifest(target, entries(3))
    before = (tmp_path / MANIFEST_NAME).read_bytes()

    def broken() -> Iterator[ManifestEntry]:
        yield entry(10)
        raise RuntimeError("killed mid-stream")

    with pytest.raises(RuntimeError, match="killed mid-stream"):
        write_manifest(target, broken())
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [MANIFEST_NAME]


def test_written_to_an_object_store(s3_bucket: Any) -> None:
    folder = ObjectStoragePath(f"s3://{s3_bucket.name}/corpus/", conn_id="aws_pixverse_test")
    target = manifest_path(folder)
    write_manifest(target, entries(50))
    assert [item.name for item in read_manifest(target)] == [f"item-{number}" for number in range(50)]
    keys = sorted(obj.key for obj in s3_bucket.objects.all())
    assert keys == ["corpus/manifest.jsonl"]


def test_a_missing_manifest_has_no_entries(tmp_path: Path) -> None:
    reading = read_manifest(manifest_path(tmp_path.as_uri()))
    assert list(reading) == []
    assert (reading.found, reading.skipped) == (False, 0)


def test_bad_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    good = json.dumps(entry(1).to_json())
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({**entry(2).to_json(), "status": "lost"}),
        json.dumps({**entry(2).to_json(), "content_key": "short"}),
        json.dumps({**entry(2).to_json(), "name": "a/b"}),
        json.dumps({**entry(2).to_json(), "credits": -1}),
        json.dumps({**entry(2).to_json(), "credits": "2"}),
        json.dumps({**entry(2).to_json(), "duration": True}),
        json.dumps({**entry(2).to_json(), "audio_ids": "one"}),
        json.dumps({**entry(2).to_json(), "audio_ids": [3]}),
        json.dumps({**entry(2).to_json(), "uri": 5}),
        json.dumps({**entry(2).to_json(), "reason": "x" * 5000}),
        "[" * 100_000,
        json.dumps({**entry(2).to_json(), "reason": "x" * (MAX_LINE_BYTES + 1)}),
        "",
    ]
    path = tmp_path / MANIFEST_NAME
    path.write_text("\n".join([good, *bad, good, '{"name": "tail"']), encoding="utf-8")
    reading = read_manifest(manifest_path(tmp_path.as_uri()))
    assert list(reading) == [entry(1), entry(1)]
    assert reading.skipped == len(bad) + 1  # the last line, cut short, too


def test_an_overlong_line_at_the_end_or_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_manifest, "_READ_BLOCK", 4093)  # lines cross block boundaries
    good = json.dumps(entry(1).to_json())
    path = tmp_path / MANIFEST_NAME
    path.write_text("\n".join([good, "y" * (MAX_LINE_BYTES + 10), good, "z" * (MAX_LINE_BYTES + 3)]))
    reading = read_manifest(manifest_path(tmp_path.as_uri()))
    assert list(reading) == [entry(1), entry(1)]
    assert reading.skipped == 2


def test_memory_stays_bounded_while_writing_and_reading(tmp_path: Path) -> None:
    target = manifest_path(tmp_path.as_uri())
    count = 10_000
    write_manifest(target, entries(2))  # modules imported on first use are not what is measured
    list(read_manifest(target))
    tracemalloc.start()
    try:
        write_manifest(target, entries(count))
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert sum(1 for _ in read_manifest(target)) == count
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (tmp_path / MANIFEST_NAME).stat().st_size
    assert size > 1_500_000  # the manifest itself is MBs...
    assert written_peak < 500_000 and read_peak < 1_000_000  # ...never in memory whole


def test_an_entry_line_over_the_cap_is_refused(tmp_path: Path) -> None:
    huge = entry(1, audio_ids=tuple(f"user:1-pixverse:a@b.c-speech:{'9' * 600}{n}" for n in range(1000)))
    with pytest.raises(PixVerseInvalidInputError, match=r"the manifest line of item 'item-1' is .* bytes; at most"):
        write_manifest(manifest_path(tmp_path.as_uri()), [huge])
    assert list(tmp_path.iterdir()) == []


def test_a_reason_is_cut(tmp_path: Path) -> None:
    long = entry(1, "failed", reason="r" * 10_000)
    assert len(long.to_json()["reason"]) == batch_manifest.MAX_REASON_CHARS


@pytest.mark.parametrize("name", ["", "a/b", ".hidden", "x" * 201])
def test_a_bad_manifest_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(PixVerseInvalidInputError, match=f"manifest_name={name!r}"):
        manifest_path(tmp_path.as_uri(), name)


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"manifest entry 'a': status 'ok' is not one of"):
        ManifestEntry(name="a", content_key=KEY, status="ok")


def test_the_result_stays_small_whatever_the_corpus(tmp_path: Path) -> None:
    result = BatchResult(credits_estimated=123_456.5)
    statuses = ["done", "reused", "failed", "pending"]
    corpus = (
        ManifestEntry(
            name=f"a-long-article-name-{number:05d}-" + "x" * 150,
            content_key=KEY,
            status=statuses[number % 4],
            credits=0.5,
        )
        for number in range(10_000)
    )
    write_manifest(manifest_path(tmp_path.as_uri()), corpus, result=result)
    document = json.dumps(result.to_json())
    assert len(document) < 6_000
    assert result.counts == {"done": 2500, "reused": 2500, "failed": 2500, "pending": 2500}
    assert result.credits_charged == 5000
    assert len(result.failed) + result.failed_more == 2500
    assert len(result.failed) <= MAX_FAILED_NAMES


def test_failed_names_are_capped_at_100() -> None:
    result = BatchResult()
    for number in range(250):
        result.add(ManifestEntry(name=f"f{number}", content_key=KEY, status="failed"))
    assert result.failed == [f"f{number}" for number in range(MAX_FAILED_NAMES)]
    assert result.failed_more == 150
    assert result.credits_charged == 0
