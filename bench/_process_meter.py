"""CPU and memory of whole process trees, read from /proc: every process of a component, those that ended too.

A component is a root process (one of Airflow's, or PostgreSQL's postmaster) and all its descendants.
Its CPU at a moment is the sum, over its live processes, of each one's user + system time and of its
``children_user`` + ``children_system`` (the CPU of the children it reaped, theirs included, once it
waited for them). A process that ends and is reaped moves its CPU into its parent's children times,
so the sum never loses it and never counts it twice; only a process that outlives its parent
(re-parented to init) would leave the tree with its CPU: :class:`ProcessMeter` keeps such orphans in
their component from the scans that saw them, counts their last CPU once they are gone, and says how
many there were (one that left its tree before any scan saw it in there is not counted: a scan every
``interval`` seconds; Airflow's components reap what they start).

The scheduler's tree is split three ways, as LocalExecutor runs tasks: the scheduler itself (and
whatever else it forks), its executor workers (``airflow worker -- LocalExecutor: ...``: each is the
task supervisor of the task it runs) and the task processes (a worker's children: where the
operator's code runs). Every task process seen is kept with its peak RSS (``VmHWM``: the kernel's
own high-water mark, exact whenever it was read before the process ended).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WORKER_TITLE = "airflow worker -- LocalExecutor"


@dataclass(frozen=True)
class Stat:
    """One process as /proc/<pid>/stat shows it."""

    pid: int
    ppid: int
    start: int  # clock ticks after boot: with the pid, tells a process from a later one of the same pid
    own: float  # user + system CPU seconds
    children: float  # children_user + children_system CPU seconds (its reaped descendants)


def read_stat(pid: int) -> Stat | None:
    """A process's stat line, or ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            line = stat.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = line[line.rfind(b")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Stat(pid, int(fields[1]), int(fields[19]), (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS)


def scan() -> dict[int, Stat]:
    """Every process of the machine, by pid (in pid order: a parent is read before its younger children)."""
    found = {}
    for name in sorted((n for n in os.listdir("/proc") if n.isdigit()), key=int):
        stat = read_stat(int(name))
        if stat is not None:
            found[stat.pid] = stat
    return found


def cmdline(pid: int) -> str:
    """The process's command line as it shows it now (set-proctitle included), or ``""``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as line:
            return line.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set so far (``VmHWM``), in MiB; ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class TaskProcess:
    """A task process (a LocalExecutor worker's child): when it was seen, its CPU, its peak RSS."""

    pid: int
    first_seen: float
    last_seen: float
    cpu: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class Snapshot:
    """The CPU seconds of each component so far, at ``at`` (UNIX time)."""

    at: float
    cpu: dict[str, float]
    processes: dict[str, int] = field(default_factory=dict)  # live processes per component


class ProcessMeter:
    """Samples the components' process trees (a thread, every ``interval`` s) and gives snapshots of their CPU.

    :param roots: component name -> root pid. The component named ``scheduler`` is split into
        ``scheduler``, ``task supervisors`` (its LocalExecutor workers) and ``task processes``.
    """

    def __init__(self, roots: dict[str, int], interval: float = 0.25) -> None:
        self.roots = dict(roots)
        self.interval = interval
        self.tasks: dict[tuple[int, int], TaskProcess] = {}
        self.orphans = 0  # processes that outlived their parent while measured
        self.scans = 0
        self.scan_seconds = 0.0  # the meter's own CPU
        self._members: dict[tuple[int, int], str] = {}  # (pid, start) -> component, sticky
        self._orphaned: dict[tuple[int, int], tuple[str, float]] = {}  # orphan -> (component, its last CPU)
        self._gone_orphans: dict[str, float] = {}  # CPU of orphans that ended, by component
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: Snapshot | None = None

    # -- the sampling thread -------------------------------------------------------------------

    def start(self) -> ProcessMeter:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="process-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    # -- sampling ------------------------------------------------------------------------------

    def sample(self) -> Snapshot:
        """Scan /proc once: each component's CPU now; task processes' CPU and peak RSS updated."""
        begun = time.thread_time()
        now = time.time()
        procs = scan()
        children: dict[int, list[int]] = {}
        for stat in procs.values():
            children.setdefault(stat.ppid, []).append(stat.pid)
        with self._lock:
            seen: dict[tuple[int, int], str] = {}
            for name, root in self.roots.items():
                stack = [root] if root in procs else []
                while stack:
                    pid = stack.pop()
                    seen[(pid, procs[pid].start)] = name
                    stack.extend(children.get(pid, ()))
            # Known members no longer under their root: orphans, kept in their component while they live.
            for key, name in self._members.items():
                pid, start = key
                if key not in seen and pid in procs and procs[pid].start == start:
                    seen[key] = name
                    if key not in self._orphaned:
                        self.orphans += 1
                    stat = procs[pid]
                    self._orphaned[key] = (name, stat.own + stat.children)
            for key in [k for k in self._orphaned if k not in seen]:  # orphans that ended: their last CPU stays
                name, last = self._orphaned.pop(key)
                self._gone_orphans[name] = self._gone_orphans.get(name, 0.0) + last
            self._members = seen
            snapshot = self._snapshot(now, procs, children, seen)
            self._last = snapshot
            self.scans += 1
        self.scan_seconds += time.thread_time() - begun
        return snapshot

    def _snapshot(
        self,
        now: float,
        procs: dict[int, Stat],
        children: dict[int, list[int]],
        members: dict[tuple[int, int], str],
    ) -> Snapshot:
        cpu = dict.fromkeys(self.roots, 0.0)
        count = dict.fromkeys(self.roots, 0)
        for (pid, _), name in members.items():
            stat = procs[pid]
            cpu[name] += stat.own + stat.children
            count[name] += 1
        for name, gone in self._gone_orphans.items():
            cpu[name] += gone
        scheduler = self.roots.get("scheduler")
        if scheduler is None or scheduler not in procs:
            return Snapshot(now, cpu, count)
        workers = [pid for pid in children.get(scheduler, ()) if cmdline(pid).startswith(WORKER_TITLE)]
        supervisors = tasks = 0.0
        running = 0
        for worker in workers:
            supervisors += procs[worker].own
            tasks += procs[worker].children  # the task processes it ran and reaped
            for task_pid in children.get(worker, ()):
                running += 1
                task = procs[task_pid]
                tree = [task_pid]
                spent = 0.0
                while tree:  # the task process and whatever it runs
                    pid = tree.pop()
                    spent += procs[pid].own + procs[pid].children
                    tree.extend(children.get(pid, ()))
                tasks += spent
                self._task_seen(task_pid, task.start, now, spent)
        cpu["scheduler"] -= supervisors + tasks
        cpu["task supervisors"], cpu["task processes"] = supervisors, tasks
        count["task supervisors"], count["task processes"] = len(workers), running
        count["scheduler"] -= len(workers) + running
        return Snapshot(now, cpu, count)

    def _task_seen(self, pid: int, start: int, now: float, cpu: float) -> None:
        task = self.tasks.get((pid, start))
        if task is None:
            task = self.tasks[(pid, start)] = TaskProcess(pid, now, now)
        task.last_seen, task.cpu = now, cpu
        rss = peak_rss_mb(pid)
        if rss is not None:
            task.peak_rss_mb = max(task.peak_rss_mb, rss)

    def tasks_between(self, begun: float, ended: float) -> list[TaskProcess]:
        """The task processes first seen in ``[begun, ended]``."""
        with self._lock:
            return [t for t in self.tasks.values() if begun <= t.first_seen <= ended]


def delta(first: Snapshot, last: Snapshot) -> dict[str, float]:
    """CPU seconds each component spent from one snapshot to the other."""
    return {name: last.cpu.get(name, 0.0) - first.cpu.get(name, 0.0) for name in last.cpu}
