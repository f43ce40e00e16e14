"""Building the distributions once for the packaging tests, and running commands the way they do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, fail on a non-zero exit, return what it printed."""
    return subprocess.run([str(part) for part in command], check=True, capture_output=True, text=True, **kwargs)


def build_dist(out: Path) -> Path:
    """The sdist and the wheel of the repository, built into ``out``."""
    run(sys.executable, "-m", "build", "--outdir", out, REPO)
    return out
