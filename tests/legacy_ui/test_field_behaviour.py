"""Airflow 2.11 takes the PixVerse connection form's behaviour from the hook, without a warning.

2.11-3.1 validate ``PixVerseHook.get_ui_field_behaviour()`` against a schema whose keys are
``hidden_fields``, ``relabeling`` and ``placeholders``; a key it does not know (``hidden-fields``) drops
the whole behaviour with nothing but a warning in the log. Providers load in a fresh interpreter here,
so nothing an earlier test loaded hides the warning.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.legacy_ui

LOAD_PROVIDERS = r"""
import json, logging, warnings

records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append({"logger": record.name, "level": record.levelname, "message": record.getMessage()})

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from airflow.providers_manager import ProvidersManager

    keep = Keep(level=logging.WARNING)
    logging.getLogger().addHandler(keep)
    logging.getLogger("airflow.providers_manager").addHandler(keep)
    manager = ProvidersManager()
    behaviours = manager.field_behaviours
    widgets = manager.connection_form_widgets
    hooks = manager.hooks

records = list({json.dumps(r, sort_keys=True): r for r in records}.values())
print(json.dumps({
    "behaviour": behaviours.get("pixverse"),
    "widgets": {name: str(w.field.args[0]) for name, w in widgets.items() if name.startswith("extra__pixverse__")},
    "hook": getattr(hooks.get("pixverse"), "hook_class_name", None),
    "records": records,
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
}))
"""


@pytest.fixture(scope="module")
def loaded() -> dict:
    """What a fresh interpreter's ProvidersManager made of the provider, and what it logged on the way."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_PROVIDERS], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_field_behaviour_is_ours(loaded: dict) -> None:
    behaviour = loaded["behaviour"]
    assert behaviour is not None, f"no field behaviour for 'pixverse'; the log said: {loaded['records']}"
    assert set(behaviour) == {"hidden_fields", "relabeling", "placeholders"}, behaviour
    assert {"login", "schema", "port", "extra"} <= set(behaviour["hidden_fields"]), behaviour
    assert {"host", "password"}.isdisjoint(behaviour["hidden_fields"]), behaviour
    assert behaviour["relabeling"] == {"password": "API token", "host": "API base URL"}, behaviour
    assert behaviour["placeholders"]["host"] == "https://api.useapi.net", behaviour
    assert loaded["hook"] == "airflow_provider_pixverse.hooks.pixverse.PixVerseHook", loaded["hook"]


def test_extra_widgets_are_ours(loaded: dict) -> None:
    assert loaded["widgets"] == {
        "extra__pixverse__email": "Account email",
        "extra__pixverse__timeout": "Timeout (seconds)",
        "extra__pixverse__list_page_size": "List page size",
        "extra__pixverse__list_concurrency": "List concurrency",
        "extra__pixverse__accounts": "Corpus accounts (JSON)",
    }, loaded["widgets"]


def test_loading_providers_says_nothing_about_ours(loaded: dict) -> None:
    ours = ("pixverse", "PixVerse")
    records = [r for r in loaded["records"] if any(word in r["message"] for word in ours)]
    assert not records, f"loading providers logged about the PixVerse provider: {records}"
    warned = [w for w in loaded["warnings"] if any(word in w for word in ours)]
    assert not warned, f"loading providers warned about the PixVerse provider: {warned}"
