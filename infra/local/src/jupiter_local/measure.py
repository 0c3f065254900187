"""What the benchmark measures besides time: peak memory and CPU time of the process tree of a
run, read from ``/proc``, and a description of the machine. Local tooling only."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Final

from jupiter_local.paths import REPO

CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER: Final = 36

# --------------------------------------------------------------------------- /proc parsing


def descendants(parents: Mapping[int, int], root: int) -> set[int]:
    """Every process below ``root`` in a ``{pid: parent pid}`` map (``root`` excluded)."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _stat_fields(stat: str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command (which may hold spaces and
    parentheses, so fields are counted after its last ``)``): index 0 is field 3, the state."""
    return stat[stat.rindex(")") + 2 :].split()


def parse_ppid(stat: str) -> int:
    """Parent pid from the text of ``/proc/<pid>/stat``."""
    return int(_stat_fields(stat)[1])


def parse_children_cpu_ticks(stat: str) -> int:
    """``cutime + cstime`` from the text of ``/proc/<pid>/stat``: clock ticks of user and system
    time of the children that ended and were waited for (theirs recursively included)."""
    fields = _stat_fields(stat)
    return int(fields[13]) + int(fields[14])


def parse_own_cpu_ticks(stat: str) -> int:
    """``utime + stime`` from the text of ``/proc/<pid>/stat``: the process's own CPU time."""
    fields = _stat_fields(stat)
    return int(fields[11]) + int(fields[12])


def parse_vmrss_kb(status: str) -> int:
    """``VmRSS`` in kB from the text of ``/proc/<pid>/status`` (0 if absent: a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def parse_cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Processor", "cpu model"):
            return value.strip()
    return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def own_cpu_seconds() -> float:
    """This process's user + system CPU time so far, from ``/proc/self/stat``."""
    return parse_own_cpu_ticks(_read("/proc/self/stat")) / CLOCK_TICKS


def _process_parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _read(f"/proc/{entry.name}/stat")
            if stat:
                parents[int(entry.name)] = parse_ppid(stat)
    return parents


def _become_subreaper() -> None:
    """Orphaned descendants (a JVM whose Python driver ended first, say) are re-parented to this
    process rather than to init, so they stay in the measured tree and their CPU time reaches
    this process's ``cutime``/``cstime`` when it reaps them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


# --------------------------------------------------------------------------- the sampler


class TreeUsage:
    """Peak memory and CPU time of the processes started below this process while it is open
    (``with TreeUsage() as usage:``); processes already there (a broker this process launched)
    are left out.

    * ``peak_mb``: the peak, sampled every ``interval`` seconds, of the summed ``VmRSS`` of the
      tree. Shared pages count once per process, so the sum is an upper bound.
    * ``cpu_seconds``: user + system time of every process of the tree, exact: this process
      becomes a child subreaper, reaps every descendant at the end (waiting up to ``settle``
      seconds for stragglers, then killing them) and reads how much its children's CPU time
      (``cutime + cstime`` in ``/proc/self/stat``) grew. Do not run unrelated child processes
      inside the block.
    """

    def __init__(self, interval: float = 1.0, settle: float = 60.0) -> None:
        self.interval = interval
        self.settle = settle
        self.peak_kb = 0
        self.last_kb = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeUsage:
        _become_subreaper()
        self.ignored = descendants(_process_parents(), os.getpid())
        self._ticks = parse_children_cpu_ticks(_read("/proc/self/stat"))
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()
        self._reap()
        ticks = parse_children_cpu_ticks(_read("/proc/self/stat")) - self._ticks
        self.cpu_seconds = ticks / CLOCK_TICKS

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _tree(self) -> set[int]:
        return descendants(_process_parents(), os.getpid()) - self.ignored

    def sample(self) -> int:
        """Sum the tree's RSS now (kB), update the peak and return the sum."""
        self.last_kb = sum(parse_vmrss_kb(_read(f"/proc/{pid}/status")) for pid in self._tree())
        self.peak_kb = max(self.peak_kb, self.last_kb)
        return self.last_kb

    def _reap(self) -> None:
        """Wait for every process left in the tree; kill what outlives ``settle`` seconds."""
        deadline = time.monotonic() + self.settle
        while tree := self._tree():
            if time.monotonic() > deadline:
                for pid in tree:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            for pid in tree:
                with contextlib.suppress(ChildProcessError):  # only our children can be reaped
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)

    @property
    def peak_mb(self) -> float | None:
        return self.peak_kb / 1024 if self.peak_kb else None


# --------------------------------------------------------------------------- the store


PART: Final = re.compile(r"^[^_]+_(\d+)_(\d+)_\d+(?:_\d+)?$")


def newest_block(names: list[str]) -> int:
    """The highest block number among MergeTree part folder names (``202507_12_17_2``:
    partition, first and last block, level[, mutation]); -1 if there is no part. Every insert
    takes a new block number and merges take none, so it grows exactly when rows land."""
    return max((int(m.group(2)) for n in names if (m := PART.match(n))), default=-1)


class LandingWatch:
    """When rows land in a table of an embedded store that another process holds (chDB admits
    one process per store, so the table cannot be queried): ``with LandingWatch(folder)``
    polls the table's folder (``<store>/data/<database>/<table>``) every ``interval`` seconds.
    ``first_at`` / ``last_at``: ``time.monotonic()`` when the first part appeared and when the
    newest block number last grew (the last insert); ``first_rows``: the rows of the parts seen
    at ``first_at`` (their ``count.txt``)."""

    def __init__(self, folder: Path, interval: float = 0.2) -> None:
        self.folder = folder
        self.interval = interval
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.first_rows = 0
        self._newest = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LandingWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Look at the folder once."""
        try:
            names = [e.name for e in os.scandir(self.folder)]
        except OSError:  # not created yet
            return
        newest = newest_block(names)
        if newest > self._newest:
            now = time.monotonic()
            if self.first_at is None:
                self.first_at = now
                self.first_rows = sum(
                    int(_read(str(self.folder / n / "count.txt")) or 0)
                    for n in names
                    if PART.match(n)
                )
            self.last_at = now
            self._newest = newest


# --------------------------------------------------------------------------- the machine


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def machine_info() -> dict[str, object]:
    meminfo = _read("/proc/meminfo")
    mem_kb = next(
        (int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count() or 0,
        "cpu_model": parse_cpu_model(_read("/proc/cpuinfo")),
        "mem_total_mb": mem_kb // 1024,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "apache_flink": _version("apache-flink"),
        "chdb": _version("chdb"),
    }


def git_commit() -> str:
    """The commit checked out, with ``-dirty`` appended when the work tree has changes (the
    figures then come from uncommitted code)."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""
