"""A loopback stand-in for the useapi.net PixVerse speech API, for tests and offline runs."""

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
