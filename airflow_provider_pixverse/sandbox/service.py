"""PixVerseSandbox: the documented API on loopback, with faults and a clock to steer."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

from airflow_provider_pixverse.sandbox.api import ENDPOINTS
from airflow_provider_pixverse.sandbox.faults import FaultBook, make_fault
from airflow_provider_pixverse.sandbox.jobs import DEFAULT_MAX_JOBS
from airflow_provider_pixverse.sandbox.records import RecordedRequest, RequestLog
from airflow_provider_pixverse.sandbox.server import SandboxServer
from airflow_provider_pixverse.sandbox.state import SandboxState
from airflow_provider_pixverse.sandbox.validation import DEFAULT_EMAIL, validate_create
from airflow_provider_pixverse.sandbox.voices_and_models import DEFAULT_MODEL, MODELS, first_voice


class PixVerseSandbox:
    """A loopback stand-in for the useapi.net PixVerse speech API.

    :param host: address to bind.
    :param port: port to bind; 0 picks a free one.
    :param token: the API token clients must send; random when None.
    :param queued_seconds: how long a new clip stays QUEUED.
    :param generating_seconds: how long it then stays GENERATING before it ends.
    :param media_host: host name put in media URLs instead of ``host`` (same server).
    :param max_jobs: how many jobs each account runs at once (the API's ``maxJobs``, 1 to 8; default
        :data:`~airflow_provider_pixverse.sandbox.jobs.DEFAULT_MAX_JOBS`); a create beyond it is refused
        with 429 and ``Retry-After``. ``None``: no limit, for tests about something else.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        queued_seconds: float = 0.2,
        generating_seconds: float = 0.5,
        *,
        media_host: str | None = None,
        max_jobs: int | None = DEFAULT_MAX_JOBS,
    ) -> None:
        self.host = host
        self.token = token or secrets.token_urlsafe(24)
        self.state = SandboxState(queued_seconds, generating_seconds, max_jobs=max_jobs)
        self.faults = FaultBook()
        self.log = RequestLog()
        self._requested_port = port
        self._media_host = media_host
        self._server: SandboxServer | None = None
        self._bound_port: int | None = None
        self._thread: threading.Thread | None = None

    # life cycle

    def start(self) -> PixVerseSandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._server = SandboxServer((self.host, self._requested_port), self)
        self._bound_port = int(self._server.server_address[1])
        self.state.media_base = f"http://{self._media_host or self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="pixverse-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PixVerseSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # addresses

    @property
    def port(self) -> int:
        """The bound port (kept after stop, for requests still in flight then)."""
        if self._bound_port is None:
            raise RuntimeError("the sandbox is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """Base URL of the server: the connection host."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Base URL of the API."""
        return self.url + "/v2/pixverse"

    def connection_json(self) -> str:
        """The AIRFLOW_CONN_PIXVERSE_DEFAULT value for this sandbox."""
        return json.dumps({"conn_type": "pixverse", "host": self.url, "password": self.token})

    # requests

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        return self.log.snapshot()

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self.log.clear()

    def stats(self) -> dict[str, int]:
        """Request counts by kind (api, media, control) and media bytes sent."""
        return self.log.stats()

    def request_counts(self) -> dict[str, int]:
        """Requests received by endpoint: create, get (by id), list, voices, models, media, control, other.

        Every request counts, whatever it was answered (faults included); the counts survive
        :meth:`clear_requests` and start again from zero after :meth:`reset_request_counts`.
        """
        return self.log.endpoint_counts(ENDPOINTS)

    def reset_request_counts(self) -> None:
        """Start the counts of :meth:`request_counts` from zero."""
        self.log.reset_endpoint_counts()

    def create_outcomes(self) -> dict[str, int]:
        """Creates received by outcome: ``accepted`` (a job made), ``busy`` (429, none made), ``refused``."""
        return self.log.create_outcomes()

    # job limits

    def set_max_jobs(self, max_jobs: int | None, *, email: str | None = None) -> None:
        """How many jobs ``email``'s account runs at once (every account's default when ``email`` is None)."""
        with self.state.lock:
            self.state.jobs.set(max_jobs, email)

    def jobs_high_water(self, email: str = DEFAULT_EMAIL) -> int:
        """The most jobs the account ever had QUEUED or GENERATING at once."""
        with self.state.lock:
            return self.state.jobs.high_water(email)

    # credits

    def set_credits(self, credits: float | None, *, email: str = DEFAULT_EMAIL) -> None:
        """Give the account this many credits: a create costing more is refused with 412. None: unlimited."""
        self.state.credits.give(email, credits)

    def credits_left(self, email: str = DEFAULT_EMAIL) -> float | None:
        """The account's credits left (None: unlimited, the default)."""
        return self.state.credits.left(email)

    # clips

    def add_clip(
        self,
        text: str = "May the Force be with you.",
        voice_id: str | None = None,
        model: str = DEFAULT_MODEL,
        email: str = DEFAULT_EMAIL,
        duration: float = 3,
        status: str | int | None = None,
        size_bytes: int | None = None,
        ready_after: float | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Seed a clip directly (no credits are charged); returns its JSON as GET would answer it.

        ``voice_id`` defaults to the model's first voice. Extra ``fields`` are create fields
        (``language_code``, ``speed``...) plus ``fail_code`` and ``fail_reason``. The audio lasts
        ``duration`` seconds unless ``size_bytes`` sets the file's length.
        """
        fail_code, fail_reason = fields.pop("fail_code", None), fields.pop("fail_reason", None)
        if voice_id is None and model in MODELS:
            voice_id = first_voice(model).voice_id
        request = validate_create({"text": text, "voice_id": voice_id, "model": model, "email": email, **fields})
        clip = self.state.create(
            request,
            duration=duration,
            size_bytes=size_bytes,
            status=status,
            ready_after=ready_after,
            fail_code=fail_code,
            fail_reason=fail_reason,
        )
        return self.state.clip_json(clip)

    def clip(self, audio_id: str) -> dict[str, Any]:
        """The clip's JSON as GET would answer it now (no poll is counted)."""
        return self.state.clip_json(self.state.get(audio_id))

    def finish_clip(self, audio_id: str) -> None:
        """End a clip now (COMPLETED, or FAILED if it was made to fail)."""
        self.state.finish(audio_id)

    def delete_clip(self, audio_id: str) -> None:
        """Delete a clip: its GET answers 404 from now on."""
        self.state.delete(audio_id)

    def set_clock(self, queued_seconds: float | None = None, generating_seconds: float | None = None) -> None:
        """Change the clock for clips created from now on."""
        self.state.set_clock(queued_seconds, generating_seconds)

    def fail_next_jobs(self, n: int = 1, fail_code: str | None = None, fail_reason: str | None = None) -> None:
        """Make the next ``n`` created clips end FAILED with this code and reason."""
        self.state.fail_next_jobs(n, fail_code, fail_reason)

    # faults

    def add_fault(
        self,
        kind: str,
        *,
        count: int = 1,
        target: str | None = None,
        path_contains: str | None = None,
        **params: Any,
    ) -> None:
        """Misbehave on the next ``count`` matching requests (-1: for ever); see the faults module."""
        if kind == "delete_after_polls":
            self.state.delete_after_polls(params["audio_id"], int(params.get("polls", 0)))
            return
        self.faults.add(make_fault(kind, count=count, target=target, path_contains=path_contains, **params))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self.faults.clear()
