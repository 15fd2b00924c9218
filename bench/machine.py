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
    """The checkout's commit, with "-dirty" when files other than benchmark outputs differ from it
    ('' outside a git checkout, or without git). A run that only wrote earlier runs' results measured
    the commit's code."""
    here = Path(__file__).parent

    def git(*args):
        return subprocess.run(
            ["git", *args], check=False, capture_output=True, text=True, cwd=here
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git(
            "status",
            "--porcelain",
            "--",
            ":/",
            ":(top,exclude)bench/results",
            ":(top,exclude)bench/RESULTS.md",
        )
    except OSError:
        return ""
    return commit + ("-dirty" if commit and changed else "")


def machine():
    """CPU model, cores available to this process, and git state."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": cores, "git": git_state()}
