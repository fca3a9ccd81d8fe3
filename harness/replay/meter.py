"""CPU and resident memory of each local-stack component's process tree,
and of the bench client itself, around a bench step."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from harness.local_stack.stack import Stack

CLIENT = "bench-client"


@dataclass
class Usage:
    """A process tree's CPU (% of one core over a step) and resident memory at its end."""

    cpu_pct: float | None
    rss_mb: float | None


def _tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class ComponentMeter:
    """CPU seconds and RSS of each stack component's process tree, and of this process."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.pids: dict[str, int | None] = {}
        self.refresh()

    def refresh(self) -> None:
        self.pids = {c.name: c.process.pid for c in self.stack.components()}
        self.pids[CLIENT] = os.getpid()

    def sample(self) -> dict[str, tuple[float, float] | None]:
        """name -> (cpu seconds, rss MB) of the tree now, or None when it does not run."""
        out: dict[str, tuple[float, float] | None] = {}
        for name, pid in self.pids.items():
            cpu = rss = 0.0
            procs = _tree(pid) if name != CLIENT else [psutil.Process()]
            for p in procs:
                try:
                    t = p.cpu_times()
                    cpu += t.user + t.system
                    rss += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            out[name] = (cpu, rss / 2**20) if procs else None
        return out

    @staticmethod
    def usage(before: dict[str, tuple[float, float] | None], after: dict[str, tuple[float, float] | None],
              seconds: float) -> dict[str, Usage]:
        usage = {}
        for name, end in after.items():
            start = before.get(name)
            if end is None or start is None:
                usage[name] = Usage(cpu_pct=None, rss_mb=None)
            else:
                usage[name] = Usage(cpu_pct=round(100.0 * (end[0] - start[0]) / seconds, 1), rss_mb=round(end[1], 1))
        return usage
