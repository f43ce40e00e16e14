"""Helpers shared by the test modules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from airflow_provider_pixverse.sandbox import PixVerseSandbox


class FakeClock:
    """Records the waits a hook or trigger asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    """Define a ``pixverse`` connection through its environment variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "pixverse", **fields}))


def api_requests(sandbox: PixVerseSandbox) -> list[Any]:
    """The API calls the sandbox received (media and control calls left out)."""
    return [r for r in sandbox.requests if r.kind == "api"]
