"""What the ``apache_airflow_provider`` entry point tells Airflow about this provider."""

from __future__ import annotations

from typing import Any

from airflow_provider_pixverse import __version__

_INTEGRATION = "PixVerse"
_MODULE = "airflow_provider_pixverse"

# Every extra the hook reads (``_api/request.py``, ``settings_from_connection``), as the connection form
# shows it: the 3.2+ ``conn-fields`` below and the 2.11-3.1 widgets of ``PixVerseHook`` are both made from it.
CONNECTION_EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "email": {
        "label": "Account email",
        "schema": {"type": ["string", "null"]},
        "description": "Default PixVerse account for speech/create, when several are configured.",
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"]},
        "description": "Timeout of each API call in seconds, the whole answer included (default 30).",
    },
    "list_page_size": {
        "label": "List page size",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
        "description": "Clips per page when the shared poll lists the account, 1 to 1000 (default 100).",
    },
    "list_concurrency": {
        "label": "List concurrency",
        "schema": {"type": ["integer", "null"], "minimum": 1, "maximum": 16},
        "description": "Pages of one account's listing fetched at once, 1 to 16 (default 4).",
    },
    "accounts": {
        "label": "Corpus accounts (JSON)",
        "schema": {"type": ["string", "null"]},
        "description": (
            'Accounts a corpus is spread over, with their job limits (1 to 8): ["a@x.com", "b@x.com"], '
            '{"a@x.com": 3, "b@x.com": 5} or [{"email": "a@x.com", "max_jobs": 3}]. Default: the account '
            "email at 3 jobs."
        ),
    },
}


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata: connection type, hooks, sensors, operators, triggers, links."""
    return {
        "package-name": "airflow-provider-pixverse",
        "name": "PixVerse",
        "description": "Text to speech with the useapi.net PixVerse speech API.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://useapi.net/docs/api-pixverse-v2",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": [f"{_MODULE}.hooks.pixverse"]}],
        "sensors": [{"integration-name": _INTEGRATION, "python-modules": [f"{_MODULE}.sensors.pixverse"]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [f"{_MODULE}.operators.pixverse", f"{_MODULE}.operators.text_to_speech"],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    f"{_MODULE}.triggers.pixverse",
                    f"{_MODULE}.triggers.new_speech",
                    f"{_MODULE}.triggers.capacity",
                    f"{_MODULE}.triggers.batch",
                ],
            }
        ],
        "extra-links": [f"{_MODULE}.operators.pixverse.PixVerseAudioLink"],
        "connection-types": [
            {
                "connection-type": "pixverse",
                "hook-class-name": f"{_MODULE}.hooks.pixverse.PixVerseHook",
                "hook-name": "PixVerse",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"password": "API token", "host": "API base URL"},
                    "placeholders": {"host": "https://api.useapi.net", "password": "useapi.net API token"},
                },
                "conn-fields": {name: dict(field) for name, field in CONNECTION_EXTRA_FIELDS.items()},
            }
        ],
    }
