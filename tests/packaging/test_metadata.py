"""The published metadata is an official provider's: user extras only, project URLs, classifiers, pyroma 10/10.

And the pytest plugin asks first: a pytest run in an environment with the wheel installed gets none
of the provider's fixtures unless it enables the plugin.
"""

from __future__ import annotations

import re
import sys
import tarfile
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from dist_build import REPO, run

PLUGIN = "airflow_provider_pixverse.sandbox.pytest_plugin"
DEV_GROUPS = ("dev", "test", "distributed", "docs")
LINK = re.compile(r"\]\((?!https?://|#|mailto:)(?P<target>[^)#\s]+)")


def wheel_metadata(dist: Path) -> Message:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_no_development_extra_is_published(dist: Path) -> None:
    metadata = wheel_metadata(dist)
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert extras == {"s3", "openlineage"}, extras
    requires = "\n".join(metadata.get_all("Requires-Dist") or [])
    for tool in ("pytest", "ruff", "mypy", "sphinx", "celery", "moto", "playwright"):
        assert tool not in requires, f"{tool} is in the published requirements:\n{requires}"
    # Where the development tools went: PEP 735 groups, which the Makefile installs.
    assert set(DEV_GROUPS) <= set(pyproject()["dependency-groups"])


def test_project_urls_classifiers_keywords_and_author(dist: Path) -> None:
    metadata = wheel_metadata(dist)
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Documentation", "Source", "Changelog", "Issues"} <= set(urls), urls
    assert all(url.startswith("https://") for url in urls.values()), urls
    classifiers = set(metadata.get_all("Classifier") or [])
    assert any(c.startswith("Development Status :: ") for c in classifiers), classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    minimum = re.fullmatch(r">=3\.(\d+)", metadata["Requires-Python"])
    assert minimum is not None, metadata["Requires-Python"]
    claimed = {int(m[1]) for c in classifiers if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))}
    assert int(minimum[1]) in claimed and min(claimed) == int(minimum[1]), claimed
    assert f"Programming Language :: Python :: 3.{sys.version_info.minor}" in classifiers, "the tested Python"
    assert "airflow" in (metadata["Keywords"] or "").split(",")
    assert "@" in (metadata["Author-email"] or ""), metadata["Author-email"]


def test_pyroma_rates_the_sdist_ten(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    done = run(sys.executable, "-m", "pyroma", "--file", sdist)
    assert "Final rating: 10/10" in done.stdout, done.stdout


def test_the_sdist_holds_what_the_readme_and_docs_link(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"CHANGELOG.md", "docs/conf.py", "docs/deploying.md", "docs/index.md"} <= names
    assert any(n.startswith("example_dags/") and n.endswith(".py") for n in names)
    assert not any(n.startswith("docs/_build") for n in names)
    linked = {m["target"] for m in LINK.finditer((REPO / "README.md").read_text(encoding="utf-8"))}
    assert linked, "the README links no file of the repository"
    assert linked <= names, sorted(linked - names)


@pytest.fixture(scope="module")
def plain_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with pytest and the wheel (not editable, no Airflow: the plugin needs none)."""
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("plain") / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    run(uv, "pip", "install", "--quiet", "--python", python, "pytest")
    run(uv, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel)
    return python


def fixtures_of(python: Path, folder: Path, *args: str) -> str:
    (folder / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    done = run(python, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", *args, cwd=folder)
    return done.stdout


def test_the_wheel_has_no_pytest_entry_point(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(next(n for n in archive.namelist() if n.endswith("entry_points.txt"))).decode()
    assert "[pytest11]" not in entry_points, entry_points


def test_a_pytest_run_that_did_not_ask_gets_nothing(plain_venv: Path, tmp_path: Path) -> None:
    shown = fixtures_of(plain_venv, tmp_path)
    assert "pixverse" not in shown, shown
    plugins = run(plain_venv, "-m", "pytest", "--trace-config", "--co", "-p", "no:cacheprovider", cwd=tmp_path)
    assert "airflow_provider_pixverse" not in plugins.stdout, plugins.stdout


def test_asking_with_dash_p_gives_the_fixtures(plain_venv: Path, tmp_path: Path) -> None:
    shown = fixtures_of(plain_venv, tmp_path, "-p", PLUGIN)
    assert "pixverse_sandbox" in shown and "pixverse_airflow_home" in shown, shown


def test_asking_in_a_conftest_gives_the_fixtures(plain_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(f"pytest_plugins = [{PLUGIN!r}]\n")
    shown = fixtures_of(plain_venv, tmp_path)
    assert "pixverse_sandbox" in shown and "pixverse_airflow_home" in shown, shown
