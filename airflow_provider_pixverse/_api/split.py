"""Splitting a long text into parts a model takes: at paragraph, then sentence, then word boundaries.

The rule, part by part: when what is left fits in ``max_characters``, it is the last part.
Otherwise the part ends at the last paragraph break (a blank line) within the limit that leaves
the part at least half full; failing that, at the last sentence end that does (``.``, ``!``,
``?`` or ``…`` before a space; the CJK full stop, exclamation and question marks anywhere);
failing that, at the last space within the limit; and only a word longer than the limit is cut
inside it, never between a character and the marks that combine with it (accents, variation
selectors, emoji modifiers, a zero-width joiner and what it joins): such a cut moves back to the
start of the cluster, unless the whole window is one. Whitespace around a cut is dropped, so no
part starts or ends with it, and the parts, in order, hold every other character of the text.

Linear time: each part looks at one window of at most ``max_characters + 1`` characters, with
patterns that cannot backtrack (possessive quantifiers), and the windows of two consecutive
parts together move on by at least ``max_characters / 2``; so a character is looked at a bounded
number of times, whatever the text (a run of ``.`` with no space after it used to cost the
square of its length).
"""

from __future__ import annotations

import re
import unicodedata

from airflow_provider_pixverse._api.errors import PixVerseInvalidInputError

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*+\n\s*+")
# Sentence ends: . ! ? and the ellipsis (then closing quotes or brackets) before a space; or the
# CJK full stop, exclamation and question marks (then closing quotes), no space needed. A match
# starts only where a run of end marks starts (the lookbehind), and never gives back what it took.
_SENTENCE_END = re.compile(
    "(?<![.!?\u2026])[.!?\u2026]++[\"'\u201d\u2019\u00bb)\\]]*+(?=\\s)|[\u3002\uff01\uff1f]++[\u300d\u300f\u201d\u2019)]*+"
)
# The last whitespace of a window: a whitespace character with none after it.
_LAST_SPACE = re.compile(r"\s\S*+\Z")
_SPACES = re.compile(r"\s*+")
_ZWJ = "\u200d"


def split_text(text: str, max_characters: int) -> list[tuple[int, int]]:
    """The parts of ``text`` as ``(start, end)`` spans, each at most ``max_characters`` long (see the module)."""
    if isinstance(max_characters, bool) or not isinstance(max_characters, int) or max_characters < 1:
        raise PixVerseInvalidInputError(f"max_characters must be a whole number from 1, not {max_characters!r}")
    spans: list[tuple[int, int]] = []
    pos = _skip_space(text, 0)
    end_of_text = len(text.rstrip())
    while pos < end_of_text:
        if end_of_text - pos <= max_characters:
            spans.append((pos, end_of_text))
            break
        cut = _cut(text[pos : pos + max_characters + 1], pos)
        spans.append((pos, _strip_end(text, pos, cut)))
        pos = _skip_space(text, cut)
    return spans


def split_parts(text: str, max_characters: int) -> list[str]:
    """The parts themselves (see :func:`split_text`)."""
    return [text[start:end] for start, end in split_text(text, max_characters)]


def _cut(window: str, pos: int) -> int:
    """Where the part starting at ``pos`` ends (exclusive), given ``window``: the text from ``pos`` to the limit.

    The window holds one character past the limit, only looked at as what follows a sentence end:
    a part ends at most at ``pos + len(window) - 1``.
    """
    limit = len(window) - 1
    half_full = limit // 2
    breaks = [m.start() for m in _PARAGRAPH_BREAK.finditer(window) if m.start() >= half_full]
    if breaks:
        return pos + breaks[-1]
    ends = [m.end() for m in _SENTENCE_END.finditer(window) if half_full <= m.end() <= limit]
    if ends:
        return pos + ends[-1]
    space = _LAST_SPACE.search(window, 1)
    if space is not None:
        return pos + space.start()
    return pos + _cluster_start(window, limit)


def _cluster_start(window: str, cut: int) -> int:
    """``cut`` moved back to the start of the character cluster it falls in; ``cut`` itself when it falls in none.

    A cluster here: a character and the marks that follow it (combining marks, variation
    selectors, emoji skin tones), characters joined by a zero-width joiner, a surrogate pair.
    """
    at = cut
    while at > 0 and _joined(window[at - 1], window[at]):
        at -= 1
    return at if at > 0 else cut


def _joined(before: str, after: str) -> bool:
    """Whether a cut between ``before`` and ``after`` would split a character cluster."""
    if before == _ZWJ or after == _ZWJ:
        return True
    if "\udc00" <= after <= "\udfff" and "\ud800" <= before <= "\udbff":
        return True
    if "\ufe00" <= after <= "\ufe0f" or "\U0001f3fb" <= after <= "\U0001f3ff" or "\U000e0020" <= after <= "\U000e007f":
        return True  # variation selectors, emoji skin tones, emoji tag characters
    return unicodedata.combining(after) != 0 or unicodedata.category(after) in ("Mn", "Mc", "Me")


def _strip_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over the whitespace before it, not past ``start``."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _skip_space(text: str, pos: int) -> int:
    match = _SPACES.match(text, pos)
    return match.end() if match is not None else pos
