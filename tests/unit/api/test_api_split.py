"""The split in linear time, with the cut rules it always had; and never inside a character cluster."""

from __future__ import annotations

import random
import re
import unicodedata
from typing import TYPE_CHECKING

import pytest

from airflow_provider_pixverse._api import split
from airflow_provider_pixverse._api.split import split_parts, split_text

if TYPE_CHECKING:
    from collections.abc import Callable


# The split as it was (quadratic on a run of "." with no space after it): the reference for the cut rules.
_OLD_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Sentence ends: . ! ? and the ellipsis (then closing quotes or brackets) before a space; or the
# CJK full stop, exclamation and question marks (then closing quotes), no space needed.
_OLD_SENTENCE_END = re.compile(
    "[.!?\u2026]+[\"'\u201d\u2019\u00bb)\\]]*(?=\\s)|[\u3002\uff01\uff1f]+[\u300d\u300f\u201d\u2019)]*"
)
_OLD_SPACE = re.compile(r"\s")


def old_split_text(text: str, max_characters: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = _old_skip_space(text, 0)
    end_of_text = len(text.rstrip())
    while pos < end_of_text:
        if end_of_text - pos <= max_characters:
            spans.append((pos, end_of_text))
            break
        cut = _old_cut(text, pos, pos + max_characters)
        spans.append((pos, len(text[:cut].rstrip())))
        pos = _old_skip_space(text, cut)
    return spans


def _old_cut(text: str, pos: int, limit: int) -> int:
    half_full = pos + (limit - pos) // 2
    breaks = [m.start() for m in _OLD_PARAGRAPH_BREAK.finditer(text, pos, limit + 1) if m.start() >= half_full]
    if breaks:
        return breaks[-1]
    ends = [m.end() for m in _OLD_SENTENCE_END.finditer(text, pos, limit + 1) if half_full <= m.end() <= limit]
    if ends:
        return ends[-1]
    spaces = [m.start() for m in _OLD_SPACE.finditer(text, pos + 1, limit + 1)]
    if spaces:
        return spaces[-1]
    return limit


def _old_skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


PIECES = [*"ab.!?\u2026\"')]\t\n \u3002\uff01\u300d", "  ", "\n\n", ". ", "...", "\u3002\u3002", "\n \n", "word"]


def test_the_cuts_are_those_of_the_old_split() -> None:
    rng = random.Random(2024)
    for _ in range(5_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 60)))
        limit = rng.randint(1, 30)
        assert split_text(text, limit) == old_split_text(text, limit), (text, limit)


@pytest.mark.parametrize(
    "text",
    [
        "." * 1_000_000,  # the run of full stops with no space after them (was minutes of CPU)
        ("x" * 9_990 + "." * 10 + "'") * 100,
        "a " + ("." * 9_999 + " ") * 100,  # tiny parts then full ones
        ("word. " * 200_000)[:1_000_000],
        "a\n \n" * 250_000,  # a paragraph break every 4 characters
        "\u3002" * 1_000_000,
    ],
)
def test_a_pathological_megabyte_is_looked_at_a_bounded_number_of_times(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked_at: list[int] = []
    cut: Callable[..., int] = split._cut

    def counting_cut(handed: str, *args: int) -> int:
        looked_at.append(len(handed))  # the characters a cut is handed to look at
        return cut(handed, *args)

    monkeypatch.setattr(split, "_cut", counting_cut)
    spans = split_text(text, 10_000)
    assert sum(looked_at) <= 2 * len(text) + 10_001  # every character in at most two windows
    assert all(0 < end - start <= 10_000 for start, end in spans)
    assert re.sub(r"\s", "", "".join(text[start:end] for start, end in spans)) == re.sub(r"\s", "", text)


def test_the_pathological_cuts_are_where_the_rules_put_them() -> None:
    assert split_text("." * 25_000, 10_000) == [(0, 10_000), (10_000, 20_000), (20_000, 25_000)]
    text = "x" * 6_000 + "..." + " " + "y" * 6_000
    assert split_text(text, 10_000) == [(0, 6_003), (6_004, 12_004)]  # the sentence end, after the whole run
    assert split_text(text, 10_000) == old_split_text(text, 10_000)


@pytest.mark.parametrize(
    ("unit", "limit"),
    [
        ("e\u0301", 5),  # a letter and its combining acute accent
        ("a\u0308\u0323", 4),  # two marks
        ("\U0001f44d\U0001f3fd", 3),  # an emoji and its skin tone
        ("\u2764\ufe0f", 5),  # a variation selector
        ("\U0001f469\u200d\U0001f469\u200d\U0001f467", 7),  # a ZWJ family
    ],
)
def test_a_forced_cut_never_splits_a_character_cluster(unit: str, limit: int) -> None:
    text = unit * 12
    parts = split_parts(text, limit)
    assert "".join(parts) == text
    assert all(part.startswith(unit) and part == unit * (len(part) // len(unit)) for part in parts), parts
    assert not any(unicodedata.combining(part[0]) or part[0] in "\u200d\ufe0f" for part in parts)


def test_a_window_that_is_one_cluster_is_still_cut() -> None:
    text = "e" + "\u0301" * 30
    parts = split_parts(text, 10)
    assert "".join(parts) == text and [len(part) for part in parts] == [10, 10, 10, 1]
