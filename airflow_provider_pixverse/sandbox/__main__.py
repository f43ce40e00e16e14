"""Command line: ``python -m airflow_provider_pixverse.sandbox --port 8765``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING

from airflow_provider_pixverse.sandbox.jobs import DEFAULT_MAX_JOBS
from airflow_provider_pixverse.sandbox.service import PixVerseSandbox

if TYPE_CHECKING:
    from types import FrameType


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_pixverse.sandbox",
        description="Serve a loopback stand-in for the useapi.net PixVerse speech API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--token", default=None, help="API token clients must send (default: random)")
    parser.add_argument("--queued-seconds", type=float, default=0.2, help="time a new clip stays QUEUED")
    parser.add_argument("--generating-seconds", type=float, default=0.5, help="time it then stays GENERATING")
    parser.add_argument("--media-host", default=None, help="host name to put in media URLs")
    parser.add_argument(
        "--max-jobs",
        type=lambda value: None if value.lower() == "none" else int(value),
        default=DEFAULT_MAX_JOBS,
        help=f"jobs each account runs at once, 1 to 8, or 'none' for no limit (default {DEFAULT_MAX_JOBS})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then stop cleanly."""
    args = parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sandbox = PixVerseSandbox(
        host=args.host,
        port=args.port,
        token=args.token,
        max_jobs=args.max_jobs,
        queued_seconds=args.queued_seconds,
        generating_seconds=args.generating_seconds,
        media_host=args.media_host,
    ).start()
    try:
        # The sandbox's own throw-away token (random, loopback only), never a user's API token:
        # callers read it from this line to point a connection at the sandbox.
        print(f"PIXVERSE_SANDBOX url={sandbox.url} token={sandbox.token}", flush=True)
        print(f"export AIRFLOW_CONN_PIXVERSE_DEFAULT='{sandbox.connection_json()}'", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
