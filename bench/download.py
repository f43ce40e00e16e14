"""Download benchmark: the download operator against peers on the same files, in one run, alternately.

The sandbox (its own process) serves an MP3 over loopback. To local storage on tmpfs (``/dev/shm``)
the peer is `curl -o`; to S3 (one moto server, its own process, for both sides) the peer is
boto3's ``upload_fileobj`` of the same bytes streamed from the same media server. Each side runs
in a fresh process, alternately, several rounds; the medians are reported. Reported too: how much
the operator process's memory grew while downloading (peak RSS minus RSS before the download),
the bytes it asked S3 to write per byte of MP3 (PutObject and UploadPart bodies, plus the bytes
of any server-side copy), and what bounded each side: the share of a core each process used over
the transfer (client, sandbox, moto) and how busy the machine's cores were meanwhile (the
machine is shared; tmpfs writes are CPU, so the disk is in the client's share).

    python bench/download.py [--sizes 10,200,1000] [--s3-max-mb 200] [--repeat 3] [--json OUT] [--no-s3]

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
_MEASURE = r"""
import json, os, resource, sys, time
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def busy():
    with open("/proc/stat") as stat:
        ticks = [int(f) for f in stat.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
def measured(run, **more):
    before, cpu_before, busy_before = rss_kb(), cpu(), busy()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {"seconds": seconds, "cpu_seconds": cpu() - cpu_before, "rss_before_kb": before, "peak_rss_kb": peak}
    figures["busy_cores"] = (busy() - busy_before) / seconds
    print(json.dumps({**figures, **more}))
"""
RUN_OPERATOR = (
    _MEASURE
    + r"""
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
fs = ObjectStoragePath(destination, conn_id=conn_id).fs
sent = {"bytes": 0, "copies": 0}
if destination.startswith("s3://"):
    def seen(params, model, **_):
        body = params.get("Body")
        if model.name in ("PutObject", "UploadPart"):
            sent["bytes"] += len(body.getbuffer()) if hasattr(body, "getbuffer") else len(body or b"")
        elif model.name in ("CopyObject", "UploadPartCopy"):
            sent["copies"] += 1
    fs.s3.meta.events.register("before-parameter-build.s3", seen)
    fs.call_s3("list_buckets")  # the client's set-up before the clock, as the peer's
measured(lambda: operator.execute({"ti": TaskInstance()}), store=sent)
"""
)
RUN_PEER = (
    _MEASURE
    + r"""
import boto3, requests
url, endpoint, bucket, key = sys.argv[1:5]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
client.list_buckets()  # the client's set-up before the clock, as the operator's
def upload():
    with requests.get(url, stream=True, timeout=60) as answer:
        answer.raise_for_status()
        client.upload_fileobj(answer.raw, bucket, key)
measured(upload)
"""
)


# The same bytes through the s3fs client the operator uses (its own S3File, serial parts of 8 MiB), no
# operator: what the client library alone gets from this endpoint, so the table can say what bounds it.
RUN_S3FS_ALONE = (
    _MEASURE
    + r"""
import requests
from airflow.providers.common.compat.sdk import ObjectStoragePath
url, destination, conn_id = sys.argv[1:4]
target = ObjectStoragePath(destination, conn_id=conn_id)
target.fs.call_s3("list_buckets")  # the client's set-up before the clock, as the others'
def upload():
    with requests.get(url, stream=True, timeout=60) as answer, target.open("wb", block_size=8 * 1024 * 1024) as out:
        answer.raise_for_status()
        while chunk := answer.raw.read1(1024 * 1024):
            out.write(chunk)
measured(upload)
"""
)


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds the machine's cores have been busy since boot, whoever kept them busy."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """A moto server of its own, its spool on tmpfs where there is one.

    moto keeps every part and object in a ``SpooledTemporaryFile`` that rolls over to ``TMPDIR``
    past 8 MiB: on the disk, both sides carried the disk's write-back (moto's CPU per GB written
    varied from 6 to 9 s between runs of one side); on tmpfs it comes out alike for both sides.
    """
    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **({"TMPDIR": "/dev/shm"} if Path("/dev/shm").is_dir() else {})},
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return moto, endpoint
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def run_curl(url: str, target: Path) -> dict[str, float]:
    start, busy_before = time.perf_counter(), busy_seconds()
    curl = subprocess.Popen(["curl", "-sS", "-o", str(target), url])
    _pid, status, usage = os.wait4(curl.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"curl exited with status {status}")
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "busy_cores": (busy_seconds() - busy_before) / seconds,
    }


def run_script(env: dict[str, str], script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the benchmark process {args} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


class Watched:
    """Runs one side and adds what the servers' processes spent meanwhile, as shares of a core over its transfer."""

    def __init__(self, servers: dict[str, int]) -> None:
        self.servers = servers

    def __call__(self, run: Any, *args: Any) -> dict[str, Any]:
        before = {name: process_cpu(pid) for name, pid in self.servers.items()}
        figures: dict[str, Any] = run(*args)
        seconds = figures["seconds"]
        shares = {"client": figures["cpu_seconds"] / seconds}
        shares.update({name: (process_cpu(pid) - before[name]) / seconds for name, pid in self.servers.items()})
        return {**figures, "shares": shares}


def side(runs: list[dict[str, Any]], size: int, prefix: str) -> dict[str, Any]:
    """The medians of one side's runs, as a row's fields named ``prefix_...``."""
    row: dict[str, Any] = {f"{prefix}_mb_s": size / statistics.median(run["seconds"] for run in runs) / MB}
    row[f"{prefix}_shares"] = {
        name: statistics.median(run["shares"][name] for run in runs) for name in runs[0]["shares"]
    }
    row[f"{prefix}_busy_cores"] = statistics.median(run["busy_cores"] for run in runs)
    if "peak_rss_kb" in runs[0]:
        row[f"{prefix}_growth_mb"] = max(run["peak_rss_kb"] - run["rss_before_kb"] for run in runs) / 1024
        row[f"{prefix}_peak_rss_mb"] = max(run["peak_rss_kb"] for run in runs) / 1024
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,200,1000", help="file sizes in MB, comma separated")
    parser.add_argument("--s3-max-mb", type=int, default=200, help="S3 is measured at the sizes up to this")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 destination")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each side per size (medians)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    sandbox = SandboxProcess()
    moto, endpoint = (None, "") if args.no_s3 else start_moto()
    results: list[dict[str, Any]] = []
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
        servers = {"sandbox": sandbox.process.pid}
        s3_client: Any = None
        if moto is not None:
            import boto3

            servers["moto"] = moto.pid
            s3_client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            s3_client.create_bucket(Bucket="bench")
        watched = Watched(servers)
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
                # Alternating curl and the operator, several rounds, medians: the page cache's
                # state drifts, and each side must meet it alike.
                curl_runs, local_runs = [], []
                for _ in range(args.repeat):
                    curl_runs.append(watched(run_curl, clip["url"], folder / "curl.mp3"))
                    (folder / "curl.mp3").unlink()
                    local_runs.append(
                        watched(run_script, env, RUN_OPERATOR, clip["audio_id"], f"file://{folder}/operator/", "")
                    )
                    for leftover in (folder / "operator").iterdir():
                        leftover.unlink()
                row: dict[str, Any] = {"size_bytes": clip["file_size"]}
                row.update(side(curl_runs, row["size_bytes"], "curl"))
                row.update(side(local_runs, row["size_bytes"], "local"))
                row["local_vs_curl"] = row["local_mb_s"] / row["curl_mb_s"]
                results.append(row)
                clips.append(clip)
            # S3 after every local run: moto holds what it stores in memory, which would crowd the
            # page cache the local runs write through. Each object is deleted once measured.
            for row, clip, size_mb in zip(results, clips, sizes, strict=True):
                if s3_client is not None and size_mb <= args.s3_max_mb:
                    row.update(measure_s3(env, watched, s3_client, endpoint, clip, size_mb, args.repeat))
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


def measure_s3(
    env: dict[str, str],
    watched: Watched,
    s3_client: Any,
    endpoint: str,
    clip: dict[str, Any],
    size_mb: int,
    repeat: int,
) -> dict[str, Any]:
    """The operator into S3, boto3's ``upload_fileobj`` and s3fs's own upload of the same bytes, in turn, per round."""
    operator_runs, peer_runs, alone_runs = [], [], []

    def clear() -> None:
        for stored in s3_client.list_objects_v2(Bucket="bench").get("Contents", []):
            s3_client.delete_object(Bucket="bench", Key=stored["Key"])

    for _ in range(repeat):
        operator_runs.append(
            watched(run_script, env, RUN_OPERATOR, clip["audio_id"], f"s3://bench/speech/{size_mb}/", "aws_bench")
        )
        clear()
        peer_runs.append(watched(run_script, env, RUN_PEER, clip["url"], endpoint, "bench", f"peer/{size_mb}.mp3"))
        clear()
        alone_runs.append(
            watched(run_script, env, RUN_S3FS_ALONE, clip["url"], f"s3://bench/alone/{size_mb}.mp3", "aws_bench")
        )
        clear()
    size = clip["file_size"]
    row = {**side(operator_runs, size, "s3"), **side(peer_runs, size, "s3_peer"), **side(alone_runs, size, "s3fs")}
    row["s3_vs_peer"] = row["s3_mb_s"] / row["s3_peer_mb_s"]
    row["s3_bytes_per_byte"] = max(
        (run["store"]["bytes"] + run["store"]["copies"] * size) / size for run in operator_runs
    )
    return row


def bound(shares: dict[str, float], busy: float) -> str:
    """What bounded a side: the machine when its cores were all busy, else the process at a full core."""
    cores = os.cpu_count() or 1
    name, share = max(shares.items(), key=lambda item: item[1])
    listed = ", ".join(f"{n} {v:.2f}" for n, v in shares.items() if n == "client" or v >= 0.005)
    if busy >= 0.9 * cores:
        verdict = f"the machine (all cores busy; busiest here: {name})"
    elif share >= 0.75:
        verdict = f"{name} (CPU)"
    else:
        verdict = "none at a full core"
    return f"{verdict}: {listed}; machine {busy:.1f}/{cores}"


def format_report(results: list[dict[str, Any]]) -> str:
    """The report, in Markdown: tables of the runs (every figure measured), then the targets with PASS/MISS."""
    lines = [
        "To local storage on tmpfs, against `curl -o` (core shares: client, the sandbox serving the file; "
        "machine: busy cores of all):",
        "",
        "| size | curl MB/s | local MB/s (x curl) | client CPU s/GB: curl, local | local growth MB "
        "| local peak RSS MB | curl bound by | local bound by |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in results:
        cpu = [row[f"{name}_shares"]["client"] / row[f"{name}_mb_s"] * 1000 for name in ("curl", "local")]
        lines.append(
            f"| {row['size_bytes'] / MB:.0f} MB | {row['curl_mb_s']:.0f} | {row['local_mb_s']:.0f} "
            f"({row['local_vs_curl']:.2f}) | {cpu[0]:.2f}, {cpu[1]:.2f} | {row['local_growth_mb']:.1f} "
            f"| {row['local_peak_rss_mb']:.1f} "
            f"| {bound(row['curl_shares'], row['curl_busy_cores'])} "
            f"| {bound(row['local_shares'], row['local_busy_cores'])} |"
        )
    s3_rows = [row for row in results if "s3_mb_s" in row]
    if s3_rows:
        lines += [
            "",
            "To S3 (one moto server for all), against boto3's `upload_fileobj` of the same bytes streamed from "
            "the same media server, in turn; beside them the s3fs client the operator writes through, alone "
            "(its own upload of the same bytes, no operator), and what moto spent per GB on each:",
            "",
            "| size | upload_fileobj MB/s | operator MB/s (x peer) | s3fs alone MB/s (x peer) "
            "| moto CPU s/GB: peer, operator, s3fs alone | bytes written / MP3 byte | operator growth MB "
            "| peer bound by | operator bound by |",
            "|---:|---:|---:|---:|---|---:|---:|---|---|",
        ]
        for row in s3_rows:
            moto = [
                row[f"{name}_shares"].get("moto", 0.0) / row[f"{name}_mb_s"] * 1000
                for name in ("s3_peer", "s3", "s3fs")
            ]
            lines.append(
                f"| {row['size_bytes'] / MB:.0f} MB | {row['s3_peer_mb_s']:.1f} | {row['s3_mb_s']:.1f} "
                f"({row['s3_vs_peer']:.2f}) | {row['s3fs_mb_s']:.1f} ({row['s3fs_mb_s'] / row['s3_peer_mb_s']:.2f}) "
                f"| {moto[0]:.1f}, {moto[1]:.1f}, {moto[2]:.1f} "
                f"| {row['s3_bytes_per_byte']:.2f} | {row['s3_growth_mb']:.1f} "
                f"| {bound(row['s3_peer_shares'], row['s3_peer_busy_cores'])} "
                f"| {bound(row['s3_shares'], row['s3_busy_cores'])} |"
            )
    largest = max(results, key=lambda row: row["size_bytes"])
    growth = max(max(row["local_growth_mb"], row.get("s3_growth_mb", 0.0)) for row in results)
    lines += [
        "",
        f"- {'PASS' if largest['local_vs_curl'] >= 0.9 else 'MISS'} local download rate (content hash included) "
        f"at least 0.9 of curl's on the {largest['size_bytes'] / MB:.0f} MB file: {largest['local_vs_curl']:.2f}",
        f"- {'PASS' if growth < 100 else 'MISS'} memory growth under 100 MB at every size: at most {growth:.1f} MB",
    ]
    if s3_rows:
        biggest = max(s3_rows, key=lambda row: row["size_bytes"])
        per_byte = max(row["s3_bytes_per_byte"] for row in s3_rows)
        lines += [
            f"- {'PASS' if biggest['s3_vs_peer'] >= 0.8 else 'MISS'} S3 download rate at least 0.8 of "
            f"`upload_fileobj`'s on the {biggest['size_bytes'] / MB:.0f} MB file: {biggest['s3_vs_peer']:.2f} "
            f"(s3fs's own upload of the same bytes, no operator: "
            f"{biggest['s3fs_mb_s'] / biggest['s3_peer_mb_s']:.2f})",
            f"- {'PASS' if per_byte == 1.0 else 'MISS'} bytes written to S3 per byte of MP3 1.0 at every size: "
            f"at most {per_byte:.2f}",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
