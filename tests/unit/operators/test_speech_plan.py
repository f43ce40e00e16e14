"""The one-task operator's input checks: one size cap for every text, a BOM never sent, max_credits."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath
from pixverse_testing import MemoryStateStore, RecordingTaskInstance, api_requests

from airflow_provider_pixverse._api.speech_request import SpeechRequest
from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError
from airflow_provider_pixverse.model_list import forget_model_lists
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator
from airflow_provider_pixverse.operators.speech_plan import MAX_TEXT_BYTES, read_text

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox import PixVerseSandbox

VOICE = "minimax_english_radiant_girl"


@pytest.fixture(autouse=True)
def _fresh_model_list() -> None:
    forget_model_lists()


def tts(text: Any, destination: str, **kwargs: Any) -> PixVerseTextToSpeechOperator:
    return PixVerseTextToSpeechOperator(
        task_id="speak",
        text=text,
        voice_id=VOICE,
        destination=destination,
        deferrable=False,
        poll_interval=0.05,
        **kwargs,
    )


def run(operator: PixVerseTextToSpeechOperator) -> tuple[Any, RecordingTaskInstance]:
    ti = RecordingTaskInstance()
    return operator.execute({"ti": ti, "task_state_store": MemoryStateStore()}), ti


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


# -- a byte order mark -----------------------------------------------------------------------


def test_a_byte_order_mark_is_never_sent_nor_keyed(pixverse_sandbox: PixVerseSandbox, tmp_path: Path) -> None:
    stored = tmp_path / "article.txt"
    stored.write_bytes("\ufeffBonjour à tous.".encode())  # an editor's UTF-8 BOM
    _, ti = run(tts(ObjectStoragePath(stored.as_uri()), f"file://{tmp_path}/out/"))
    (sent,) = [r for r in api_requests(pixverse_sandbox) if r.method == "POST"]
    assert "\ufeff".encode() not in sent.body and "Bonjour à tous.".encode() in sent.body
    assert ti.xcoms["pixverse_speech"]["content_key"] == SpeechRequest.of("Bonjour à tous.", VOICE).key
    pixverse_sandbox.reset_request_counts()
    run(tts("Bonjour à tous.", f"file://{tmp_path}/out/"))  # the same speech: found, not paid again
    run(tts("\ufeff Bonjour à tous.", f"file://{tmp_path}/out/"))
    assert pixverse_sandbox.request_counts()["create"] == 0


def test_the_request_drops_a_byte_order_mark_at_the_start_only() -> None:
    assert SpeechRequest.of("\ufeffHi there", VOICE).text == "Hi there"
    assert SpeechRequest.of("  \ufeff Hi there\r\n", VOICE).key == SpeechRequest.of("Hi there", VOICE).key
    assert SpeechRequest.of("Hi\ufeff there", VOICE).text == "Hi\ufeff there"  # not at the start: kept
    assert SpeechRequest.of("x", VOICE).with_text("\ufeffpart two").text == "part two"


# -- max_credits -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, "5", True, [5]])
def test_max_credits_is_checked_when_the_task_is_made(value: object) -> None:
    with pytest.raises(PixVerseInvalidInputError, match=re.escape(f"max_credits={value!r}")):
        tts("Hello.", "file:///tmp/out/", max_credits=value)


@pytest.mark.parametrize("value", [None, 0, 2.5, 100])
def test_max_credits_takes_finite_numbers_from_zero(value: float | None) -> None:
    assert tts("Hello.", "file:///tmp/out/", max_credits=value).max_credits == value
