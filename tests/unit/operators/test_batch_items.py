"""The items of a corpus: the three shapes, the names, the settings, the caps, duplicates; nothing sent."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError
from airflow_provider_pixverse.operators import batch_items
from airflow_provider_pixverse.operators.batch_items import (
    MAX_NAME_LENGTH,
    group_duplicates,
    name_problem,
    read_items,
)
from airflow_provider_pixverse.operators.pixverse import PixVerseTextToSpeechOperator
from airflow_provider_pixverse.operators.speech_plan import MAX_TEXT_BYTES

if TYPE_CHECKING:
    from pathlib import Path

VOICE = "minimax_english_radiant_girl"
DEFAULTS: dict[str, Any] = {"voice_id": VOICE, "model": None, "speed": None}


def test_a_mapping_is_name_to_text() -> None:
    items = read_items({"intro": "Hello there.", "outro": "Goodbye."}, defaults=DEFAULTS)
    assert [(item.name, item.text, item.voice_id, item.model) for item in items] == [
        ("intro", "Hello there.", VOICE, None),
        ("outro", "Goodbye.", VOICE, None),
    ]


def test_an_item_key_is_the_one_task_operators_content_key() -> None:
    """Both operators must recognise each other's objects: the same request, the same key."""
    settings = {"model": "speech-2.8-turbo", "language_code": "en", "speed": 1.25, "emotion": "calm", "pitch": 2}
    (item,) = read_items([{"name": "a", "text": "  Hello\r\nworld  "}], defaults={"voice_id": VOICE, **settings})
    operator = PixVerseTextToSpeechOperator(
        task_id="one", text="x", voice_id=VOICE, destination="file:///tmp/x/", **settings
    )
    assert item.request == operator.speech_request("  Hello\r\nworld  ")
    assert item.key == operator.speech_request("Hello\nworld").key
    assert item.text == "Hello\nworld"


def test_an_item_sets_its_own_voice_model_and_settings_over_the_defaults() -> None:
    defaults = {"voice_id": VOICE, "model": "speech-2.8-hd", "speed": 1.5, "emotion": "happy", "max_jobs": 2}
    eleven = {"name": "b", "text": "Hi", "model": "eleven-v3", "voice_id": "eleven_v3_voice", "emotion": None}
    items = read_items([{"name": "a", "text": "Hi", "speed": 0.75}, {**eleven, "speed": 1.0}], defaults=defaults)
    first, second = items
    assert first.settings == {"speed": 0.75, "emotion": "happy", "max_jobs": 2}
    assert first.create_arguments() == {"voice_id": VOICE, "model": "speech-2.8-hd", **first.settings}
    # None drops the defaults' setting for this item: eleven-v3 refuses emotion.
    assert (second.model, second.voice_id, second.settings) == (
        "eleven-v3",
        "eleven_v3_voice",
        {"speed": 1.0, "max_jobs": 2},
    )
    assert first.request.settings == {"speed": 0.75, "emotion": "happy"}  # max_jobs is not part of the audio


def test_settings_are_checked_against_each_items_model() -> None:
    defaults = {"voice_id": VOICE, "emotion": "happy"}
    with pytest.raises(PixVerseInvalidInputError) as refused:
        read_items([{"name": "a", "text": "Hi"}, {"name": "b", "text": "Hi", "model": "eleven-v3"}], defaults=defaults)
    message = str(refused.value)
    assert "item 1 ('b')" in message and "emotion" in message and "eleven-v3" in message
    assert "item 0" not in message


def test_every_bad_item_is_reported_at_once() -> None:
    texts = [
        {"name": "ok", "text": "fine"},
        {"name": "a/b", "text": "x"},
        {"name": "OK", "text": "y"},
        {"name": "c", "text": ""},
        {"name": "d", "text": "x", "voice": VOICE},
        {"name": "e", "text": "x", "speed": 9},
        "not a dict",
        {"name": "f", "text": 3},
    ]
    with pytest.raises(PixVerseInvalidInputError) as refused:
        read_items(texts, defaults=DEFAULTS)
    message = str(refused.value)
    assert message.startswith("7 bad item(s) in texts, nothing sent")
    assert "item 1 ('a/b'): the name holds '/'" in message
    assert "item 2 ('OK'): the same name as item 0 ('ok')" in message
    assert "item 3 ('c'): text must be a non-empty string" in message
    assert "item 4 ('d'): unknown key(s) ['voice']" in message
    assert "item 5 ('e'): speed=9" in message
    assert "item 6: must be a {'name': ..., 'text': ...} dict, not str" in message
    assert "item 7 ('f'): its text must be a string, not int" in message


def test_the_report_is_bounded() -> None:
    texts = {f"bad/{number}": "x" for number in range(1000)}
    with pytest.raises(PixVerseInvalidInputError) as refused:
        read_items(texts, defaults=DEFAULTS)
    message = str(refused.value)
    assert message.count("the name holds '/'") == batch_items.MAX_REPORTED
    assert message.endswith(f"and {1000 - batch_items.MAX_REPORTED} more bad item(s)")
    assert len(message) < 4000


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ("a..b", "'..'"),
        ("..", "'..'"),
        (".hidden", "starts with '.'"),
        ("tab\there", "'\\t'"),
        ("nul\x00", "'\\x00'"),
        ("c1\x85", "'\\x85'"),
        ("a#b", "'#'"),
        ("a?b", "'?'"),
        ("100%", "'%'"),
        ("x" * (MAX_NAME_LENGTH + 1), "201 characters"),
        ("é" * 101, "202 bytes"),
        ("\ud800", "lone surrogate"),
        (3, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_unsafe_names_are_refused(name: object, why: str) -> None:
    problem = name_problem(name)
    assert problem is not None and why in problem


@pytest.mark.parametrize("name", ["a", "lesson 01", "Ünïcødé-名前", "a.b", "x" * MAX_NAME_LENGTH, "trailing."])
def test_ordinary_names_pass(name: str) -> None:
    assert name_problem(name) is None


def test_names_are_unique_ignoring_case() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"item 'Straße'.*the same name as item 'STRASSE'"):
        read_items({"STRASSE": "a", "Straße": "b"}, defaults=DEFAULTS)


def test_no_voice_anywhere_names_the_item() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"item 'a': no voice_id"):
        read_items({"a": "Hi"}, defaults={})


def test_the_corpus_cap_is_checked_before_any_item(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_items, "MAX_ITEMS", 3)
    # The items are all bad; the cap is what is reported.
    with pytest.raises(PixVerseInvalidInputError, match=r"texts holds 4 items; a corpus holds at most 3"):
        read_items([{"name": "/"}] * 4, defaults={})


def test_the_corpus_text_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_items, "MAX_CORPUS_BYTES", 10)
    read_items({"a": "12345", "b": "67890"}, defaults=DEFAULTS)
    with pytest.raises(PixVerseInvalidInputError, match=r"more than 10 bytes of text in all.*item 'c'"):
        read_items({"a": "12345", "b": "67890", "c": "x"}, defaults=DEFAULTS)


def test_a_text_over_the_text_cap_names_the_item() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"item 'big': the text is .* over the cap"):
        read_items({"small": "x", "big": "x" * (MAX_TEXT_BYTES + 1)}, defaults=DEFAULTS)


def test_unknown_defaults_are_refused() -> None:
    with pytest.raises(PixVerseInvalidInputError, match=r"unknown default setting\(s\) \['email'\]"):
        read_items({"a": "x"}, defaults={"voice_id": VOICE, "email": "a@b.c"})


@pytest.mark.parametrize("texts", [b"bytes", 3, None, {"a", "b"}])
def test_other_shapes_are_refused(texts: object) -> None:
    with pytest.raises(PixVerseInvalidInputError, match="texts must be a mapping"):
        read_items(texts, defaults=DEFAULTS)


def test_duplicates_are_grouped_by_content_key() -> None:
    items = read_items(
        [
            {"name": "a", "text": "Same text."},
            {"name": "b", "text": "Other."},
            {"name": "c", "text": "Same text.  \n"},  # normalised: the same request
            {"name": "d", "text": "Same text.", "speed": 1.5},  # another setting: another request
        ],
        defaults=DEFAULTS,
    )
    groups = group_duplicates(items)
    assert [[item.name for item in group] for group in groups.values()] == [["a", "c"], ["b"], ["d"]]
    assert list(groups) == [items[0].key, items[1].key, items[3].key]


# -- a folder of texts --------------------------------------------------------------------------------------


def write(folder: Path, name: str, data: bytes | str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def test_a_folder_of_texts_sorted_by_name(tmp_path: Path) -> None:
    write(tmp_path, "b.txt", "Second.")
    write(tmp_path, "a.txt", "\ufeffFirst.\r\n")
    write(tmp_path, "notes.md", "not an item")
    write(tmp_path, ".hidden.txt", "skipped")
    write(tmp_path, "sub/c.txt", "not a direct child")
    write(tmp_path, "a.mp3", b"ID3")
    for texts in (tmp_path.as_uri(), ObjectStoragePath(tmp_path.as_uri()), f"{tmp_path.as_uri()}/"):
        items = read_items(texts, defaults=DEFAULTS)
        assert [(item.name, item.text, item.index) for item in items] == [("a", "First.", 0), ("b", "Second.", 1)]


def test_a_folder_is_read_with_the_text_reader(tmp_path: Path) -> None:
    write(tmp_path, "ok.txt", "fine")
    write(tmp_path, "latin.txt", "caf\xe9".encode("latin-1"))
    write(tmp_path, "empty.txt", "  \n")
    write(tmp_path, "big.txt", b"x" * (MAX_TEXT_BYTES + 1))
    with pytest.raises(PixVerseInvalidInputError) as refused:
        read_items(tmp_path.as_uri(), defaults=DEFAULTS)
    message = str(refused.value)
    assert message.startswith("3 bad item(s)")
    assert re.search(r"item 'latin': the text at .*latin\.txt is not UTF-8", message)
    assert "item 'empty': text must be a non-empty string" in message
    assert f"item 'big': big.txt is {MAX_TEXT_BYTES + 1:,} bytes" in message


def test_names_in_a_folder_are_checked_before_texts_are_read(tmp_path: Path) -> None:
    write(tmp_path, "Intro.txt", "one")
    write(tmp_path, "intro.txt", "two")
    write(tmp_path, "a%20b.txt", b"\xff not read")
    with pytest.raises(PixVerseInvalidInputError) as refused:
        read_items(tmp_path.as_uri(), defaults=DEFAULTS)
    message = str(refused.value)
    assert "item 'intro': the same name as item 'Intro'" in message
    assert "item 'a%20b': the name holds '%'" in message
    assert "not UTF-8" not in message


def test_a_folder_over_the_cap_is_refused_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_items, "MAX_ITEMS", 2)
    for name in "abc":
        write(tmp_path, f"{name}.txt", b"\xff")  # unreadable: a read would report them instead
    with pytest.raises(PixVerseInvalidInputError, match="texts holds 3 items"):
        read_items(tmp_path.as_uri(), defaults=DEFAULTS)


def test_a_folder_listing_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_items, "MAX_FOLDER_ENTRIES", 3)
    for name in "abcd":
        write(tmp_path, f"{name}.md", "x")
    with pytest.raises(PixVerseInvalidInputError, match=r"holds 4 entries; at most 3"):
        read_items(tmp_path.as_uri(), defaults=DEFAULTS)


def test_a_file_or_a_missing_folder_is_not_a_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", "x")
    for texts in ((tmp_path / "a.txt").as_uri(), (tmp_path / "missing").as_uri()):
        with pytest.raises(PixVerseInvalidInputError, match="is not a folder"):
            read_items(texts, defaults=DEFAULTS)
    with pytest.raises(PixVerseInvalidInputError, match="empty string"):
        read_items(" ", defaults=DEFAULTS)
