"""Scheduled misbehaviour: which of the next requests get a fault, and which fault."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

REQUEST_KINDS = ("status", "html", "garbage", "drop", "delay", "redirect")
MEDIA_KINDS = ("truncate", "wrong_length", "media_html", "media_json")
CLIP_KINDS = ("delete_after_polls",)
KINDS = REQUEST_KINDS + MEDIA_KINDS + CLIP_KINDS
TARGETS = ("api", "media", "any")


@dataclass
class Fault:
    """One fault for the next ``count`` matching requests (-1: for ever)."""

    kind: str
    count: int = 1
    target: str = "api"
    path_contains: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, request_kind: str, raw_path: str) -> bool:
        """Whether the fault applies to a request of this kind and path."""
        if self.target not in (request_kind, "any"):
            return False
        return self.path_contains is None or self.path_contains in raw_path

    def to_json(self) -> dict[str, Any]:
        """The fault as the control surface shows it."""
        return {
            "kind": self.kind,
            "count": self.count,
            "target": self.target,
            "path_contains": self.path_contains,
            **self.params,
        }


def make_fault(
    kind: str, *, count: int = 1, target: str | None = None, path_contains: str | None = None, **params: Any
) -> Fault:
    """A checked :class:`Fault`; media-only kinds target media unless told otherwise."""
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    target = target or ("media" if kind in MEDIA_KINDS else "api")
    if target not in TARGETS:
        raise ValueError(f"unknown fault target {target!r}; known: {', '.join(TARGETS)}")
    if count == 0 or count < -1:
        raise ValueError(f"fault count must be positive or -1, not {count}")
    if kind == "status" and "code" not in params:
        raise ValueError("a status fault needs a code")
    if kind == "truncate" and "after_bytes" not in params:
        params["after_bytes"] = 1024
    return Fault(kind, count, target, path_contains, params)


class FaultBook:
    """The pending faults, taken in the order they were added. Thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Schedule a fault."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """A snapshot of the pending faults."""
        with self._lock:
            return list(self._faults)

    def take(self, request_kind: str, raw_path: str) -> Fault | None:
        """The first fault matching this request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(request_kind, raw_path):
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            self._faults.remove(fault)
                    return fault
        return None
