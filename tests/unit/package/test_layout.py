"""The package's shape: no import circle, no module over 450 lines, triggers/ holds triggers, public names pinned.

A rename of a public name must be a deliberate change of this file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from import_graph import find_cycle, import_graph

import airflow_provider_pixverse
from airflow_provider_pixverse.get_provider_info import get_provider_info

PACKAGE = "airflow_provider_pixverse"
FOLDER = Path(airflow_provider_pixverse.__file__).parent
MAX_MODULE_LINES = 450

PUBLIC_NAMES = {
    "airflow_provider_pixverse.exceptions": [
        "DestinationExistsError",
        "PixVerseAccountBusyError",
        "PixVerseAuthError",
        "PixVerseBadRequestError",
        "PixVerseBatchItemsFailedError",
        "PixVerseConnectionError",
        "PixVerseError",
        "PixVerseInvalidInputError",
        "PixVerseJobFailedError",
        "PixVerseLostAnswerError",
        "PixVerseModerationError",
        "PixVerseNotFoundError",
        "PixVersePaymentError",
        "PixVerseRateLimitError",
        "PixVerseResponseError",
        "PixVerseServerError",
        "PixVerseStorageError",
    ],
    "airflow_provider_pixverse.models": ["AudioStatus", "SpeechClip"],
    "airflow_provider_pixverse.hooks.pixverse": ["PixVerseHook"],
    "airflow_provider_pixverse.sensors.pixverse": ["PixVerseSpeechSensor"],
    "airflow_provider_pixverse.triggers.pixverse": ["PixVerseSpeechClipsTrigger", "PixVerseSpeechTrigger"],
    "airflow_provider_pixverse.triggers.new_speech": ["PixVerseNewSpeechTrigger"],
    "airflow_provider_pixverse.operators.pixverse": [
        "AUDIO_ID_STATE_KEY",
        "AUDIO_URL_XCOM_KEY",
        "DEFAULT_MAX_BYTES",
        "DEFAULT_POLL_INTERVAL",
        "DEFAULT_WAIT_TIMEOUT",
        "INTENT_STATE_KEY",
        "SPEECH_XCOM_KEY",
        "PixVerseAudioLink",
        "PixVerseCreateSpeechOperator",
        "PixVerseDownloadSpeechOperator",
        "PixVerseTextToSpeechOperator",
    ],
    "airflow_provider_pixverse.operators.text_to_speech": ["PixVerseTextToSpeechOperator"],
    "airflow_provider_pixverse.operators.batch": ["BATCH_STATE_KEY", "PixVerseBatchTextToSpeechOperator"],
}


def test_no_import_circle_in_the_package() -> None:
    graph = import_graph(FOLDER, PACKAGE)
    assert f"{PACKAGE}.operators.base" in graph[f"{PACKAGE}.operators.pixverse"]  # the graph sees the imports
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_module_over_the_size_limit() -> None:
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in FOLDER.rglob("*.py")}
    over = {str(path.relative_to(FOLDER)): lines for path, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"


def test_every_module_of_triggers_is_declared_as_holding_triggers() -> None:
    declared = {module for entry in get_provider_info()["triggers"] for module in entry["python-modules"]}
    found = {
        f"{PACKAGE}.triggers.{path.stem}" for path in (FOLDER / "triggers").glob("*.py") if path.stem != "__init__"
    }
    assert found == declared


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names_are_pinned(module: str) -> None:
    loaded = importlib.import_module(module)
    names = list(getattr(loaded, "__all__", PUBLIC_NAMES[module]))
    assert sorted(names) == sorted(PUBLIC_NAMES[module])
    for name in names:
        assert getattr(loaded, name) is not None


def test_the_exception_tree_in_the_docstring_lists_every_error() -> None:
    exceptions = importlib.import_module(f"{PACKAGE}.exceptions")
    assert all(name in (exceptions.__doc__ or "") for name in exceptions.__all__)
    assert all(issubclass(getattr(exceptions, name), exceptions.PixVerseError) for name in exceptions.__all__)
