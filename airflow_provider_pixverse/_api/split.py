"""Splitting a long text into parts a model takes: at paragraph, then sentence, then word boundaries.

The rule, part by part: when what is left fits in ``max_characters``, it is the last part.
Otherwise the part ends at the last paragraph break (a blank line) within the limit that leaves
the part at least half full; failing that, at the last sentence end that does (``.``, ``!``,
``?`` or ``…`` before a space; the CJK full stop, exclamation and question marks anywhere);
failing that, at the last space within the limit; and only a word longer than the limit is cut
inside it. Whitespace around a cut is dropped, so no part starts or ends with it, and the parts,
in order, hold every other character of the text.
"""

from __future__ import annotations

import re

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Sentence ends: . ! ? and the ellipsis (then closing quotes or brackets) before a space; or the
# CJK full stop, exclamation and question marks (then closing quotes), no space needed.
_SENTENCE_END = re.compile(
    "[.!?\u2026]+[\"'\u201d\u2019\u00bb)\\]]*(?=\\s)|[\u3002\uff01\uff1f]+[\u300d\u300f\u201d\u2019)]*"
)
_SPACE = re.compile(r"\s")


def split_text(text: str, max_characters: int) -> list[tuple[int, int]]:
    """The parts of ``text`` as ``(start, end)`` spans, each at most ``max_characters`` long (see the module)."""
    if max_characters < 1:
        raise PixVerseInvalidInputError(f"max_characters must be at least 1, not {max_characters}")
    spans: list[tuple[int, int]] = []
    pos = _skip_space(text, 0)
    end_of_text = len(text.rstrip())
    while pos < end_of_text:
        if end_of_text - pos <= max_characters:
            spans.append((pos, end_of_text))
            break
        cut = _cut(text, pos, pos + max_characters)
        spans.append((pos, len(text[:cut].rstrip())))
        pos = _skip_space(text, cut)
    return spans


def split_parts(text: str, max_characters: int) -> list[str]:
    """The parts themselves (see :func:`split_text`)."""
    return [text[start:end] for start, end in split_text(text, max_characters)]


def _cut(text: str, pos: int, limit: int) -> int:
    """Where the part starting at ``pos`` ends (exclusive), given it may not reach past ``limit``."""
    half_full = pos + (limit - pos) // 2
    breaks = [m.start() for m in _PARAGRAPH_BREAK.finditer(text, pos, limit + 1) if m.start() >= half_full]
    if breaks:
        return breaks[-1]
    ends = [m.end() for m in _SENTENCE_END.finditer(text, pos, limit + 1) if half_full <= m.end() <= limit]
    if ends:
        return ends[-1]
    spaces = [m.start() for m in _SPACE.finditer(text, pos + 1, limit + 1)]
    if spaces:
        return spaces[-1]
    return limit


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos
