"""The documented bodies of GET speech/{audio_id}, as copied into tests/fixtures/reference/.

Helpers for the other ``test_reference_*`` modules, and a check that the copies still match the
documentation page where it is at hand (the project's shared notes, beside the repository).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "tests" / "fixtures" / "reference"
PAGE = REPO.parent / "shared" / "reference" / "retrieve-speech.txt"
_SECTIONS = {
    "retrieve-200.json": "200 OK",
    "retrieve-400.json": "400 Bad Request",
    "retrieve-401.json": "401 Unauthorized",
    "retrieve-404.json": "404 Not Found",
}
_PLACEHOLDERS = {"<userid>": r"\d+", "<email>": r"[^\s/?#%]+@[^\s/?#%]+", "<number>": r"\d+"}


def load(name: str) -> Any:
    """A fixture file, decoded."""
    return json.loads((REFERENCE / name).read_text())


def json_type(value: Any) -> str:
    """The TypeScript type the Model section would give ``value``."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def placeholder_pattern(documented: str) -> re.Pattern[str]:
    """A pattern for a documented string whose ``<userid>``, ``<email>``, ``<number>`` stand for values."""
    pattern = re.escape(documented)
    for placeholder, stands_for in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(placeholder), stands_for)
    return re.compile(pattern)


def printed_bodies(page: str) -> dict[str, Any]:
    """The first JSON object printed after each response heading of the documentation page."""
    decoder = json.JSONDecoder()
    bodies = {}
    for name, heading in _SECTIONS.items():
        after = page[page.index(heading) + len(heading) :]
        bodies[name], _ = decoder.raw_decode(after[after.index("{") :])
    return bodies


def test_the_copies_are_the_bodies_the_page_prints() -> None:
    if not PAGE.exists():
        pytest.skip(f"the documentation page is not at hand ({PAGE}); the copies stand alone")
    assert printed_bodies(PAGE.read_text()) == {name: load(name) for name in _SECTIONS}


def test_the_status_table_is_the_pages() -> None:
    if not PAGE.exists():
        pytest.skip(f"the documentation page is not at hand ({PAGE}); the copies stand alone")
    page = PAGE.read_text()
    for row in load("audio-status-values.json"):
        line = f"{row['audio_status']} {row['audio_status_name']} {str(row['audio_status_final']).lower()}"
        assert f"{line} {row['description']}" in page, line
