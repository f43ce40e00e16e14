"""The one-task operator's text checks: one size cap for every text, string or stored, and a BOM never sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError
from airflow_provider_pixverse.operators.speech_plan import MAX_TEXT_BYTES, read_text


def test_a_string_text_over_the_cap_is_refused_naming_its_size() -> None:
    over = "é" * (MAX_TEXT_BYTES // 2 + 1)  # 2 bytes each: under the cap in characters, over it in bytes
    with pytest.raises(PixVerseInvalidInputError, match=r"4,194,306 bytes of UTF-8: over the cap of 4,194,304"):
        read_text(over)
    with pytest.raises(PixVerseInvalidInputError, match=r"4,194,305 characters.*over the cap of 4,194,304"):
        read_text("x" * (MAX_TEXT_BYTES + 1))
    assert read_text("é" * (MAX_TEXT_BYTES // 2)) == "é" * (MAX_TEXT_BYTES // 2)  # the cap itself is allowed


def test_a_stored_text_over_the_cap_is_refused_naming_its_size(tmp_path: Path) -> None:
    stored = tmp_path / "long.txt"
    stored.write_bytes(b"x" * (MAX_TEXT_BYTES + 10))
    with pytest.raises(PixVerseInvalidInputError, match=r"is 4,194,314 bytes: over the cap of 4,194,304"):
        read_text(ObjectStoragePath(stored.as_uri()))


def test_texts_that_cannot_be_sent_are_refused_naming_them() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"lone surrogate \(U\+D83D\) at character 3"):
        read_text("abc\ud83d")
    with pytest.raises(PixVerseInvalidInputError, match="non-empty"):
        read_text("\ufeff  \n")
    with pytest.raises(PixVerseInvalidInputError, match=r"string or an ObjectStoragePath, got 42"):
        read_text(42)
    with pytest.raises(PixVerseInvalidInputError) as refused:
        read_text(" " * 100_000)
    assert len(str(refused.value)) < 200  # the value is shown cut short
