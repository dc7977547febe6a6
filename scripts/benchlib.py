"""What the benchmark scripts share: percentiles, process memory and CPU, quiet logs, the machine.

Every benchmark compares with a baseline measured in the same run, because these machines are
noisy; the helpers here only measure, they never judge.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


def percentiles(seconds: Iterable[float]) -> Dict[str, float]:
    """n, p50/p95/p99/max/mean in milliseconds of durations given in seconds (nearest rank)."""
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]

    return {
        "n": len(ordered),
        "p50_ms": round(pick(0.50) * 1000, 1),
        "p95_ms": round(pick(0.95) * 1000, 1),
        "p99_ms": round(pick(0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.mean(ordered) * 1000, 1),
    }


def _children(pid: int) -> List[int]:
    found: List[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
        except OSError:
            continue
    return found


def _tree(pid: int) -> Iterator[int]:
    """A process and all its live descendants."""
    pending, seen = [pid], set()
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            yield current
            pending += _children(current)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (VmRSS from /proc), in bytes."""
    total = 0
    for current in _tree(pid):
        try:
            with open(f"/proc/{current}/status") as handle:
                total += next((int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for current in _tree(pid):
        try:
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return total


def quiet_rasa_logs() -> None:
    """Keeps Rasa/TensorFlow chatter out of a benchmark's output."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for name in ("rasa", "tensorflow", "absl", "matplotlib", "sanic", "apscheduler", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Rasa 3.6 logs every parse through structlog, which prints everything until configured.
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


def mib(value: float) -> float:
    return round(value / (1024 * 1024), 1)


def machine() -> Dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as handle:
            memory = round(int(handle.readline().split()[1]) / (1024 * 1024), 1)
    except (OSError, ValueError, IndexError):
        pass
    commit: Optional[str] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
