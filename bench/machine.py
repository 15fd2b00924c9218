"""What every benchmark records next to its numbers: the CPU, its cores and the code's git state."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or platform's best guess elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_state():
    """`git describe --always --dirty` of this checkout ('' outside one, or without git)."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            check=False,
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        )
    except OSError:
        return ""
    return out.stdout.strip()


def machine():
    """CPU model, cores available to this process, and git state."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": cores, "git": git_state()}
