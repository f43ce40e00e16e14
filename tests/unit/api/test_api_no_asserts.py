"""Runtime checks of ``_api`` raise the package's error classes: an ``assert`` vanishes under ``python -O``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_pixverse._api as api
from airflow_provider_pixverse._api import ids
from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError

API = Path(api.__file__).parent


def test_no_assert_statement_in_api() -> None:
    found = [
        f"{path.name}:{node.lineno}"
        for path in sorted(API.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert not found, f"assert statements in _api (gone under python -O): {found}"


def test_account_of_raises_when_the_id_names_no_account(monkeypatch: pytest.MonkeyPatch) -> None:
    # Were validate_audio_id ever looser than the id pattern, account_of must still refuse by raising.
    monkeypatch.setattr(ids, "validate_audio_id", lambda audio_id: audio_id)
    with pytest.raises(PixVerseInvalidInputError, match="'models'"):
        ids.account_of("models")


def test_account_of_refuses_under_python_o() -> None:
    code = (
        "from airflow_provider_pixverse._api import ids\n"
        "from airflow_provider_pixverse.exceptions import PixVerseInvalidInputError\n"
        "ids.validate_audio_id = lambda audio_id: audio_id\n"
        "try:\n"
        "    ids.account_of('models')\n"
        "except PixVerseInvalidInputError:\n"
        "    print('refused')\n"
        "else:\n"
        "    print('accepted')\n"
    )
    done = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "refused", done.stdout + done.stderr
