"""Triggerer-scale benchmark: N PixVerseSpeechTriggers in one asyncio loop, against a peer.

The sandbox runs in its own process. Each clip is seeded to finish after a few poll intervals;
N triggers then run concurrently in this process's event loop, as a triggerer runs them.
The peer, in the same run and on the same sandbox, is the http provider's HttpSensorTrigger
polling the sandbox's readiness URL for the same clips (404 until final, so it keeps polling).

    python bench/triggers.py [--sizes 100,1000,5000] [--poll-interval S] [--polls 3] [--json OUT]

stdout gets the report alone (tables, PASS/MISS lines); the raw figures of each run, and every log line
(Airflow logs to stdout), go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sandbox_process import SandboxProcess

PROBE = r"""
import sys, time, urllib.request, json
url, seconds = sys.argv[1], float(sys.argv[2])
latencies = []
end = time.time() + seconds
while time.time() < end:
    start = time.perf_counter()
    try:
        urllib.request.urlopen(url, timeout=30).read()
    except OSError:  # an answer that never came counts as the whole timeout
        pass
    latencies.append(time.perf_counter() - start)
    time.sleep(0.05)
latencies.sort()
p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
print(json.dumps({"p50_ms": p50 * 1000, "p99_ms": p99 * 1000, "count": len(latencies)}))
"""


@dataclass
class Result:
    kind: str
    triggers: int
    poll_interval: float
    wall_vs_ideal: float
    worst_lateness_intervals: float
    cpu_seconds: float
    cpu_ms_per_1000_polls: float
    requests_per_clip: float
    rss_mb_per_1000: float
    longest_callback_ms: float
    longest_gc_pause_ms: float
    longest_sleeper_lag_ms: float
    setup_ms: float
    sandbox_cpu_share: float
    sandbox_p50_ms: float
    sandbox_p99_ms: float
    failed: int = 0  # triggers whose run raised (the peer's connection timeouts against a loaded server)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


class CallbackTimer:
    """Times every callback the event loop runs, and the garbage collector's pauses inside them.

    The longest callback, less the collector's pauses in it, is the longest stall the triggers'
    own code caused; the collector's pauses are reported on their own (they grow with the heap,
    whoever filled it).
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_what = ""
        self.longest_gc_pause = 0.0
        self._gc_in_callback = 0.0
        self._gc_started = 0.0
        self._original = asyncio.events.Handle._run

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_started
            self._gc_in_callback += pause
            self.longest_gc_pause = max(self.longest_gc_pause, pause)

    def __enter__(self) -> CallbackTimer:
        timer, original = self, self._original

        def timed_run(handle: asyncio.events.Handle) -> None:
            timer._gc_in_callback = 0.0
            start = time.perf_counter()
            original(handle)
            took = time.perf_counter() - start - timer._gc_in_callback
            if took > timer.longest:
                timer.longest, timer.longest_what = took, repr(handle)[:300]

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
        gc.callbacks.remove(self._on_gc)


class LoopWatch:
    """Measures the longest time the loop did not get back to a 5 ms sleeper, and peak RSS."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.peak_rss = rss_mb()
        self._stop = False

    async def run(self) -> None:
        ticks = 0
        while not self._stop:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.longest = max(self.longest, time.perf_counter() - before - 0.005)
            ticks += 1
            if ticks % 20 == 0:
                self.peak_rss = max(self.peak_rss, rss_mb())

    def stop(self) -> None:
        self._stop = True


def make_triggers(kind: str, clips: list[dict[str, Any]], poll_interval: float) -> list[Any]:
    if kind == "pixverse":
        from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

        end_time = time.time() + 600
        return [
            PixVerseSpeechTrigger(audio_id=clip["audio_id"], end_time=end_time, poll_interval=poll_interval)
            for clip in clips
        ]
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    return [
        HttpSensorTrigger(
            endpoint=f"_sandbox/ready/{clip['audio_id']}",
            http_conn_id="pixverse_bench_http",
            poke_interval=poll_interval,
        )
        for clip in clips
    ]


async def run_triggers(triggers: list[Any], ready_at: list[float]) -> tuple[list[float | None], LoopWatch, float]:
    """Each trigger's first event, as a triggerer runs them; the moment of each (``None``: its run raised)."""
    watch = LoopWatch()
    watcher = asyncio.ensure_future(watch.run())
    await asyncio.sleep(0.02)
    arrivals: list[float | None] = [None] * len(triggers)

    async def first_event(index: int, trigger: Any) -> None:
        events = trigger.run()
        try:
            await events.asend(None)
        except Exception as error:  # a triggerer logs it and fails that task: counted, the others go on
            print(f"# trigger {index} raised {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            return
        arrivals[index] = time.time()
        await events.aclose()

    setup_started = time.perf_counter()
    tasks = [asyncio.ensure_future(first_event(i, trigger)) for i, trigger in enumerate(triggers)]
    await asyncio.sleep(0)
    setup = time.perf_counter() - setup_started
    await asyncio.gather(*tasks)
    watch.stop()
    await watcher
    return arrivals, watch, setup


def measure(kind: str, n: int, sandbox: SandboxProcess, poll_interval: float, polls: int) -> Result:
    # Ready half an interval before the poll that should find them: `polls` polls per clip at best.
    ready_after = polls * poll_interval - poll_interval / 2
    clips = sandbox.control(
        "POST",
        "/clips",
        {"count": n, "text": "bench", "voice_id": "minimax_english_radiant_girl", "ready_after": ready_after},
    )
    ready_at = [time.time() + ready_after] * n
    sandbox.control("DELETE", "/requests")
    stats_before = sandbox.control("GET", "/stats")
    gc.collect()
    triggers = make_triggers(kind, clips, poll_interval)
    probe_seconds = polls * poll_interval + 2
    probe = subprocess.Popen(
        [sys.executable, "-c", PROBE, f"{sandbox.url}/_sandbox/stats", str(probe_seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    rss_before = rss_mb()
    cpu_before, sandbox_cpu_before = time.process_time(), sandbox.cpu_seconds()
    started = time.time()
    with CallbackTimer() as callbacks:
        arrivals, watch, setup = asyncio.run(run_triggers(triggers, ready_at))
    wall = time.time() - started
    print(
        f"# {kind} N={n}: longest callback {callbacks.longest * 1000:.1f} ms in {callbacks.longest_what}",
        file=sys.stderr,
        flush=True,
    )
    cpu = time.process_time() - cpu_before
    sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu_before
    probe_result = json.loads(probe.communicate()[0])
    stats = sandbox.control("GET", "/stats")
    if kind == "pixverse":
        polls_made = stats["api"] - stats_before["api"]
    else:  # the peer polls the control surface, as do the probe and the stats calls
        polls_made = stats["control"] - stats_before["control"] - probe_result["count"] - 2
    ideal = max(ready_at) + poll_interval - started
    lateness = max(
        (arrival - ready for arrival, ready in zip(arrivals, ready_at, strict=True) if arrival is not None),
        default=math.inf,
    )
    return Result(
        kind=kind,
        triggers=n,
        poll_interval=poll_interval,
        wall_vs_ideal=wall / ideal,
        worst_lateness_intervals=lateness / poll_interval,
        cpu_seconds=cpu,
        cpu_ms_per_1000_polls=cpu / polls_made * 1000 * 1000,
        requests_per_clip=polls_made / n,
        rss_mb_per_1000=(watch.peak_rss - rss_before) / n * 1000,
        longest_callback_ms=callbacks.longest * 1000,
        longest_gc_pause_ms=callbacks.longest_gc_pause * 1000,
        longest_sleeper_lag_ms=watch.longest * 1000,
        setup_ms=setup * 1000,
        sandbox_cpu_share=sandbox_cpu / wall,
        sandbox_p50_ms=probe_result["p50_ms"],
        sandbox_p99_ms=probe_result["p99_ms"],
        failed=arrivals.count(None),
    )


def verdicts(ours: Result, peer: Result) -> list[tuple[str, bool, str]]:
    return [
        (
            "CPU per poll at most half of the peer's",
            ours.cpu_ms_per_1000_polls <= peer.cpu_ms_per_1000_polls / 2,
            f"{ours.cpu_ms_per_1000_polls / peer.cpu_ms_per_1000_polls:.2f}x the peer",
        ),
        (
            "no event-loop stall over 50 ms (set-up included)",
            ours.longest_callback_ms <= 50,
            f"longest callback {ours.longest_callback_ms:.1f} ms (peer {peer.longest_callback_ms:.1f} ms), "
            f"collector pauses up to {ours.longest_gc_pause_ms:.0f} ms (peer {peer.longest_gc_pause_ms:.0f} ms); "
            f"a 5 ms sleeper was up to {ours.longest_sleeper_lag_ms:.0f} ms late",
        ),
        (
            "memory per 1,000 triggers no more than the peer's",
            ours.rss_mb_per_1000 <= peer.rss_mb_per_1000,
            f"{ours.rss_mb_per_1000:.1f} MB vs {peer.rss_mb_per_1000:.1f} MB",
        ),
        (
            "all events within 1.5 poll intervals of the ideal",
            ours.failed == 0 and ours.worst_lateness_intervals <= 1.5,
            f"worst {ours.worst_lateness_intervals:.2f} intervals after the clip was ready, {ours.failed} failed"
            + (f"; the peer's runs that raised: {peer.failed}" if peer.failed else ""),
        ),
    ]


def report_stream() -> TextIO:
    """The process's stdout, for the report alone: from here on whatever else writes to stdout goes to stderr.

    Airflow's logging (the peer's retry warnings, aiohttp's "Unclosed connection") writes to stdout.
    """
    sys.stdout.flush()
    report = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="seconds between polls; default max(2, N / 400), so the loopback sandbox (a Python "
        "server on the same 2 cores) answers at most ~400 polls a second and is not the bottleneck",
    )
    parser.add_argument("--polls", type=int, default=3, help="polls until a clip is ready")
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    report = report_stream()

    sandbox = SandboxProcess()
    os.environ["AIRFLOW_CONN_PIXVERSE_DEFAULT"] = sandbox.connection_json()
    port = sandbox.url.rsplit(":", 1)[1]
    os.environ["AIRFLOW_CONN_PIXVERSE_BENCH_HTTP"] = json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": int(port), "schema": "http"}
    )
    results: list[Result] = []
    try:
        # One-time costs (imports, the secrets backends' first load) are paid here, unmeasured,
        # so the figures below are those of a warm triggerer.
        for kind in ("pixverse", "http-peer"):
            measure(kind, 5, sandbox, 0.5, 2)
        for n in sizes:
            interval = args.poll_interval or max(2.0, n / 400)
            for kind in ("pixverse", "http-peer"):
                results.append(measure(kind, n, sandbox, interval, args.polls))
                print(json.dumps(asdict(results[-1])), file=sys.stderr, flush=True)
    finally:
        sandbox.stop()
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(format_report(results), file=report)
    return 0


def format_report(results: list[Result]) -> str:
    """The report, in Markdown: every figure of every run in two tables, then the targets, PASS or MISS.

    The targets are judged at N >= 1000 and at the largest N of the run.
    """
    lines = [
        "| N | kind | poll interval s | wall / ideal | worst lateness (intervals) | CPU ms / 1000 polls "
        "| CPU s / 1000 clips | requests / clip | RSS MB / 1000 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.triggers} | {r.kind} | {r.poll_interval:g} | {r.wall_vs_ideal:.2f} | {r.worst_lateness_intervals:.2f} "
        f"| {r.cpu_ms_per_1000_polls:.0f} | {r.cpu_seconds / r.triggers * 1000:.2f} | {r.requests_per_clip:.2f} "
        f"| {r.rss_mb_per_1000:.1f} |"
        for r in results
    ]
    lines += [
        "",
        "| N | kind | set-up ms | longest callback ms | longest GC pause ms | 5 ms sleeper lag ms "
        "| sandbox CPU share | sandbox p50 ms | sandbox p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.triggers} | {r.kind} | {r.setup_ms:.1f} | {r.longest_callback_ms:.0f} | {r.longest_gc_pause_ms:.0f} "
        f"| {r.longest_sleeper_lag_ms:.0f} | {r.sandbox_cpu_share:.2f} | {r.sandbox_p50_ms:.1f} "
        f"| {r.sandbox_p99_ms:.0f} |"
        for r in results
    ]
    largest = max(r.triggers for r in results)
    for n in sorted({r.triggers for r in results}):
        if n < 1000 and n != largest:
            continue
        pair = {r.kind: r for r in results if r.triggers == n}
        lines.append("")
        lines += [
            f"- N={n}: {'PASS' if passed else 'MISS'} {name}: {detail}"
            for name, passed, detail in verdicts(pair["pixverse"], pair["http-peer"])
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
