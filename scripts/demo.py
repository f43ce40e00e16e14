"""`make demo`: run the example DAG end to end against a local sandbox, writing a real MP3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / ".demo" / "speech"
DAG_ID = "example_pixverse_speech"


def start_sandbox() -> tuple[subprocess.Popen[str], str, str]:
    """Start the sandbox on a free port and read its URL and token from its first line."""
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_pixverse.sandbox", "--port", "0", "--generating-seconds", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sandbox.stdout is not None
    line = sandbox.stdout.readline().split()
    fields = dict(part.split("=", 1) for part in line[1:])
    return sandbox, fields["url"], fields["token"]


def main() -> int:
    sandbox, url, token = start_sandbox()
    print(f"Sandbox API at {url}")
    try:
        with tempfile.TemporaryDirectory(prefix="pixverse-demo-home-") as home:
            env = {
                **os.environ,
                "AIRFLOW_HOME": home,
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "PIXVERSE_POLL_INTERVAL": "1",
                "AIRFLOW_CONN_PIXVERSE_DEFAULT": json.dumps({"conn_type": "pixverse", "host": url, "password": token}),
            }
            airflow = [sys.executable, "-m", "airflow"]
            subprocess.run([*airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
            conf = {"destination": OUTPUT.as_uri() + "/"}
            subprocess.run([*airflow, "dags", "test", DAG_ID, "--conf", json.dumps(conf)], env=env, check=True)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    mp3s = sorted(OUTPUT.glob("*.mp3"), key=lambda path: path.stat().st_mtime)
    if not mp3s:
        print(f"No MP3 was written to {OUTPUT}", file=sys.stderr)
        return 1
    newest = mp3s[-1]
    from mutagen.mp3 import MP3

    info = MP3(newest).info
    print(f"\nThe MP3 landed at {newest}")
    print(
        f"  {newest.stat().st_size} bytes, {info.length:.2f} s of MPEG audio, "
        f"{info.sample_rate} Hz, {info.bitrate} bit/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
