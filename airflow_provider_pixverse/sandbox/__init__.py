"""A loopback stand-in for the useapi.net PixVerse speech API, for tests and offline runs.

Layers, lowest first; a module imports only from its own layer or lower ones:

1. data: voices_and_models, tones, responses, records, faults
2. rules: mp3, credits, validation, forms, clips, injection
3. state: the clips and accounts
4. protocols: what the handlers and the server need of the sandbox
5. handlers: api, control (control uses api's Request)
6. server: HTTP plumbing, routing to the handlers
7. service: PixVerseSandbox, which starts the server
8. entry points: this package, __main__, pytest_plugin
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

__all__ = ["PixVerseSandbox"]


def __getattr__(name: str) -> Any:
    """Import the sandbox only when it is used: importing the package stays cheap."""
    if name == "PixVerseSandbox":
        from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

        return PixVerseSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
