"""How much of the machine's CPU went to processes other than the benchmark and its server.

On a small shared box another job (a test run, a search node) can take a core for a while
and halve a result; each run records that "other" load so a disturbed run can be spotted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

_CLK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    busy: float  # CPU seconds of the whole machine (user, system, irq), all cores
    steal: float  # CPU seconds the hypervisor took
    own: float  # CPU seconds of this process and of the given process groups

    def load_since(self, before: CpuSnapshot) -> dict[str, float]:
        """Average cores used by others, by us, and stolen, between two snapshots."""
        wall = max(self.wall - before.wall, 1e-9)
        own = self.own - before.own
        other = max(0.0, self.busy - before.busy - own)
        return {
            "other_cores": round(other / wall, 3),
            "own_cores": round(own / wall, 3),
            "steal_cores": round((self.steal - before.steal) / wall, 3),
        }


def snapshot(process_groups: Iterable[int] = ()) -> CpuSnapshot:
    groups = set(process_groups)
    busy = steal = 0.0
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            parts = [int(x) for x in fh.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, stolen = (parts + [0] * 8)[:8]
        busy = (user + nice + system + irq + softirq) / _CLK
        steal = stolen / _CLK
    except (OSError, ValueError):
        pass
    me = os.getpid()
    own = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                fields = fh.read().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended meanwhile
        # after the command name: state ppid pgrp ... utime(11) stime(12)
        if int(entry) == me or int(fields[2]) in groups:
            own += (int(fields[11]) + int(fields[12])) / _CLK
    return CpuSnapshot(time.monotonic(), busy, steal, own)


def wait_for_quiet(
    process_groups: Iterable[int] = (),
    max_wait_s: float = 30.0,
    threshold_cores: float = 0.15,
    window_s: float = 1.0,
) -> float:
    """Wait (at most ``max_wait_s``) until others use under ``threshold_cores`` for a
    ``window_s`` window; returns the seconds waited. A benchmark cannot stop a neighbour,
    but it need not start a measurement in the middle of its burst."""
    groups = list(process_groups)
    started = time.monotonic()
    while True:
        before = snapshot(groups)
        time.sleep(window_s)
        load = snapshot(groups).load_since(before)
        waited = time.monotonic() - started
        if load["other_cores"] < threshold_cores or waited >= max_wait_s:
            return round(waited - window_s, 1)
