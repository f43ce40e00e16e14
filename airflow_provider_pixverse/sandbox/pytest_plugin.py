"""pytest plugin: the ``pixverse_sandbox`` fixture. Importing this module stays cheap."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

CONN_ENV = "AIRFLOW_CONN_PIXVERSE_DEFAULT"


@pytest.fixture
def pixverse_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[PixVerseSandbox]:
    """A running sandbox with a short clock, set as the ``pixverse_default`` connection."""
    from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

    sandbox = PixVerseSandbox(queued_seconds=0.05, generating_seconds=0.1).start()
    monkeypatch.setenv(CONN_ENV, sandbox.connection_json())
    try:
        yield sandbox
    finally:
        sandbox.stop()
