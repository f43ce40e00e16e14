"""One build of the sdist and the wheel for every packaging test."""

from __future__ import annotations

from pathlib import Path

import pytest
from dist_build import build_dist


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the built sdist and wheel."""
    return build_dist(tmp_path_factory.mktemp("dist"))
