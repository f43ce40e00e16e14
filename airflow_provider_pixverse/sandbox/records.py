"""What the sandbox received: the request log and per-kind counts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class Headers(dict[str, str]):
    """Header names stored lower-case; look-ups ignore case."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for key, value in dict(items).items():
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a header, whatever the case of ``key``."""
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """One request as received: ``raw_path`` is the request target, undecoded."""

    method: str
    raw_path: str
    headers: Headers
    body: bytes
    kind: str
    host_header: str | None
    status: int | None = None
    at: float = field(default_factory=time.time)
    endpoint: str = "other"

    def to_json(self) -> dict[str, Any]:
        """The request as GET /_sandbox/requests lists it."""
        return {
            "method": self.method,
            "raw_path": self.raw_path,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", "replace"),
            "kind": self.kind,
            "endpoint": self.endpoint,
            "host_header": self.host_header,
            "status": self.status,
            "outcome": create_outcome(self.status) if self.endpoint == "create" else None,
            "at": self.at,
        }


CREATE_OUTCOMES = ("accepted", "busy", "refused")


def create_outcome(status: int | None) -> str:
    """What a create's answer means: ``accepted`` (200: a job was made), ``busy`` (429: none), else ``refused``."""
    if status == 200:
        return "accepted"
    return "busy" if status == 429 else "refused"


class RequestLog:
    """A thread-safe record of requests and of media bytes sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._counts: Counter[str] = Counter()
        self._endpoints: Counter[str] = Counter()
        self._creates: Counter[str] = Counter()
        self._media_bytes = 0

    def add(self, request: RecordedRequest) -> None:
        """Record a request."""
        with self._lock:
            self._requests.append(request)
            self._counts[request.kind] += 1
            self._endpoints[request.endpoint] += 1

    def answered(self, request: RecordedRequest, status: int | None) -> None:
        """Record the status a request was answered with (``None``: dropped); creates are counted by outcome."""
        request.status = status
        if request.endpoint == "create":
            with self._lock:
                self._creates[create_outcome(status)] += 1

    def create_outcomes(self) -> dict[str, int]:
        """Creates by outcome since the start: ``accepted`` (a job made), ``busy`` (429), ``refused`` (other)."""
        with self._lock:
            return {outcome: self._creates.get(outcome, 0) for outcome in CREATE_OUTCOMES}

    def add_media_bytes(self, count: int) -> None:
        """Count bytes of media sent."""
        with self._lock:
            self._media_bytes += count

    def snapshot(self) -> list[RecordedRequest]:
        """The requests so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the recorded requests (the counts stay)."""
        with self._lock:
            self._requests.clear()

    def stats(self) -> dict[str, int]:
        """Requests counted by kind since the start, and media bytes sent."""
        with self._lock:
            counts = {kind: self._counts.get(kind, 0) for kind in ("api", "media", "control")}
            return counts | {"total": sum(self._counts.values()), "media_bytes": self._media_bytes}

    def endpoint_counts(self, endpoints: tuple[str, ...]) -> dict[str, int]:
        """Requests counted by endpoint since the start (every one of ``endpoints``, zeros too)."""
        with self._lock:
            return {name: self._endpoints.get(name, 0) for name in endpoints}

    def reset_endpoint_counts(self) -> None:
        """Start the endpoint counts from zero."""
        with self._lock:
            self._endpoints.clear()
