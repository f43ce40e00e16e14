"""Shared-polling benchmark: N waiting clips of one account in one event loop, three ways, in one run.

- ``shared``: ``PixVerseSpeechTrigger`` as Airflow 3.3's triggerer runs it: each trigger subscribes to its
  group through Airflow's own ``SharedStreamManager`` and takes its event out of
  ``filter_shared_stream()``; one listing of the account per interval serves the group.
- ``standalone``: the same triggers' ``run()`` (Airflow before 3.3): one GET per clip per interval.
- ``http-peer``: the http provider's ``HttpSensorTrigger``, one GET per clip per interval.

Every measurement runs in a fresh process (so one heap never serves the next) that starts its own
server in another process: the sandbox (``python -m airflow_provider_pixverse.sandbox``) for ours, and
for the peer a plain readiness endpoint served from one asyncio loop (``bench/_ready_server.py``; the
sandbox answers the peer's new connection per poll with a new thread, dearer than the peer's own poll).
Triggers start as the triggerer starts them, one per loop turn; every clip becomes final a wait of
(first of ``--waits``) 2.5 intervals later. CPU and requests are counted over the waiting period, from the
start to the moment the clips become final (set-up in it, events not); the requests target is judged on the
most requests the server saw in any one interval of the run. The whole wait's CPU runs on to the last event
(set-up, subscription, first status lines and events in it), measured for the shared path and the peer at
each of ``--waits`` (2.5 and 10 intervals).

Then the shared path runs again at the largest N with a delay on every API call (``--latencies``: 100 and
300 ms by default), to show that its rounds keep to the clock against a real API's latency.

    python bench/shared_polling.py [--sizes 1000,10000] [--interval S] [--waits 2.5,10] [--latencies 0.1,0.3]
                                   [--quick] [--json OUT]

stdout gets the report alone (tables, PASS/MISS lines); each measurement's raw figures and every log
line go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ready_server import ReadyServerProcess
from _sandbox_process import SandboxProcess
from triggers import CallbackTimer, report_stream, rss_mb

KINDS = ("http-peer", "standalone", "shared")
VOICE = "minimax_english_radiant_girl"
PEER_CONN = "pixverse_bench_http"


@dataclass
class Result:
    kind: str
    clips: int
    interval: float
    polls: float
    events_ok: int
    errors: str
    peak_requests_per_interval: int  # the most requests in any one interval of the run
    requests_per_interval: float  # over the waiting period
    gets: int  # over the waiting period
    lists: int
    cpu_us_per_clip_poll: float  # once polling is steady: per poll of every clip (a GET each, or a group's round)
    cpu_us_per_clip_poll_waiting: float  # the same over the whole waiting period, set-up included
    cpu_us_per_clip_interval: float  # over the whole waiting period, set-up included
    gc_share_steady: float  # of our CPU once polling is steady, the garbage collector's
    process_cpu_share: float
    gc_share_of_cpu: float  # of our CPU over the waiting period, the garbage collector's
    kb_per_clip: float
    longest_callback_ms: float
    longest_callback_cpu_ms: float
    callbacks: int
    longest_gc_pause_ms: float
    worst_lateness_intervals: float
    median_lateness_intervals: float
    setup_seconds: float
    waiting_seconds: float
    run_seconds: float
    run_cpu_seconds: float
    server: str
    server_cpu_share: float
    others_cores: float  # what the rest of the machine kept busy meanwhile, in cores
    list_pages_per_round: int = 0
    longest_round_seconds: float = 0.0
    round_period_intervals: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    api_latency_ms: float = 0.0
    cpu_us_per_clip_whole: float = 0.0  # our CPU from the first trigger's start to the last event, per clip
    wait_intervals: float = 0.0  # intervals from the start until the clips become final
    bound: str = ""  # what set this side's pace
    longest_callback_in: str = field(default="", repr=False)


class LoopCallbacks(CallbackTimer):
    """:class:`~triggers.CallbackTimer` that also keeps the longest callback by its own CPU time.

    Wall time is the stall the loop saw; on a machine that others load too, a callback can also be
    descheduled midway, so its CPU time (the collector's pauses left out of both) tells the two apart.
    """

    gc_seconds = 0.0  # every collection's pause so far, in or out of callbacks (the sampler reads it)

    def __init__(self) -> None:
        super().__init__()
        self.longest_cpu = 0.0
        self.callbacks = 0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        super()._on_gc(phase, info)
        if phase != "start":
            LoopCallbacks.gc_seconds += time.perf_counter() - self._gc_started

    def __enter__(self) -> LoopCallbacks:
        timer, original = self, self._original

        def timed_run(handle: asyncio.events.Handle) -> None:
            timer._gc_in_callback = 0.0
            start, start_cpu = time.perf_counter(), time.thread_time()
            original(handle)
            took = time.perf_counter() - start - timer._gc_in_callback
            took_cpu = time.thread_time() - start_cpu - timer._gc_in_callback
            timer.callbacks += 1
            if took > timer.longest:
                try:
                    what = describe(handle)
                except Exception as error:  # a note for the log: never a reason to lose the measurement
                    what = f"{handle!r:.200} ({error!r})"
                timer.longest, timer.longest_what = took, what
            timer.longest_cpu = max(timer.longest_cpu, took_cpu)

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        gc.callbacks.append(self._on_gc)
        return self


def describe(handle: asyncio.events.Handle) -> str:
    """What a callback ran: for a task's step, its coroutine and where the step left it (for the log)."""
    task = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
    if not isinstance(task, asyncio.Task):
        return repr(handle)[:300]
    coro = task.get_coro()
    where, awaiting, seen = "", coro, 0
    while awaiting is not None and seen < 50:  # down the chain of awaits, to the innermost frame
        frame = getattr(awaiting, "cr_frame", None) or getattr(awaiting, "ag_frame", None)
        if frame is not None:
            where = f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno} {frame.f_code.co_qualname}"
        awaiting, seen = getattr(awaiting, "cr_await", None) or getattr(awaiting, "ag_await", None), seen + 1
    # A task can wrap what has no name of its own (anext() of an async generator, say).
    return f"task {getattr(coro, '__qualname__', type(coro).__name__)}, left at {where or '?'}"


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has been busy since boot (all processes: ours, servers, others')."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


class Servers:
    """The server one measurement polls, and how to count its requests and CPU."""

    def __init__(self, kind: str, latency: float = 0.0) -> None:
        self.kind = kind
        if kind == "http-peer":
            self.peer = ReadyServerProcess(latency)
            port = self.peer.url.rsplit(":", 1)[1]
            os.environ[f"AIRFLOW_CONN_{PEER_CONN.upper()}"] = json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": int(port), "schema": "http"}
            )
            self.name = "asyncio readiness endpoint"
        else:
            self.sandbox = SandboxProcess()
            os.environ["AIRFLOW_CONN_PIXVERSE_DEFAULT"] = self.sandbox.connection_json()
            self.name = "sandbox (threads)"
            if latency:  # every API call (lists and GETs) answered that much later
                fault = {"kind": "delay", "seconds": latency, "count": -1, "path_contains": "/v2/pixverse/speech/"}
                self.sandbox.control("POST", "/faults", fault)

    def cpu_seconds(self) -> float:
        return (self.peer if self.kind == "http-peer" else self.sandbox).cpu_seconds()

    def seed(self, n: int, ready_after: float) -> tuple[list[str], float]:
        """``n`` clips (ids, in the order made) that become final ``ready_after`` s from now; and when that is.

        The ready time is counted from before the first clip was made: lateness is never understated.
        """
        before = time.time()
        if self.kind == "http-peer":
            ready_ms = int((before + ready_after) * 1000)
            return [f"ready/{i}/{ready_ms}" for i in range(n)], before + ready_after
        body = json.dumps({"count": n, "text": "bench", "voice_id": VOICE, "ready_after": ready_after}).encode()
        request = urllib.request.Request(
            f"{self.sandbox.url}/_sandbox/clips", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=300) as answer:
            raw = answer.read()
        # The ids alone: decoding 10,000 clips into dicts would leave the heap grown before the measurement.
        ids = [match.decode() for match in re.findall(rb'"audio_id": ?"([^"]+)"', raw)]
        assert len(ids) == n, (len(ids), n)
        return ids, before + ready_after

    def request_log(self, since: float) -> list[tuple[float, str]]:
        """The API requests the server received since a UNIX time, oldest first: (time, "get" or "list")."""
        if self.kind == "http-peer":
            return [(at, "get") for at in self.peer.request_times() if at >= since]
        records = self.sandbox.control("GET", "/requests")
        return sorted(
            (r["at"], r["endpoint"]) for r in records if r["at"] >= since and r["endpoint"] in ("get", "list")
        )

    def stop(self) -> None:
        (self.peer if self.kind == "http-peer" else self.sandbox).stop()


def make_trigger(kind: str, clip: str, interval: float) -> Any:
    if kind == "http-peer":
        from airflow.providers.http.triggers.http import HttpSensorTrigger

        return HttpSensorTrigger(endpoint=clip, http_conn_id=PEER_CONN, poke_interval=interval)
    from airflow_provider_pixverse.triggers.pixverse import PixVerseSpeechTrigger

    return PixVerseSpeechTrigger(audio_id=clip, end_time=time.time() + 3600, poll_interval=interval)


def succeeded(kind: str, payload: Any) -> bool:
    return payload is True if kind == "http-peer" else payload.get("status") == "success"


@dataclass
class Run:
    arrivals: list[float]
    ok: list[bool]
    errors: collections.Counter[str]  # triggers that raised instead of firing, by error class
    started: float
    setup_seconds: float
    samples: list[tuple[float, float, float, float, float]]  # (UNIX time, our CPU, server CPU, GC, machine busy)
    finished_cpu: float = 0.0  # our CPU time once every trigger had its event


async def run_triggers(
    kind: str, clips: list[str], interval: float, ready_at: float | None = None, servers: Servers | None = None
) -> Run:
    """Start a trigger per clip as the triggerer does (one per loop turn), and wait for every first event.

    With ``ready_at`` (a UNIX time), sample our CPU time and the server's at the start and then.
    """
    from airflow.triggers.shared_stream import SharedStreamManager

    manager = SharedStreamManager()
    arrivals, ok = [0.0] * len(clips), [False] * len(clips)
    errors: collections.Counter[str] = collections.Counter()
    samples: list[tuple[float, float, float, float, float]] = []

    async def wait_one(index: int, trigger: Any) -> None:
        key = trigger.shared_stream_key() if kind == "shared" else None
        if key is not None:
            events = trigger.filter_shared_stream(manager.subscribe(trigger_id=index, trigger=trigger, key=key))
        else:
            events = trigger.run()
        try:
            async for event in events:  # as the triggerer does: to the end of the stream
                if not arrivals[index]:
                    arrivals[index], ok[index] = time.time(), succeeded(kind, event.payload)
        except Exception as error:  # the triggerer would fail this trigger's task; the others go on
            errors[type(error).__name__] += 1
        finally:
            if key is not None:
                await manager.unsubscribe(index, key)

    async def sample(started: float) -> None:
        if ready_at is None or servers is None:
            return
        # At the start; once every clip has had its first poll (a quarter interval after it); when they become final.
        for at in (started, started + STEADY_FROM * interval, ready_at):
            await asyncio.sleep(max(0.0, at - time.time()))
            samples.append(
                (
                    time.time(),
                    time.process_time(),
                    servers.cpu_seconds(),
                    LoopCallbacks.gc_seconds,
                    machine_busy_seconds(),
                )
            )

    started = time.time()
    sampler = asyncio.ensure_future(sample(started))
    await asyncio.sleep(0)  # the sampler takes its first sample
    tasks = []
    for index, clip in enumerate(clips):
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(wait_one(index, make_trigger(kind, clip, interval))))
    setup = time.time() - started
    await asyncio.gather(*tasks)
    finished_cpu = time.process_time()
    await manager.stop_all()
    if not sampler.done():  # the run ended before the clips became final (it never should)
        sampler.cancel()
    return Run(arrivals, ok, errors, started, setup, samples, finished_cpu)


STEADY_FROM = 1.25  # intervals after the start: every kind has polled every clip once (the peer at once)


def peak_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) that fall in any span of ``window`` seconds."""
    peak, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def list_rounds(log: list[tuple[float, str]], interval: float) -> list[list[float]]:
    """The list requests of ``log`` in rounds (a gap of half an interval parts two)."""
    rounds: list[list[float]] = []
    for at, endpoint in log:
        if endpoint != "list":
            continue
        if rounds and at - rounds[-1][-1] < interval / 2:
            rounds[-1].append(at)
        else:
            rounds.append([at])
    return rounds


def measure(kind: str, n: int, interval: float, polls: float, latency: float = 0.0) -> Result:
    """One measurement, in this (fresh) process: its own server, a warm-up, then N triggers.

    The waiting period runs from the start of the first trigger to the clips becoming final: set-up
    and polls are in it, the events are not.
    """
    load_before = load_average()
    servers = Servers(kind, latency)
    try:
        # One-time costs (imports, the first connection look-up, the HTTP stack) are paid here, unmeasured.
        warm, _ = servers.seed(5, 0.45)
        asyncio.run(run_triggers(kind, warm, 0.3))

        gc.collect()
        rss_before_kb = rss_mb() * 1024
        # Seeded last, so the clips become final (polls - 0.5) intervals after the triggers start, give or take
        # the time the seeding takes (under a second at 10,000).
        clips, ready_at = servers.seed(n, (polls - 0.5) * interval)
        cpu_before = time.process_time()
        with LoopCallbacks() as callbacks:
            run = asyncio.run(run_triggers(kind, clips, interval, ready_at, servers))
        ended = time.time()
        run_cpu = time.process_time() - cpu_before
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        (t0, cpu0, server_cpu0, gc0, busy0), (tm, cpu_m, _, gc_m, _), (t1, cpu1, server_cpu1, gc1, busy1) = run.samples
        others = (busy1 - busy0) - (cpu1 - cpu0) - (server_cpu1 - server_cpu0)
        log = servers.request_log(since=t0)
        waiting = [endpoint for at, endpoint in log if at < t1]
        steady = [endpoint for at, endpoint in log if tm <= at < t1]
        gets, lists = waiting.count("get"), waiting.count("list")
        rounds = list_rounds(log, interval)
        pages = max((len(r) for r in rounds), default=0)

        def polls_of_every_clip(requests: list[str]) -> float:  # a GET of each clip, or a round of the group
            return requests.count("list") / pages if kind == "shared" and pages else requests.count("get") / n

        def per_poll(cpu: float, requests: list[str]) -> float:
            polled = polls_of_every_clip(requests)
            return cpu / n / polled * 1e6 if polled else math.inf

        lateness = [(arrival - ready_at) / interval for arrival in run.arrivals if arrival] or [math.inf]
        process_share = (cpu1 - cpu0) / (t1 - t0)
        server_share = (server_cpu1 - server_cpu0) / (t1 - t0)
        return Result(
            kind=kind,
            clips=n,
            interval=interval,
            polls=polls,
            events_ok=sum(run.ok),
            errors=", ".join(f"{count} {name}" for name, count in run.errors.most_common()),
            peak_requests_per_interval=peak_in_window([at for at, _ in log], interval),
            requests_per_interval=len(waiting) / ((t1 - t0) / interval),
            gets=gets,
            lists=lists,
            cpu_us_per_clip_poll=per_poll(cpu1 - cpu_m, steady),
            cpu_us_per_clip_poll_waiting=per_poll(cpu1 - cpu0, waiting),
            cpu_us_per_clip_interval=(cpu1 - cpu0) / n / ((t1 - t0) / interval) * 1e6,
            gc_share_steady=(gc1 - gc_m) / (cpu1 - cpu_m),
            process_cpu_share=(cpu1 - cpu0) / (t1 - t0),
            gc_share_of_cpu=(gc1 - gc0) / (cpu1 - cpu0),
            kb_per_clip=(peak_kb - rss_before_kb) / n,
            longest_callback_ms=callbacks.longest * 1000,
            longest_callback_cpu_ms=callbacks.longest_cpu * 1000,
            callbacks=callbacks.callbacks,
            longest_gc_pause_ms=callbacks.longest_gc_pause * 1000,
            worst_lateness_intervals=max(lateness),
            median_lateness_intervals=statistics.median(lateness),
            setup_seconds=run.setup_seconds,
            waiting_seconds=t1 - t0,
            run_seconds=ended - t0,
            run_cpu_seconds=run_cpu,
            server=servers.name,
            server_cpu_share=(server_cpu1 - server_cpu0) / (t1 - t0),
            others_cores=max(others, 0.0) / (t1 - t0),
            list_pages_per_round=pages,
            longest_round_seconds=max((r[-1] - r[0] for r in rounds), default=0.0),
            round_period_intervals=(rounds[-1][0] - rounds[0][0]) / (len(rounds) - 1) / interval
            if len(rounds) > 1
            else 0.0,
            load_before=load_before,
            load_after=load_average(),
            api_latency_ms=latency * 1000,
            cpu_us_per_clip_whole=(run.finished_cpu - cpu0) / n * 1e6,
            wait_intervals=polls - 0.5,
            bound=bounded_by(kind, process_share, server_share, latency),
            longest_callback_in=callbacks.longest_what,
        )
    finally:
        servers.stop()


def bounded_by(kind: str, process_share: float, server_share: float, latency: float) -> str:
    """What set a side's pace: a core it kept busy (ours or the server's), else the poll interval (and latency)."""
    if process_share >= 0.8:
        return "our CPU"
    if server_share >= 0.8:
        return "the server's CPU"
    if latency:
        return f"the interval; {latency * 1000:.0f} ms per API call"
    return "the interval" if kind == "shared" else "the interval (a GET per clip)"


def measure_in_child(kind: str, n: int, interval: float, polls: float, latency: float = 0.0) -> Result:
    """:func:`measure` in a fresh interpreter; its output goes to our stderr."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--measure", kind, "--sizes", str(n)]
        command += ["--interval", str(interval), "--polls", str(polls), "--json", str(out)]
        command += ["--api-latency", str(latency)]
        done = subprocess.run(command, stdout=sys.stderr, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{kind} N={n} failed ({done.returncode}): see the log above")
        return Result(**json.loads(out.read_text()))


def default_interval(n: int) -> float:
    """max(2, N / 400) s: the peer's own polls (about 1.5 ms of CPU each) then fill at most ~60% of a core."""
    return max(2.0, n / 400)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="numbers of waiting clips, comma-separated")
    parser.add_argument("--interval", type=float, help="poll interval in seconds (default: max(2, N / 400))")
    parser.add_argument(
        "--waits",
        default="2.5,10",
        help="intervals until the clips become final, comma-separated: the first for every kind, the others "
        "for the shared path and the peer (the whole wait's CPU)",
    )
    parser.add_argument(
        "--latencies",
        default="0.1,0.3",
        help="then the shared path at the largest N with this many seconds per API call, comma-separated "
        "(the sandbox's delay fault; empty: none)",
    )
    parser.add_argument("--polls", type=float, default=3.0, help=argparse.SUPPRESS)  # the child's: wait + 0.5
    parser.add_argument("--api-latency", type=float, default=0.0, help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--quick", action="store_true", help="N=30 at 0.5 s: checks the benchmark runs, not figures")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--measure", choices=KINDS, help=argparse.SUPPRESS)  # one measurement, in a child
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.interval, args.waits, args.latencies = "30", args.interval or 0.5, "2.5,4", "0.05"
    sizes = [int(size) for size in args.sizes.split(",")]
    waits = [float(wait) for wait in args.waits.split(",")]
    latencies = [float(latency) for latency in args.latencies.split(",") if latency.strip()]

    if args.measure:
        interval = args.interval or default_interval(sizes[0])
        result = measure(args.measure, sizes[0], interval, args.polls, args.api_latency)
        if args.json:
            args.json.write_text(json.dumps(asdict(result)))
        return 0

    report = report_stream()
    results: list[Result] = []

    def run(kind: str, n: int, wait: float, latency: float = 0.0) -> None:
        results.append(measure_in_child(kind, n, args.interval or default_interval(n), wait + 0.5, latency))
        print(json.dumps(asdict(results[-1])), file=sys.stderr, flush=True)

    for n in sizes:
        for kind in KINDS:
            run(kind, n, waits[0])
    for n in sizes:
        for wait in waits[1:]:
            for kind in ("http-peer", "shared"):
                run(kind, n, wait)
    for latency in latencies:
        run("shared", max(sizes), waits[0], latency)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(format_report(results), file=report)
    return 0


def verdicts(shared: Result, standalone: Result, peer: Result) -> list[tuple[str, bool, str]]:
    """Each target: its name, whether the shared path meets it, and the figures behind that."""
    n = shared.clips
    cpu_ratio = shared.cpu_us_per_clip_poll / peer.cpu_us_per_clip_poll
    waiting_ratio = shared.cpu_us_per_clip_poll_waiting / peer.cpu_us_per_clip_poll_waiting
    memory_ratio = shared.kb_per_clip / peer.kb_per_clip
    return [
        (
            f"API requests per poll interval <= N/40 = {n / 40:g}",
            shared.peak_requests_per_interval <= n / 40,
            f"at most {shared.peak_requests_per_interval} in any one interval (list pages a round: "
            f"{shared.list_pages_per_round}, GETs while waiting: {shared.gets}); standalone "
            f"{standalone.peak_requests_per_interval}, "
            f"peer {peer.peak_requests_per_interval}",
        ),
        (
            "CPU per waiting clip per interval <= 0.1x the peer's",
            cpu_ratio <= 0.1,
            f"{cpu_ratio:.3f}x once polling is steady ({shared.cpu_us_per_clip_poll:.1f} vs "
            f"{peer.cpu_us_per_clip_poll:.0f} us per poll of every clip); {waiting_ratio:.3f}x over the whole waiting "
            f"period, set-up and first status lines included; standalone "
            f"{standalone.cpu_us_per_clip_poll / peer.cpu_us_per_clip_poll:.2f}x steady",
        ),
        (
            "memory per waiting clip <= 0.5x the peer's",
            memory_ratio <= 0.5,
            f"{memory_ratio:.2f}x ({shared.kb_per_clip:.1f} vs {peer.kb_per_clip:.1f} KB); "
            f"standalone {standalone.kb_per_clip / peer.kb_per_clip:.2f}x",
        ),
        (
            "longest loop callback <= 50 ms, GC apart",
            shared.longest_callback_ms <= 50,
            f"{shared.longest_callback_ms:.1f} ms, {shared.longest_callback_cpu_ms:.1f} ms of it on CPU "
            f"(GC pauses, apart: up to {shared.longest_gc_pause_ms:.0f} ms); "
            f"standalone {standalone.longest_callback_ms:.1f} ms, peer {peer.longest_callback_ms:.1f} ms",
        ),
        (
            "every event within 1.5 intervals of the clip becoming final",
            shared.events_ok == n and shared.worst_lateness_intervals <= 1.5,
            f"{shared.events_ok}/{n} succeeded, worst {shared.worst_lateness_intervals:.2f} intervals; "
            f"standalone {standalone.events_ok}/{n}, worst {standalone.worst_lateness_intervals:.2f}; "
            f"peer {peer.events_ok}/{n}, worst {peer.worst_lateness_intervals:.2f}",
        ),
    ]


LEGEND = (
    "shared: this provider's triggers through Airflow's own `SharedStreamManager`, as the 3.3 triggerer runs them "
    "(one listing of the account per interval); standalone: their `run()` (one GET per clip per interval); "
    "http-peer: `HttpSensorTrigger` (one GET per clip per interval, on a new connection each). The waiting period "
    "runs from the first trigger's start to the clips becoming final (set-up in it, events not); polling is steady "
    "from 1.25 intervals on, when every clip has had its first poll. CPU per poll: the CPU over the polls of every "
    "clip made meanwhile (a GET of each, or a round of the group), steady or over the whole wait; memory: "
    "the peak RSS growth per clip; the longest callback is wall time (its own CPU time in brackets), the collector's "
    "pauses left out. Shares are of one core, over the waiting period; so is the CPU the machine's other processes "
    "used meanwhile (the machine is shared)."
)


def format_report(results: list[Result]) -> str:
    """The report, in Markdown: the figures of the targets, what bounds each side, then PASS or MISS per target."""
    probes = [r for r in results if r.api_latency_ms]
    first_wait = min((r.wait_intervals for r in results), default=0.0)
    longer = [r for r in results if not r.api_latency_ms and r.wait_intervals != first_wait]
    results = [r for r in results if not r.api_latency_ms and r.wait_intervals == first_wait]
    lines = [
        LEGEND,
        "",
        "| N | kind | interval s | most requests in an interval | CPU us / clip / poll, steady (GC's part) "
        "| CPU us / clip / poll, whole wait | KB / clip | longest callback ms (its CPU) | worst lateness (intervals) "
        "| events ok |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.clips} | {r.kind} | {r.interval:g} | {r.peak_requests_per_interval} "
        f"| {r.cpu_us_per_clip_poll:.1f} ({r.gc_share_steady:.0%}) | {r.cpu_us_per_clip_poll_waiting:.1f} "
        f"| {r.kb_per_clip:.1f} "
        f"| {r.longest_callback_ms:.1f} ({r.longest_callback_cpu_ms:.1f}) | {r.worst_lateness_intervals:.2f} "
        f"| {r.events_ok}/{r.clips}{f' ({r.errors} raised)' if r.errors else ''} |"
        for r in results
    ]
    lines += [
        "",
        "| N | kind | our CPU share (GC's part), whole wait | server | server CPU share | set-up s "
        "| longest GC pause ms | list pages / round | longest round s | round period (intervals) "
        "| other processes, cores | bounded by |",
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.clips} | {r.kind} | {r.process_cpu_share:.2f} ({r.gc_share_of_cpu:.0%}) | {r.server} "
        f"| {r.server_cpu_share:.2f} "
        f"| {r.setup_seconds:.1f} | {r.longest_gc_pause_ms:.0f} | {r.list_pages_per_round or '-'} "
        f"| {f'{r.longest_round_seconds:.2f}' if r.list_pages_per_round else '-'} "
        f"| {f'{r.round_period_intervals:.2f}' if r.round_period_intervals else '-'} "
        f"| {r.others_cores:.2f} | {r.bound or '-'} |"
        for r in results
    ]
    for n in sorted({r.clips for r in results}):
        by_kind = {r.kind: r for r in results if r.clips == n}
        lines.append("")
        lines.append(
            f"- N={n}, what each side spent: "
            + "; ".join(
                f"{r.kind} {r.process_cpu_share:.2f} of a core, its server {r.server_cpu_share:.2f}"
                for r in by_kind.values()
            )
            + " (near 1, that side and not the interval would set the pace)"
        )
        lines += [
            f"- N={n}: {'PASS' if passed else 'MISS'} {name}: {detail}"
            for name, passed, detail in verdicts(by_kind["shared"], by_kind["standalone"], by_kind["http-peer"])
        ]
    lines += whole_wait_report([*results, *longer])
    lines += latency_report([r for r in results if r.kind == "shared"], probes)
    return "\n".join(lines)


def whole_target(wait: float) -> float:
    """The whole wait's CPU target, as a share of the peer's: 0.1x over 2.5 intervals, 0.05x over 10 or more."""
    return 0.05 if wait >= 10 else 0.1


def whole_wait_report(results: list[Result]) -> list[str]:
    """The table of the whole wait's CPU per clip (set-up and events included), against the peer, and its verdicts."""
    pairs = sorted({(r.clips, r.wait_intervals) for r in results})
    rows = {(r.clips, r.wait_intervals, r.kind): r for r in results}
    lines = [
        "",
        "CPU per waiting clip over the whole wait: from the first trigger's start to the last event (set-up, "
        "subscription, first status lines and events included), divided by N.",
        "",
        "| N | wait (intervals) | kind | CPU us / clip, whole wait | vs the peer | our CPU share (GC's part) "
        "| GC pauses up to ms | bounded by |",
        "|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    verdict_lines = []
    for n, wait in pairs:
        peer, shared = rows.get((n, wait, "http-peer")), rows.get((n, wait, "shared"))
        for r in (peer, shared):
            if r is None:
                continue
            ratio = r.cpu_us_per_clip_whole / peer.cpu_us_per_clip_whole if peer and peer.cpu_us_per_clip_whole else 0
            lines.append(
                f"| {n} | {wait:g} | {r.kind} | {r.cpu_us_per_clip_whole:.0f} | {ratio:.3f}x "
                f"| {r.process_cpu_share:.2f} ({r.gc_share_of_cpu:.0%}) | {r.longest_gc_pause_ms:.0f} "
                f"| {r.bound or '-'} |"
            )
        if peer is None or shared is None or not peer.cpu_us_per_clip_whole:
            continue  # no peer to compare with (or results saved before the whole wait was measured)
        ratio = shared.cpu_us_per_clip_whole / peer.cpu_us_per_clip_whole
        target = whole_target(wait)
        passed = ratio <= target and shared.events_ok == n
        verdict_lines.append(
            f"- N={n}: {'PASS' if passed else 'MISS'} CPU per waiting clip over a whole wait of {wait:g} intervals "
            f"<= {target:g}x the peer's: {ratio:.3f}x ({shared.cpu_us_per_clip_whole:.0f} vs "
            f"{peer.cpu_us_per_clip_whole:.0f} us; {shared.events_ok}/{n} events)"
        )
    return [*lines, "", *verdict_lines]


def latency_report(plain: list[Result], probes: list[Result]) -> list[str]:
    """The shared path's rounds at each API latency (the sandbox's delay fault), and their verdicts."""
    rows = sorted([*plain, *probes], key=lambda r: (r.clips, r.api_latency_ms))
    if not probes:
        return []
    n = max(r.clips for r in probes)
    rows = [r for r in rows if r.clips == n]
    lines = [
        "",
        f"The shared path at N={n} with a delay on every API call (the sandbox's delay fault; 0 ms: the loopback "
        "sandbox as it is). A round's pages are fetched `list_concurrency` (4) at once; rounds keep to the clock.",
        "",
        "| N | API latency ms | list pages / round | longest round s | round period (intervals) "
        "| worst lateness (intervals) | events ok | CPU us / clip, whole wait | bounded by |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.clips} | {r.api_latency_ms:.0f} | {r.list_pages_per_round} | {r.longest_round_seconds:.2f} "
        f"| {r.round_period_intervals:.2f} | {r.worst_lateness_intervals:.2f} | {r.events_ok}/{r.clips} "
        f"| {r.cpu_us_per_clip_whole:.0f} | {r.bound or '-'} |"
        for r in rows
    ]
    lines.append("")
    for r in rows:
        passed = r.round_period_intervals <= 1.05 and r.worst_lateness_intervals <= 1.2 and r.events_ok == r.clips
        lines.append(
            f"- N={r.clips}, {r.api_latency_ms:.0f} ms per API call: {'PASS' if passed else 'MISS'} a round begins "
            f"every <= 1.05 intervals and every event within 1.2 intervals of its clip becoming final: a round "
            f"every {r.round_period_intervals:.2f} intervals (the longest took {r.longest_round_seconds:.1f} s, "
            f"{r.longest_round_seconds / r.interval:.2f} intervals), worst event {r.worst_lateness_intervals:.2f} "
            f"intervals late, {r.events_ok}/{r.clips} succeeded"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
