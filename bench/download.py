"""Download benchmark: the download operator against `curl -o` on the same files, in one run.

For each size, the sandbox (its own process) serves an MP3 over loopback; `curl` fetches it,
then the operator, each in a fresh process, writes it to a local path and to S3 (moto server,
its own process). Reported: throughput relative to curl, and how much the operator process's
memory grew while downloading (peak RSS minus RSS before the download).

    python bench/download.py [--sizes 10,200,1000] [--repeat 3] [--json OUT] [--no-s3]

stdout gets the report (a table, PASS/MISS lines); each size's raw figures go to stderr as it is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox_process import SandboxProcess

MB = 1_000_000
RUN_OPERATOR = r"""
import json, resource, sys, time
from airflow_provider_pixverse.operators.pixverse import PixVerseDownloadSpeechOperator

class TaskInstance:
    def xcom_push(self, key, value):
        pass

audio_id, destination, conn_id = sys.argv[1], sys.argv[2], sys.argv[3] or None
operator = PixVerseDownloadSpeechOperator(
    task_id="bench", audio_id=audio_id, destination=destination, storage_conn_id=conn_id, max_bytes=None,
    overwrite=True,
)
# Before the clock starts: the connection read, and Airflow's one-time set-up of object storage
# (loading the providers' filesystems), which any task that touches ObjectStoragePath pays once.
operator.hook.settings
from airflow.providers.common.compat.sdk import ObjectStoragePath
ObjectStoragePath(destination, conn_id=conn_id).fs
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
before = rss_kb()
start = time.perf_counter()
operator.execute({"ti": TaskInstance()})
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_before_kb": before, "peak_rss_kb": peak}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return moto, endpoint
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def run_curl(url: str, target: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(target), url], check=True)
    return time.perf_counter() - start


def run_operator(env: dict[str, str], audio_id: str, destination: str, conn_id: str = "") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", RUN_OPERATOR, audio_id, destination, conn_id],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the download operator to {destination} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,200,1000", help="file sizes in MB, comma separated")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 destination")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of curl and the local download per size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    sandbox = SandboxProcess()
    moto, endpoint = (None, "") if args.no_s3 else start_moto()
    results = []
    try:
        env = {
            **os.environ,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_PIXVERSE_DEFAULT": sandbox.connection_json(),
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIRFLOW_CONN_AWS_BENCH": json.dumps(
                {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
            ),
        }
        s3_client: Any = None
        if moto is not None:
            import boto3

            s3_client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            s3_client.create_bucket(Bucket="bench")
        # tmpfs when there is one: disk write-back noise would swamp what is measured here.
        scratch_root = "/dev/shm" if Path("/dev/shm").is_dir() else None
        with tempfile.TemporaryDirectory(prefix="pixverse-bench-", dir=scratch_root) as scratch:
            folder = Path(scratch)
            clips: list[dict[str, Any]] = []
            for size_mb in sizes:
                clip = sandbox.control(
                    "POST",
                    "/clips",
                    {
                        "text": "bench",
                        "voice_id": "minimax_english_radiant_girl",
                        "status": "COMPLETED",
                        "size_bytes": size_mb * MB,
                    },
                )
                size = clip["file_size"]
                # Alternating curl and the operator, several rounds, medians: the page cache's
                # state drifts, and each side must meet it alike.
                curl_runs, local_runs = [], []
                for _ in range(args.repeat):
                    curl_runs.append(run_curl(clip["url"], folder / "curl.mp3"))
                    (folder / "curl.mp3").unlink()
                    local_runs.append(run_operator(env, clip["audio_id"], f"file://{folder}/operator/"))
                    for leftover in (folder / "operator").iterdir():
                        leftover.unlink()
                curl_seconds = statistics.median(curl_runs)
                local_seconds = statistics.median(run["seconds"] for run in local_runs)
                growth_kb = max(run["peak_rss_kb"] - run["rss_before_kb"] for run in local_runs)
                row = {
                    "size_bytes": size,
                    "curl_mb_s": size / curl_seconds / MB,
                    "local_mb_s": size / local_seconds / MB,
                    "local_growth_mb": growth_kb / 1024,
                    "local_peak_rss_mb": max(run["peak_rss_kb"] for run in local_runs) / 1024,
                }
                row["local_vs_curl"] = row["local_mb_s"] / row["curl_mb_s"]
                results.append(row)
                clips.append(clip)
            # S3 after every local run: moto holds what it stores in memory, which would crowd the
            # page cache the local runs write through. Each object is deleted once measured.
            for row, clip, size_mb in zip(results, clips, sizes, strict=True):
                if s3_client is not None:
                    s3 = run_operator(env, clip["audio_id"], f"s3://bench/speech/{size_mb}/", "aws_bench")
                    for stored in s3_client.list_objects_v2(Bucket="bench").get("Contents", []):
                        s3_client.delete_object(Bucket="bench", Key=stored["Key"])
                    row.update(
                        s3_mb_s=row["size_bytes"] / s3["seconds"] / MB,
                        s3_growth_mb=(s3["peak_rss_kb"] - s3["rss_before_kb"]) / 1024,
                        s3_peak_rss_mb=s3["peak_rss_kb"] / 1024,
                    )
                    row["s3_vs_curl"] = row["s3_mb_s"] / row["curl_mb_s"]
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        sandbox.stop()
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=10)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(format_report(results))
    return 0


def format_report(results: list[dict[str, float]]) -> str:
    """The report, in Markdown: a table of the runs (every figure measured), then the targets with PASS/MISS."""
    lines = [
        "| size | curl MB/s | local MB/s (x curl) | local growth MB | local peak RSS MB "
        "| S3 MB/s (x curl) | S3 growth MB | S3 peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        s3 = (
            f"{row['s3_mb_s']:.0f} ({row['s3_vs_curl']:.2f}) | {row['s3_growth_mb']:.1f} | {row['s3_peak_rss_mb']:.1f}"
            if "s3_mb_s" in row
            else "- | - | -"
        )
        lines.append(
            f"| {row['size_bytes'] / MB:.0f} MB | {row['curl_mb_s']:.0f} | {row['local_mb_s']:.0f} "
            f"({row['local_vs_curl']:.2f}) | {row['local_growth_mb']:.1f} | {row['local_peak_rss_mb']:.1f} | {s3} |"
        )
    largest = max(results, key=lambda row: row["size_bytes"])
    rate_ok = largest["local_vs_curl"] >= 0.8
    growth = max(max(row["local_growth_mb"], row.get("s3_growth_mb", 0.0)) for row in results)
    lines += [
        "",
        f"- {'PASS' if rate_ok else 'MISS'} local download rate at least 0.8 of curl's on the "
        f"{largest['size_bytes'] / MB:.0f} MB file: {largest['local_vs_curl']:.2f}",
        f"- {'PASS' if growth < 100 else 'MISS'} memory growth under 100 MB at every size: at most {growth:.1f} MB",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
