"""Fixtures for the sandbox tests: a running sandbox and an authorised client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_pixverse.sandbox import PixVerseSandbox
from airflow_provider_pixverse.sandbox.voices_and_models import MODELS, first_voice

if TYPE_CHECKING:
    from collections.abc import Iterator


class Api:
    """A requests session that talks to a sandbox's API with its token."""

    def __init__(self, sandbox: PixVerseSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {sandbox.token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET a path under /v2/pixverse."""
        return self.session.get(self.sandbox.api_url + path, timeout=10, **kwargs)

    def create(self, **fields: Any) -> requests.Response:
        """POST speech/create as multipart form fields; the voice defaults to the model's first."""
        fields.setdefault("text", "May the Force be with you.")
        model = str(fields.get("model") or "speech-2.8-hd")
        fields.setdefault(
            "voice_id", first_voice(model).voice_id if model in MODELS else "minimax_english_radiant_girl"
        )
        files = {name: (None, str(value)) for name, value in fields.items()}
        return self.session.post(self.sandbox.api_url + "/speech/create", files=files, timeout=10)

    def close(self) -> None:
        """Close the session."""
        self.session.close()


@pytest.fixture
def sandbox() -> Iterator[PixVerseSandbox]:
    """A sandbox whose clips finish in a fraction of a second."""
    with PixVerseSandbox(queued_seconds=0.05, generating_seconds=0.1) as running:
        yield running


@pytest.fixture
def api(sandbox: PixVerseSandbox) -> Iterator[Api]:
    """An authorised client of ``sandbox``."""
    client = Api(sandbox)
    yield client
    client.close()
