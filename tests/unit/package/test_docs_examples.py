"""The docs show tested code: every example-DAG excerpt they include names a file and markers that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"
INCLUDE = re.compile(r"```\{literalinclude\}\s+(?P<path>\S+)\n(?P<options>(?::[\w-]+:.*\n)*)")
OPTION = re.compile(r':(?P<name>start-after|end-before):\s*"?(?P<value>[^"\n]+)"?')
MARKER = re.compile(r"#\s*\[(?P<kind>START|END) (?P<name>[\w-]+)\]")


def includes() -> list[tuple[str, Path, dict[str, str]]]:
    """(page, included file, its start-after / end-before options) for every literalinclude of the docs."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts:
            continue
        for match in INCLUDE.finditer(page.read_text(encoding="utf-8")):
            path = match["path"]
            target = (DOCS / path.lstrip("/")) if path.startswith("/") else page.parent / path
            options = {m["name"]: m["value"].strip() for m in OPTION.finditer(match["options"])}
            found.append((str(page.relative_to(DOCS)), target.resolve(), options))
    return found


INCLUDES = includes()


def test_the_docs_include_example_dags() -> None:
    pages = {page for page, _, _ in INCLUDES}
    for page in ("operators/create.md", "operators/download.md", "operators/text_to_speech.md"):
        assert page in pages, f"{page} shows no example DAG excerpt"
    assert {"sensors/speech.md", "triggers/speech.md", "triggers/new_speech.md"} <= pages


@pytest.mark.parametrize(("page", "target", "options"), INCLUDES, ids=[f"{p}->{t.name}" for p, t, _ in INCLUDES])
def test_each_excerpt_is_between_markers_that_exist(page: str, target: Path, options: dict[str, str]) -> None:
    assert target.is_relative_to(REPO / "example_dags"), f"{page} includes {target}, not an example DAG"
    assert target.is_file(), f"{page} includes {target}, which does not exist"
    start, end = options.get("start-after"), options.get("end-before")
    assert start and end, f"{page}: an excerpt needs :start-after: and :end-before: markers"
    begin, finish = MARKER.fullmatch(f"# {start}"), MARKER.fullmatch(f"# {end}")
    assert begin and finish and begin["kind"] == "START" and finish["kind"] == "END", (start, end)
    assert begin["name"] == finish["name"], (start, end)
    lines = [line.strip() for line in target.read_text(encoding="utf-8").splitlines()]
    assert lines.count(f"# {start}") == 1 and lines.count(f"# {end}") == 1, f"{target.name}: {start} / {end}"
    opened, closed = lines.index(f"# {start}"), lines.index(f"# {end}")
    assert opened + 1 < closed, f"{target.name}: nothing between {start} and {end}"


def test_every_marker_in_the_example_dags_is_shown() -> None:
    shown = {options.get("start-after", "") for _, _, options in INCLUDES}
    for dag in sorted((REPO / "example_dags").glob("*.py")):
        for match in MARKER.finditer(dag.read_text(encoding="utf-8")):
            if match["kind"] == "START":
                assert f"[START {match['name']}]" in shown, f"{dag.name}: {match['name']} is on no page"
